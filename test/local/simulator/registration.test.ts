import { afterEach, describe, expect, it } from 'vitest';
import { type RunningSimulator, startSimulator } from '#local/simulator/index.ts';
import { CLIENT_ID, control, postToken, refresh, userToken } from './support.ts';

const EMAIL = 'new.customer@example.com';
const REGISTRATION_CODE = 'rc-0123456789abcdef0123456789abcdef';

let simulator: RunningSimulator | undefined;
async function start(): Promise<RunningSimulator> {
  simulator = await startSimulator();
  return simulator;
}
afterEach(async () => {
  await simulator?.close();
  simulator = undefined;
});

async function clientToken(sim: RunningSimulator): Promise<string> {
  return (await postToken(sim, { grant_type: 'client_credentials' })).body.access_token ?? '';
}

async function signUp(sim: RunningSimulator, body: unknown, bearer?: string) {
  const token = bearer ?? (await clientToken(sim));
  const response = await fetch(`${sim.url}/v1/user/signup/registration_code`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function registrationGrant(sim: RunningSimulator, registrationCode = REGISTRATION_CODE) {
  return postToken(sim, {
    grant_type: 'registration_code',
    client_id: CLIENT_ID,
    email: EMAIL,
    registration_code: registrationCode,
  });
}

describe('POST /v1/user/signup/registration_code', () => {
  it('creates a user with a client-credentials token', async () => {
    const sim = await start();

    const answer = await signUp(sim, { email: EMAIL, registrationCode: REGISTRATION_CODE, language: 'en' });

    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ id: expect.any(Number), email: EMAIL, active: true });
    const users = await control<{ email: string }[]>(sim, 'users');
    expect(users.body.map((user) => user.email)).toContain(EMAIL);
  });

  it('refuses a registration code shorter than 32 characters with 400', async () => {
    const sim = await start();

    const answer = await signUp(sim, { email: EMAIL, registrationCode: 'x'.repeat(31) });

    expect(answer.status).toBe(400);
    expect(JSON.stringify(answer.body)).toContain('registrationCode');
  });

  it('refuses a user access token with 403', async () => {
    const sim = await start();
    const user = await userToken(sim);

    const answer = await signUp(
      sim,
      { email: EMAIL, registrationCode: REGISTRATION_CODE },
      user.access_token,
    );

    expect(answer.status).toBe(403);
  });

  it('refuses an unknown token with 401 invalid_token', async () => {
    const sim = await start();

    const answer = await signUp(sim, { email: EMAIL, registrationCode: REGISTRATION_CODE }, 'made-up');

    expect(answer.status).toBe(401);
    expect(answer.body).toEqual({ error: 'invalid_token', error_description: 'made-up' });
  });

  it('refuses an email that already has a user with 409', async () => {
    const sim = await start();
    await signUp(sim, { email: EMAIL, registrationCode: REGISTRATION_CODE });

    const answer = await signUp(sim, { email: EMAIL, registrationCode: REGISTRATION_CODE });

    expect(answer.status).toBe(409);
  });
});

describe('the registration_code grant', () => {
  it('returns a user token for the signed-up email and code', async () => {
    const sim = await start();
    await signUp(sim, { email: EMAIL, registrationCode: REGISTRATION_CODE });

    const answer = await registrationGrant(sim);

    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ token_type: 'bearer', scope: 'transfers' });
    expect(answer.body.refresh_token).toEqual(expect.any(String));
  });

  it('answers invalid_grant to a wrong registration code', async () => {
    const sim = await start();
    await signUp(sim, { email: EMAIL, registrationCode: REGISTRATION_CODE });

    const answer = await registrationGrant(sim, `${REGISTRATION_CODE}-wrong`);

    expect(answer.body.error).toBe('invalid_grant');
  });

  it('keeps working until the user reclaims the account, then answers invalid_grant', async () => {
    const sim = await start();
    await signUp(sim, { email: EMAIL, registrationCode: REGISTRATION_CODE });
    const before = await registrationGrant(sim);

    const reclaimed = await control(sim, 'reclaim', { email: EMAIL });
    const after = await registrationGrant(sim);

    expect(before.status).toBe(200);
    expect(reclaimed.status).toBe(204);
    expect(after.status).toBe(400);
    expect(after.body).toEqual({ error: 'invalid_grant', error_description: 'Invalid user credentials.' });
  });

  it("kills the user's previous refresh token when granted again", async () => {
    const sim = await start();
    await signUp(sim, { email: EMAIL, registrationCode: REGISTRATION_CODE });
    const first = await registrationGrant(sim);

    await registrationGrant(sim);
    const answer = await refresh(sim, first.body.refresh_token);

    expect(answer.body.error).toBe('invalid_grant');
  });

  it('needs client_id, email and registration_code', async () => {
    const sim = await start();

    const answer = await postToken(sim, {
      grant_type: 'registration_code',
      client_id: CLIENT_ID,
      email: EMAIL,
    });

    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ error: 'invalid_request', error_description: 'Missing registration_code' });
  });
});
