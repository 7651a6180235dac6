import { afterEach, describe, expect, it } from 'vitest';
import { type RunningSimulator, type SimulatorOptions, startSimulator } from '#local/simulator/index.ts';
import { approve, basic, CLIENT_ID, FORM, fakeClock, postToken, REDIRECT_URI, userToken } from './support.ts';

let simulator: RunningSimulator | undefined;
async function start(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  simulator = await startSimulator(options);
  return simulator;
}
afterEach(async () => {
  await simulator?.close();
  simulator = undefined;
});

describe('POST /oauth/token', () => {
  it('answers client_credentials with exactly the documented application-token fields', async () => {
    const clock = fakeClock(Date.parse('2026-03-02T09:00:00.000Z'));
    const sim = await start({ now: clock.now });

    const { status, body } = await postToken(sim, { grant_type: 'client_credentials' });

    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual(['access_token', 'token_type', 'expires_in', 'expires_at', 'scope']);
    expect(body).toMatchObject({
      token_type: 'bearer',
      expires_in: 43199,
      expires_at: '2026-03-02T20:59:59.000Z',
      scope: 'transfers',
    });
    expect(body.access_token).toEqual(expect.any(String));
  });

  it('answers authorization_code with the documented user-token fields', async () => {
    const clock = fakeClock(Date.parse('2026-03-02T09:00:00.000Z'));
    const sim = await start({ now: clock.now, refreshTokenSeconds: 86400 });
    const { code } = await approve(sim);

    const { status, body } = await postToken(sim, {
      grant_type: 'authorization_code',
      client_id: CLIENT_ID,
      code,
      redirect_uri: REDIRECT_URI,
    });

    expect(status).toBe(200);
    expect(Object.keys(body)).toEqual([
      'access_token',
      'token_type',
      'refresh_token',
      'expires_in',
      'expires_at',
      'refresh_token_expires_in',
      'refresh_token_expires_at',
      'scope',
      'created_at',
    ]);
    expect(body).toMatchObject({
      token_type: 'bearer',
      expires_in: 43199,
      expires_at: '2026-03-02T20:59:59.000Z',
      refresh_token_expires_in: 86400,
      refresh_token_expires_at: '2026-03-03T09:00:00.000Z',
      scope: 'transfers',
      created_at: '2026-03-02T09:00:00.000Z',
    });
  });

  it('serves the same endpoint under a quarterly version prefix', async () => {
    const sim = await start();

    const { status, body } = await postToken(
      sim,
      { grant_type: 'client_credentials' },
      { path: '/2026Q3/oauth/token' },
    );

    expect(status).toBe(200);
    expect(body.token_type).toBe('bearer');
  });

  it('uses the configured access token lifetime', async () => {
    const sim = await start({ accessTokenSeconds: 120 });

    const { body } = await postToken(sim, { grant_type: 'client_credentials' });

    expect(body.expires_in).toBe(120);
  });

  it('leaves out expires_at and the refresh expiry fields when configured like a pre-2025 Wise', async () => {
    const sim = await start({ omitExpiresAt: true });

    const user = await userToken(sim);
    const client = await postToken(sim, { grant_type: 'client_credentials' });

    expect(Object.keys(user)).toEqual([
      'access_token',
      'token_type',
      'refresh_token',
      'expires_in',
      'scope',
      'created_at',
    ]);
    expect(Object.keys(client.body)).toEqual(['access_token', 'token_type', 'expires_in', 'scope']);
  });

  it('hands out opaque tokens of varying length', async () => {
    const sim = await start();

    const tokens = await Promise.all(
      Array.from(
        { length: 20 },
        async () => (await postToken(sim, { grant_type: 'client_credentials' })).body,
      ),
    );

    const lengths = new Set(tokens.map((token) => token.access_token?.length));
    expect(lengths.size).toBeGreaterThan(1);
    expect(new Set(tokens.map((token) => token.access_token)).size).toBe(20);
  });

  it('answers 401 invalid_client without Basic authentication', async () => {
    const sim = await start();

    const { status, body, headers } = await postToken(
      sim,
      { grant_type: 'client_credentials' },
      { auth: null },
    );

    expect(status).toBe(401);
    expect(body.error).toBe('invalid_client');
    expect(headers.get('www-authenticate')).toMatch(/^Basic/);
  });

  it('answers 401 invalid_client to a wrong client secret', async () => {
    const sim = await start();

    const { status, body } = await postToken(
      sim,
      { grant_type: 'client_credentials' },
      { auth: basic(CLIENT_ID, 'not-the-secret') },
    );

    expect(status).toBe(401);
    expect(body.error).toBe('invalid_client');
  });

  it('answers 400 invalid_request "Missing grant type" when grant_type is absent', async () => {
    const sim = await start();

    const { status, body } = await postToken(sim, {});

    expect(status).toBe(400);
    expect(body).toEqual({ error: 'invalid_request', error_description: 'Missing grant type' });
  });

  it('reads only form bodies: a JSON body has no grant type', async () => {
    const sim = await start();

    const response = await fetch(`${sim.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: basic(), 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials' }),
    });

    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error_description: 'Missing grant type' });
  });

  it('answers 400 unsupported_grant_type to a grant Wise does not serve', async () => {
    const sim = await start();

    const { status, body } = await postToken(sim, { grant_type: 'password' });

    expect(status).toBe(400);
    expect(body.error).toBe('unsupported_grant_type');
  });

  it('answers 400 invalid_request when a documented field of the grant is missing', async () => {
    const sim = await start();
    const { code } = await approve(sim);

    const { status, body } = await postToken(sim, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
    });

    expect(status).toBe(400);
    expect(body).toEqual({ error: 'invalid_request', error_description: 'Missing client_id' });
  });

  it('answers invalid_grant with 400 and Wise body by default', async () => {
    const sim = await start();

    const { status, body } = await postToken(sim, { grant_type: 'refresh_token', refresh_token: 'unknown' });

    expect(status).toBe(400);
    expect(body).toEqual({ error: 'invalid_grant', error_description: 'Invalid user credentials.' });
  });

  it('answers invalid_grant with 401 when configured so', async () => {
    const sim = await start({ invalidGrantStatus: 401 });

    const { status, body } = await postToken(sim, { grant_type: 'refresh_token', refresh_token: 'unknown' });

    expect(status).toBe(401);
    expect(body.error).toBe('invalid_grant');
  });

  it('answers 405 to anything but POST', async () => {
    const sim = await start();

    const response = await fetch(`${sim.url}/oauth/token`);

    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
  });

  it('marks token answers as not to be cached', async () => {
    const sim = await start();

    const response = await fetch(`${sim.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: basic(), 'content-type': FORM },
      body: 'grant_type=client_credentials',
    });

    expect(response.headers.get('cache-control')).toBe('no-store');
  });
});
