import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { optionsFromArgs } from '#local/simulator/cli.ts';
import { basic, callApi, postToken, refresh, userToken } from './support.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const children: ChildProcess[] = [];
const folders: string[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function runCli(args: string[], cwd = ROOT): ChildProcess {
  const child = spawn(join(ROOT, 'node_modules/.bin/node'), [join(ROOT, 'local/simulator/cli.ts'), ...args], {
    cwd,
    stdio: 'pipe',
  });
  children.push(child);
  return child;
}

function temporaryFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'simulator-cli-'));
  folders.push(folder);
  return folder;
}

async function stop(child: ChildProcess): Promise<number | null> {
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  return code as number | null;
}

/** Resolves with the URL the banner names; rejects if none appears within `ms`. */
function waitForBanner(child: ChildProcess, ms = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`no banner within ${ms} ms: ${output}`)), ms);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
      if (url) {
        clearTimeout(timer);
        resolve(url);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before its banner: ${output}`));
    });
  });
}

describe('npm run simulator (local/simulator/cli.ts)', () => {
  it('prints where it listens and exits cleanly on SIGTERM', async () => {
    const child = runCli(['--port', '0']);
    const url = await waitForBanner(child);

    const users = await fetch(`${url}/__control/users`);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');

    expect(users.status).toBe(200);
    expect(code).toBe(0);
  });

  it('exits cleanly on SIGINT', async () => {
    const child = runCli(['--port', '0']);
    await waitForBanner(child);

    child.kill('SIGINT');
    const [code] = await once(child, 'exit');

    expect(code).toBe(0);
  });

  it('takes the client, lifetime and invalid_grant status from its flags', async () => {
    const child = runCli([
      '--port',
      '0',
      '--client-id',
      'cli-client',
      '--client-secret',
      'cli-secret',
      '--access-token-seconds',
      '90',
      '--invalid-grant-status',
      '401',
    ]);
    const url = await waitForBanner(child);

    const token = await postToken(
      { url },
      { grant_type: 'client_credentials' },
      { auth: basic('cli-client', 'cli-secret') },
    );
    const invalid = await postToken(
      { url },
      { grant_type: 'refresh_token', refresh_token: 'unknown' },
      { auth: basic('cli-client', 'cli-secret') },
    );

    expect(token.body.expires_in).toBe(90);
    expect(invalid.status).toBe(401);
  });

  it('turns on refresh token rotation and pre-2025 answers with its switches', async () => {
    const child = runCli(['--port', '0', '--rotate-refresh-tokens', '--omit-expires-at']);
    const url = await waitForBanner(child);

    const first = await userToken({ url });
    const refreshed = await refresh({ url }, first.refresh_token);

    expect(refreshed.body.refresh_token).not.toBe(first.refresh_token);
    expect(first.expires_at).toBeUndefined();
  });

  it('keeps the tokens it issued across a restart with --state-file', async () => {
    const stateFile = join(temporaryFolder(), 'simulator.json');
    const first = runCli(['--port', '0', '--state-file', stateFile]);
    const token = await userToken({ url: await waitForBanner(first) });
    expect(await stop(first)).toBe(0);

    const second = runCli(['--port', '0', '--state-file', stateFile]);
    const url = await waitForBanner(second);

    expect((await callApi({ url }, '/v1/me', token.access_token)).status).toBe(200);
    expect((await refresh({ url }, token.refresh_token)).status).toBe(200);
  });

  it('writes no file without --state-file', async () => {
    const folder = temporaryFolder();
    const child = runCli(['--port', '0'], folder);
    await userToken({ url: await waitForBanner(child) });

    expect(await stop(child)).toBe(0);

    expect(readdirSync(folder)).toEqual([]);
  });

  it('refuses a state file that is not JSON with a sentence naming it, and exit code 1', async () => {
    const stateFile = join(temporaryFolder(), 'simulator.json');
    writeFileSync(stateFile, 'not json');
    const child = runCli(['--port', '0', '--state-file', stateFile]);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });

    const [code] = await once(child, 'exit');

    expect(code).toBe(1);
    expect(stderr).toContain(`The Wise simulator state file ${stateFile} is not JSON`);
    expect(stderr).not.toMatch(/^\s+at /m);
  });

  it('refuses a malformed flag with a sentence and exit code 2', async () => {
    const child = runCli(['--invalid-grant-status', '418']);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });

    const [code] = await once(child, 'exit');

    expect(code).toBe(2);
    expect(stderr).toContain('--invalid-grant-status must be 400 or 401');
  });
});

describe('optionsFromArgs', () => {
  it('maps every flag to its simulator option', () => {
    const options = optionsFromArgs([
      '--host=0.0.0.0',
      '--port=4011',
      '--client-id=id',
      '--client-secret=secret',
      '--redirect-uri=https://partner.example/cb',
      '--access-token-seconds=60',
      '--refresh-token-seconds=600',
      '--code-seconds=30',
      '--invalid-grant-status=401',
      '--rotate-refresh-tokens',
      '--omit-expires-at',
      '--state-file=.local/simulator.json',
    ]);

    expect(options).toEqual({
      host: '0.0.0.0',
      port: 4011,
      clientId: 'id',
      clientSecret: 'secret',
      redirectUri: 'https://partner.example/cb',
      accessTokenSeconds: 60,
      refreshTokenSeconds: 600,
      codeSeconds: 30,
      invalidGrantStatus: 401,
      rotateRefreshTokens: true,
      omitExpiresAt: true,
      stateFile: '.local/simulator.json',
    });
  });

  it('defaults to port 4010 with both switches off', () => {
    expect(optionsFromArgs([])).toEqual({ port: 4010, rotateRefreshTokens: false, omitExpiresAt: false });
  });

  it('refuses a lifetime that is not a whole number', () => {
    expect(() => optionsFromArgs(['--code-seconds', '1.5'])).toThrow('--code-seconds must be a whole number');
  });
});
