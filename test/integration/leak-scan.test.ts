import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const folder = mkdtempSync(join(tmpdir(), 'leak-scan-'));

afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});

/** Runs one leak-scan fixture under the suite's own leak scan, in a vitest of its own. */
async function runFixture(name: string) {
  const report = join(folder, `${name}.json`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LEAK_SCAN_DIR: join(folder, name),
    // Its reliability setup clears its own folder, not the one this run's fault matrices write to.
    RELIABILITY_DIR: join(folder, `${name}-reliability`),
    LEAK_FIXTURE_REPORT: report,
  };
  for (const key of Object.keys(env)) if (key.startsWith('VITEST') || key === 'TEST') delete env[key];
  const vitest = join(process.cwd(), 'node_modules', 'vitest', 'vitest.mjs');
  const args = [
    vitest,
    'run',
    '--config',
    'test/fixtures/leak-scan/vitest.config.ts',
    `test/fixtures/leak-scan/${name}.fixture.ts`,
  ];
  const outcome = await run(process.execPath, args, { cwd: process.cwd(), env, timeout: 120_000 }).then(
    ({ stdout, stderr }) => ({ exitCode: 0, output: stdout + stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({
      exitCode: error.code ?? -1,
      output: `${error.stdout ?? ''}${error.stderr ?? ''}`,
    }),
  );
  const summary = await run(process.execPath, ['.ci/summary.mjs', report, String(outcome.exitCode)], {
    cwd: process.cwd(),
  });
  return { ...outcome, summary: summary.stdout.trim() };
}

describe('the leak scan over the suite', () => {
  it('fails a run whose log line and error page carry a token the simulator issued, and .ci/run counts the failure', async () => {
    const { exitCode, output, summary } = await runFixture('planted');

    expect(exitCode).not.toBe(0);
    expect(output).toMatch(/Leak scan: 2 secret\(s\) found/);
    expect(output).toMatch(/an? access_token in stdout/);
    expect(output).toMatch(/an? access_token in GET \/oauth\/callback answer 400/);
    expect(output).toMatch(/secrets found: 2/);
    expect(summary).toBe('1 passed, 1 failed');
  }, 120_000);

  it('passes a run that keeps its tokens to itself, and counts what it scanned', async () => {
    const { exitCode, output, summary } = await runFixture('clean');

    expect(exitCode).toBe(0);
    expect(output).toMatch(/secrets known \(1 access_token, 1 client_secret\), secrets found: 0/);
    expect(summary).toBe('1 passed, 0 failed');
  }, 120_000);
});
