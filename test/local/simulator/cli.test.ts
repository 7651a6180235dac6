import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { optionsFromArgs } from '#local/simulator/cli.ts';
import { basic, postToken, refresh, userToken } from './support.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

function runCli(args: string[]): ChildProcess {
  const child = spawn('node_modules/.bin/node', ['local/simulator/cli.ts', ...args], {
    cwd: ROOT,
    stdio: 'pipe',
  });
  children.push(child);
  return child;
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
    });
  });

  it('defaults to port 4010 with both switches off', () => {
    expect(optionsFromArgs([])).toEqual({ port: 4010, rotateRefreshTokens: false, omitExpiresAt: false });
  });

  it('refuses a lifetime that is not a whole number', () => {
    expect(() => optionsFromArgs(['--code-seconds', '1.5'])).toThrow('--code-seconds must be a whole number');
  });
});
