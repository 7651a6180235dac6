import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigurationError } from '#shared/config/broker-config.ts';
import { readBrokerConfigFile } from '#shared/config/broker-config-file.ts';

const folder = mkdtempSync(join(tmpdir(), 'broker-config-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(folder, name);
  writeFileSync(path, text);
  return path;
}

function errorOf(action: () => unknown): ConfigurationError {
  try {
    action();
  } catch (error) {
    if (error instanceof ConfigurationError) return error;
    throw error;
  }
  throw new Error('no error was thrown');
}

describe('readBrokerConfigFile', () => {
  it('reads and validates a configuration file', () => {
    const path = file('good.json', JSON.stringify({ stage: 'qa', refresh: { fraction: 0.7 } }));

    const config = readBrokerConfigFile(path);

    expect(config.stage).toBe('qa');
    expect(config.refresh.fraction).toBe(0.7);
  });

  it('names the file and the bad fields', () => {
    const path = file('bad.json', JSON.stringify({ stage: 'QA' }));

    const error = errorOf(() => readBrokerConfigFile(path));

    expect(error.message).toContain(path);
    expect(error.problems.map((problem) => problem.path)).toEqual(['stage']);
  });

  it('says where the JSON is broken without quoting the text', () => {
    const path = file('broken.json', '{\n  "stage": "qa"\n  "local": { "clientSecret": "hunter2" }\n}');

    const error = errorOf(() => readBrokerConfigFile(path));

    expect(error.message).toMatch(/not valid JSON at line 3, column 3/);
    expect(error.message).not.toContain('hunter2');
  });

  it('does not quote the text when the JSON parser reports no position', () => {
    const path = file('token.json', '{"local": hunter2}');

    const error = errorOf(() => readBrokerConfigFile(path));

    expect(error.message).toMatch(/not valid JSON/);
    expect(error.message).not.toContain('hunter2');
  });

  it('explains a file that does not exist', () => {
    const error = errorOf(() => readBrokerConfigFile(join(folder, 'missing.json')));

    expect(error.message).toMatch(/cannot be read \(ENOENT\): check the path/);
  });
});
