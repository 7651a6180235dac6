import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PRINCIPAL = 'arn:aws:iam::000000000000:role/payments';
let folder: string;
let configFile: string;

beforeAll(() => {
  folder = mkdtempSync(join(tmpdir(), 'broker-start-'));
  configFile = join(folder, 'broker.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      stage: 'start-test',
      callers: [{ principal: PRINCIPAL, use: ['acme-*'] }],
      local: {
        port: 0,
        dataDir: null,
        credentials: [
          {
            accessKeyId: 'AKIASTARTTEST0000000',
            secretAccessKey: 'start-test-secret-key',
            principal: PRINCIPAL,
          },
        ],
        simulator: { port: 0 },
      },
    }),
  );
});

afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});

/** Starts `local/start.ts` as `npm start` does and resolves with its banner, within a bounded wait. */
function start(
  args: string[],
  command: readonly string[] = [process.execPath, 'local/start.ts'],
): Promise<{ child: ChildProcess; banner: string }> {
  const [program = '', ...programArgs] = command;
  const child = spawn(program, [...programArgs, ...args], {
    env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'ERROR' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`No banner within 30 s:\n${output}`));
    }, 30_000);
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Press Ctrl-C to stop.')) {
        clearTimeout(timer);
        resolve({ child, banner: output });
      }
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Exited with ${code} before its banner:\n${output}`));
    });
  });
}

function exitCode(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

describe('npm start', { timeout: 60_000 }, () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('serves /health and stops cleanly on %s', async (signal) => {
    const { child, banner } = await start(['--config', configFile]);
    const url = /broker API\s+(\S+)/.exec(banner)?.[1];

    const health = await fetch(`${url}/health`);
    const exited = exitCode(child);
    child.kill(signal);

    expect(health.status).toBe(200);
    await expect(health.json()).resolves.toEqual({ status: 'ok' });
    await expect(exited).resolves.toBe(0);
    expect(banner).toContain('curl -s --aws-sigv4');
  });

  it('stops the broker when the npm process itself gets SIGINT', async () => {
    const { child, banner } = await start(['--config', configFile], ['npm', 'start', '--']);
    const url = /broker API\s+(\S+)/.exec(banner)?.[1];
    const exited = exitCode(child);

    child.kill('SIGINT');
    await exited;

    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });

  it('says the port is taken, without a stack trace, when another broker already listens there', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    const config = join(folder, 'taken.json');
    const settings = JSON.parse(readFileSync(configFile, 'utf8')) as { local: Record<string, unknown> };
    writeFileSync(config, JSON.stringify({ ...settings, local: { ...settings.local, port } }));
    const child = spawn(process.execPath, ['local/start.ts', '--config', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let errors = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      errors += chunk.toString();
    });

    const code = await exitCode(child);
    taken.close();

    expect(code).toBe(1);
    expect(errors).toContain(`127.0.0.1:${port} is already in use: is another \`npm start\` running?`);
    expect(errors).not.toContain('    at ');
  });

  it('refuses a configuration file with a bad field, naming the field', async () => {
    const bad = join(folder, 'bad.json');
    writeFileSync(bad, JSON.stringify({ stage: 'Bad Stage', local: { credentials: [] } }));
    const child = spawn(process.execPath, ['local/start.ts', '--config', bad], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let errors = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      errors += chunk.toString();
    });

    const code = await exitCode(child);

    expect(code).toBe(1);
    expect(errors).toContain('stage');
    expect(errors).not.toContain('    at ');
  });
});
