import { afterEach, describe, expect, it } from 'vitest';
import { type RunningSimulator, startSimulator } from '#local/simulator/index.ts';
import {
  basic,
  CLIENT_ID,
  type ControlUser,
  callApi,
  control,
  postToken,
  REDIRECT_URI,
  refresh,
  userToken,
} from './support.ts';

let simulator: RunningSimulator | undefined;
async function start(): Promise<RunningSimulator> {
  simulator = await startSimulator();
  return simulator;
}
afterEach(async () => {
  await simulator?.close();
  simulator = undefined;
});

describe('/__control/users', () => {
  it('lists a default user with a personal and a business profile', async () => {
    const sim = await start();

    const answer = await control<ControlUser[]>(sim, 'users');

    expect(answer.status).toBe(200);
    expect(answer.body).toHaveLength(1);
    expect(answer.body[0]?.profiles.map((profile) => profile.type)).toEqual(['PERSONAL', 'BUSINESS']);
  });

  it('adds a user with the given profiles and returns it', async () => {
    const sim = await start();

    const added = await control<ControlUser>(sim, 'users', {
      email: 'kim.park@example.com',
      profiles: [{ type: 'BUSINESS', fullName: 'Park Imports' }],
    });
    const listed = await control<ControlUser[]>(sim, 'users');

    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({
      email: 'kim.park@example.com',
      fullName: 'Kim Park',
      profiles: [{ type: 'BUSINESS', fullName: 'Park Imports' }],
    });
    expect(listed.body.map((user) => user.id)).toContain(added.body.id);
  });

  it('gives a user added without profiles one personal profile', async () => {
    const sim = await start();

    const added = await control<ControlUser>(sim, 'users', { email: 'lee@example.com' });

    expect(added.body.profiles.map((profile) => profile.type)).toEqual(['PERSONAL']);
  });

  it('refuses a body without a usable email with 400 and a sentence naming the field', async () => {
    const sim = await start();

    const answer = await control<{ error: string; message: string }>(sim, 'users', { email: 'not-an-email' });

    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({
      error: 'invalid_request',
      message: expect.stringContaining('email'),
    });
  });

  it('refuses a second user with the same email with 409', async () => {
    const sim = await start();

    const answer = await control(sim, 'users', { email: 'ALEX.MORGAN@example.com' });

    expect(answer.status).toBe(409);
  });
});

describe('/__control/authorize', () => {
  it('answers an approval with the location the browser would follow', async () => {
    const sim = await start();

    const answer = await control<{ location: string }>(sim, 'authorize', {
      clientId: CLIENT_ID,
      redirectUri: REDIRECT_URI,
      state: 'xyz',
      userId: 5550001,
      profileId: 16550002,
      decision: 'approve',
    });

    const location = new URL(answer.body.location);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
    expect(location.searchParams.get('state')).toBe('xyz');
    expect(location.searchParams.get('profileId')).toBe('16550002');
    expect(location.searchParams.get('code')).toEqual(expect.any(String));
  });

  it('answers a denial with the access_denied location', async () => {
    const sim = await start();

    const answer = await control<{ location: string }>(sim, 'authorize', {
      clientId: CLIENT_ID,
      redirectUri: REDIRECT_URI,
      state: 'xyz',
      userId: 5550001,
      decision: 'deny',
    });

    expect(new URL(answer.body.location).searchParams.get('error')).toBe('access_denied');
  });

  it('refuses a redirect URI that is not the registered one with 400', async () => {
    const sim = await start();

    const answer = await control<{ message: string }>(sim, 'authorize', {
      clientId: CLIENT_ID,
      redirectUri: `${REDIRECT_URI}?extra=1`,
      userId: 5550001,
      decision: 'approve',
    });

    expect(answer.status).toBe(400);
    expect(answer.body.message).toContain('redirect_uri');
  });
});

