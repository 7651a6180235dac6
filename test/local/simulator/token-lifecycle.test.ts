import { afterEach, describe, expect, it } from 'vitest';
import { type RunningSimulator, type SimulatorOptions, startSimulator } from '#local/simulator/index.ts';
import {
  approve,
  CLIENT_ID,
  callApi,
  control,
  fakeClock,
  postToken,
  REDIRECT_URI,
  refresh,
  userToken,
} from './support.ts';

let simulator: RunningSimulator | undefined;
async function start(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  simulator = await startSimulator(options);
  return simulator;
}
afterEach(async () => {
  await simulator?.close();
  simulator = undefined;
});

function exchange(sim: RunningSimulator, code: string, redirectUri = REDIRECT_URI) {
  return postToken(sim, {
    grant_type: 'authorization_code',
    client_id: CLIENT_ID,
    code,
    redirect_uri: redirectUri,
  });
}

describe('authorization codes', () => {
  it('are single-use: a second exchange gets invalid_grant', async () => {
    const sim = await start();
    const { code } = await approve(sim);
    await exchange(sim, code);

    const second = await exchange(sim, code);

    expect(second.status).toBe(400);
    expect(second.body.error).toBe('invalid_grant');
  });

  it('work until codeSeconds have passed', async () => {
    const clock = fakeClock();
    const sim = await start({ now: clock.now, codeSeconds: 600 });
    const { code } = await approve(sim);

    clock.advance(599);
    const answer = await exchange(sim, code);

    expect(answer.status).toBe(200);
  });

  it('expire after codeSeconds', async () => {
    const clock = fakeClock();
    const sim = await start({ now: clock.now, codeSeconds: 600 });
    const { code } = await approve(sim);

    clock.advance(600);
    const answer = await exchange(sim, code);

    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe('invalid_grant');
  });

  it('are consumed by a failed exchange too', async () => {
    const sim = await start();
    const { code } = await approve(sim);
    await exchange(sim, code, `${REDIRECT_URI}/`);

    const retry = await exchange(sim, code);

    expect(retry.body.error).toBe('invalid_grant');
  });

  it('need the registered redirect_uri byte for byte at exchange', async () => {
    const sim = await start();
    const { code } = await approve(sim);

    const answer = await exchange(sim, code, `${REDIRECT_URI}/`);

    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe('invalid_grant');
  });
});

describe('refresh', () => {
  it('kills the access token granted before it at once', async () => {
    const sim = await start();
    const first = await userToken(sim);

    const refreshed = await refresh(sim, first.refresh_token);

    expect(refreshed.status).toBe(200);
    expect((await callApi(sim, '/v1/me', first.access_token)).status).toBe(401);
    expect((await callApi(sim, '/v1/me', refreshed.body.access_token)).status).toBe(200);
  });

  it('returns the same refresh token, which keeps working, by default', async () => {
    const sim = await start();
    const first = await userToken(sim);

    const once = await refresh(sim, first.refresh_token);
    const twice = await refresh(sim, first.refresh_token);

    expect(once.body.refresh_token).toBe(first.refresh_token);
    expect(twice.status).toBe(200);
  });

  it('returns a new refresh token and kills the old one when rotation is on', async () => {
    const sim = await start({ rotateRefreshTokens: true });
    const first = await userToken(sim);

    const rotated = await refresh(sim, first.refresh_token);
    const withOld = await refresh(sim, first.refresh_token);
    const withNew = await refresh(sim, rotated.body.refresh_token);

    expect(rotated.body.refresh_token).not.toBe(first.refresh_token);
    expect(withOld.body.error).toBe('invalid_grant');
    expect(withNew.status).toBe(200);
  });

  it('reports the remaining lifetime of a refresh token that is not rotated', async () => {
    const clock = fakeClock();
    const sim = await start({ now: clock.now, refreshTokenSeconds: 1000 });
    const first = await userToken(sim);

    clock.advance(400);
    const refreshed = await refresh(sim, first.refresh_token);

    expect(refreshed.body.refresh_token_expires_in).toBe(600);
    expect(refreshed.body.refresh_token_expires_at).toBe(first.refresh_token_expires_at);
  });

  it('fails with invalid_grant once the refresh token has expired', async () => {
    const clock = fakeClock();
    const sim = await start({ now: clock.now, refreshTokenSeconds: 1000 });
    const first = await userToken(sim);

    clock.advance(1000);
    const answer = await refresh(sim, first.refresh_token);

    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe('invalid_grant');
  });
});

describe('a new authorization_code grant for the same user', () => {
  it("kills the user's previous refresh token", async () => {
    const sim = await start();
    const first = await userToken(sim);

    await userToken(sim);
    const answer = await refresh(sim, first.refresh_token);

    expect(answer.body.error).toBe('invalid_grant');
  });

  it('leaves the previous access token alive until it expires', async () => {
    const clock = fakeClock();
    const sim = await start({ now: clock.now, accessTokenSeconds: 3600 });
    const first = await userToken(sim);
    await userToken(sim);

    const before = await callApi(sim, '/v1/me', first.access_token);
    clock.advance(3600);
    const after = await callApi(sim, '/v1/me', first.access_token);

    expect(before.status).toBe(200);
    expect(after.status).toBe(401);
  });

  it("leaves other users' refresh tokens alone", async () => {
    const sim = await start();
    const other = await control<{ id: number }>(sim, 'users', { email: 'sam.lee@example.com' });
    const othersToken = await userToken(sim, other.body.id);

    await userToken(sim);
    const answer = await refresh(sim, othersToken.refresh_token);

    expect(answer.status).toBe(200);
  });
});

describe('access tokens', () => {
  it('die after accessTokenSeconds', async () => {
    const clock = fakeClock();
    const sim = await start({ now: clock.now, accessTokenSeconds: 60 });
    const token = await userToken(sim);

    clock.advance(59);
    const alive = await callApi(sim, '/v2/profiles', token.access_token);
    clock.advance(1);
    const dead = await callApi(sim, '/v2/profiles', token.access_token);

    expect(alive.status).toBe(200);
    expect(dead.status).toBe(401);
  });

  it('die when the control clock is moved past their expiry', async () => {
    const sim = await start({ accessTokenSeconds: 60 });
    const token = await userToken(sim);

    const moved = await control<{ now: string }>(sim, 'clock', { advanceSeconds: 61 });
    const answer = await callApi(sim, '/v1/me', token.access_token);

    expect(moved.status).toBe(200);
    expect(answer.status).toBe(401);
  });
});
