import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AuthorizationCode, type AuthorizationTokenConfig } from 'simple-oauth2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSimulator, startSimulator } from '#local/simulator/index.ts';
import { approve, CLIENT_ID, CLIENT_SECRET, callApi, FORM, REDIRECT_URI, type TokenJson } from './support.ts';

const run = promisify(execFile);

let simulator: RunningSimulator;
beforeAll(async () => {
  simulator = await startSimulator();
});
afterAll(async () => {
  await simulator?.close();
});

/** Wise's documented curl call, with only the host changed. */
async function curl(...data: string[]): Promise<TokenJson> {
  const { stdout } = await run('curl', [
    '-sS',
    '-X',
    'POST',
    `${simulator.url}/oauth/token`,
    '-u',
    `${CLIENT_ID}:${CLIENT_SECRET}`,
    ...data.flatMap((field) => ['-d', field]),
  ]);
  return JSON.parse(stdout) as TokenJson;
}

describe("Wise's documented curl requests", () => {
  it('get a client-credentials token', async () => {
    const token = await curl('grant_type=client_credentials');

    expect(token).toMatchObject({ token_type: 'bearer', expires_in: 43199, scope: 'transfers' });
  });

  it('exchange an authorization code and refresh the user token', async () => {
    const { code } = await approve(simulator);

    const user = await curl(
      'grant_type=authorization_code',
      `client_id=${CLIENT_ID}`,
      `code=${code}`,
      `redirect_uri=${REDIRECT_URI}`,
    );
    const refreshed = await curl('grant_type=refresh_token', `refresh_token=${user.refresh_token}`);

    expect(user.refresh_token).toEqual(expect.any(String));
    expect(refreshed.access_token).toEqual(expect.any(String));
    expect(refreshed.access_token).not.toBe(user.access_token);
  });
});

describe('simple-oauth2 from the registry', () => {
  function oauthClient() {
    return new AuthorizationCode({
      client: { id: CLIENT_ID, secret: CLIENT_SECRET },
      auth: { tokenHost: simulator.url, tokenPath: '/oauth/token', authorizePath: '/oauth/authorize/' },
      options: { bodyFormat: 'form', authorizationMethod: 'header' },
    });
  }

  it('builds an authorize URL the simulator serves its page for', async () => {
    const url = oauthClient().authorizeURL({ redirect_uri: REDIRECT_URI, state: 'so2-state' });

    const response = await fetch(url);

    expect(url.startsWith(simulator.authorizeUrl)).toBe(true);
    expect(response.status).toBe(200);
  });

  it('gets a user token from a code approved on the page and refreshes it', async () => {
    const client = oauthClient();
    const page = await fetch(simulator.authorizeUrl, {
      method: 'POST',
      headers: { 'content-type': FORM },
      body: new URLSearchParams({
        client_id: CLIENT_ID,
        redirect_uri: REDIRECT_URI,
        state: 'so2-state',
        account: '5550001:16550001',
        decision: 'approve',
      }),
      redirect: 'manual',
    });
    const code = new URL(page.headers.get('location') ?? '').searchParams.get('code') ?? '';
    // Wise's form wants client_id as well; simple-oauth2 passes extra parameters through.
    const params: AuthorizationTokenConfig & { client_id: string } = {
      code,
      redirect_uri: REDIRECT_URI,
      client_id: CLIENT_ID,
    };

    const token = await client.getToken(params);
    const refreshed = await token.refresh();

    expect(token.token.token_type).toBe('bearer');
    expect(refreshed.token.access_token).not.toBe(token.token.access_token);
    expect((await callApi(simulator, '/v1/me', String(refreshed.token.access_token))).status).toBe(200);
    expect((await callApi(simulator, '/v1/me', String(token.token.access_token))).status).toBe(401);
  });
});