describe('/__control/revoke', () => {
  it("kills the user's refresh and access tokens", async () => {
    const sim = await start();
    const token = await userToken(sim);

    const answer = await control<{ revoked: { refreshTokens: number; accessTokens: number } }>(
      sim,
      'revoke',
      {
        userId: 5550001,
      },
    );

    expect(answer.body.revoked).toEqual({ refreshTokens: 1, accessTokens: 1 });
    expect((await refresh(sim, token.refresh_token)).body.error).toBe('invalid_grant');
    expect((await callApi(sim, '/v1/me', token.access_token)).status).toBe(401);
  });

  it('answers 404 for an unknown user', async () => {
    const sim = await start();

    const answer = await control(sim, 'revoke', { userId: 42 });

    expect(answer.status).toBe(404);
  });

  it('kills one access token alone: its refresh token still refreshes', async () => {
    const sim = await start();
    const token = await userToken(sim);

    const answer = await control<{ revoked: { refreshTokens: number; accessTokens: number } }>(
      sim,
      'revoke',
      {
        accessToken: token.access_token,
      },
    );
    const again = await control<{ revoked: { accessTokens: number } }>(sim, 'revoke', {
      accessToken: token.access_token,
    });

    expect(answer.body.revoked).toEqual({ refreshTokens: 0, accessTokens: 1 });
    expect(again.body.revoked.accessTokens).toBe(0);
    expect((await callApi(sim, '/v1/me', token.access_token)).status).toBe(401);
    const refreshed = await refresh(sim, token.refresh_token);
    expect((await callApi(sim, '/v1/me', String(refreshed.body.access_token))).status).toBe(200);
  });
});

describe('/__control/client-secret', () => {
  it('rotates the client secret: the old one then gets invalid_client', async () => {
    const sim = await start();

    const rotated = await control(sim, 'client-secret', { clientSecret: 'rotated-secret' });
    const withOld = await postToken(sim, { grant_type: 'client_credentials' });
    const withNew = await postToken(
      sim,
      { grant_type: 'client_credentials' },
      { auth: basic(CLIENT_ID, 'rotated-secret') },
    );

    expect(rotated.status).toBe(204);
    expect(withOld.status).toBe(401);
    expect(withOld.body.error).toBe('invalid_client');
    expect(withNew.status).toBe(200);
  });
});

describe('/__control/reclaim', () => {
  it('answers 404 for an email no registration signed up', async () => {
    const sim = await start();

    const answer = await control(sim, 'reclaim', { email: 'alex.morgan@example.com' });

    expect(answer.status).toBe(404);
  });
});

describe('/__control/stats', () => {
  it('counts every grant served, every grant refused and every API call', async () => {
    const sim = await start();
    const token = await userToken(sim);
    await refresh(sim, token.refresh_token);
    await postToken(sim, { grant_type: 'client_credentials' });
    await postToken(sim, { grant_type: 'refresh_token', refresh_token: 'unknown' });
    await callApi(sim, '/v1/me', token.access_token);

    const answer = await control(sim, 'stats');

    expect(answer.body).toEqual({
      grants: { client_credentials: 1, authorization_code: 1, refresh_token: 1, registration_code: 0 },
      failedGrants: { client_credentials: 0, authorization_code: 0, refresh_token: 1, registration_code: 0 },
      rateLimited: 0,
      answersLost: 0,
      apiCalls: 1,
    });
    expect(sim.stats()).toEqual(answer.body);
  });

  it('start again from zero after reset-stats', async () => {
    const sim = await start();
    await postToken(sim, { grant_type: 'client_credentials' });

    const reset = await control(sim, 'reset-stats', {});
    const answer = await control<{ grants: Record<string, number> }>(sim, 'stats');

    expect(reset.status).toBe(204);
    expect(answer.body.grants.client_credentials).toBe(0);
  });
});

describe('the control interface', () => {
  it('answers 404 with a pointer to the documentation for an unknown route', async () => {
    const sim = await start();

    const answer = await control<{ message: string }>(sim, 'nonsense');

    expect(answer.status).toBe(404);
    expect(answer.body.message).toContain('README');
  });

  it('answers 400 to a body that is not JSON', async () => {
    const sim = await start();

    const response = await fetch(`${sim.url}/__control/clock`, { method: 'POST', body: '{advance' });

    expect(response.status).toBe(400);
  });
});
