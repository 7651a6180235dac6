import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadLocalConfig } from '#local/local-config.ts';
import { ConfigurationError } from '#shared/config/broker-config.ts';

const folder = mkdtempSync(join(tmpdir(), 'broker-local-config-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

function problemsOf(config: unknown): string[] {
  const file = join(folder, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config));
  try {
    loadLocalConfig(file);
  } catch (error) {
    if (error instanceof ConfigurationError) return error.problems.map((problem) => problem.path);
    throw error;
  }
  throw new Error('no ConfigurationError was thrown');
}

describe('loadLocalConfig', () => {
  it('reports the bad fields of the broker and of its local section in one pass', () => {
    const problems = problemsOf({ stage: 'Bad Stage', local: { port: 'three thousand', credentials: [] } });

    expect(problems).toEqual(['stage', 'local.port', 'local.credentials']);
  });

  it('reads the repository own broker.local.json', () => {
    const config = loadLocalConfig('broker.local.json');

    expect(config.local.port).toBe(3000);
    expect(config.local.credentials.length).toBeGreaterThan(0);
  });
});
