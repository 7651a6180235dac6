import { afterEach, describe, expect, it } from 'vitest';
import { type RunningSimulator, type SimulatorOptions, startSimulator } from '#local/simulator/index.ts';
import { basic, CLIENT_ID, control, fakeClock, postToken, refresh, userToken } from './support.ts';

let simulator: RunningSimulator | undefined;
async function start(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  simulator = await startSimulator(options);
  return simulator;
}
afterEach(async () => {
  await simulator?.close();
  simulator = undefined;
});

const clientCredentials = { grant_type: 'client_credentials' };

describe('headers on every answer', () => {
  it('carry x-trace-id on the token endpoint, the API, the pages, the control interface and unknown paths', async () => {
    const sim = await start();
    const requests = [
      fetch(`${sim.url}/oauth/token`, { method: 'POST' }),
      fetch(`${sim.url}/v1/me`),
      fetch(sim.authorizeUrl),
      fetch(`${sim.url}/__control/stats`),
      fetch(`${sim.url}/nowhere`),
    ];

    const traceIds = (await Promise.all(requests)).map((response) => response.headers.get('x-trace-id'));

    expect(traceIds).toEqual(traceIds.map(() => expect.stringMatching(/^[0-9a-f]{16}$/)));
  });

  it('echo X-External-Correlation-Id back', async () => {
    const sim = await start();
    const correlationId = '2b4c06f2-6a3e-4d6b-9a44-0c1d1f8e7a55';

    const answer = await postToken(sim, clientCredentials, {
      headers: { 'X-External-Correlation-Id': correlationId },
    });

    expect(answer.headers.get('x-external-correlation-id')).toBe(correlationId);
  });
});

describe('rate limits on /oauth/token', () => {
  it('answer 429 with Retry-After and X-Rate-Limited-By beyond the per-second limit', async () => {
    const clock = fakeClock();
    const sim = await start({ now: clock.now, rateLimit: { perSecond: 2, perMinute: 100 } });
    await postToken(sim, clientCredentials);
    await postToken(sim, clientCredentials);

    const limited = await postToken(sim, clientCredentials);
    clock.advance(1);
    const later = await postToken(sim, clientCredentials);

    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.headers.get('x-rate-limited-by')).toBe('per-second');
    expect(later.status).toBe(200);
  });

  it('answer 429 with the wait until the minute window frees a slot beyond the per-minute limit', async () => {
    const clock = fakeClock();
    const sim = await start({ now: clock.now, rateLimit: { perSecond: 10, perMinute: 3 } });
    for (let i = 0; i < 3; i++) {
      await postToken(sim, clientCredentials);
      clock.advance(10);
    }

    const limited = await postToken(sim, clientCredentials);

    expect(limited.status).toBe(429);
    expect(limited.headers.get('x-rate-limited-by')).toBe('per-minute');
    expect(limited.headers.get('retry-after')).toBe('30');
  });

  it('count each client apart', async () => {
    const clock = fakeClock();
    const sim = await start({ now: clock.now, rateLimit: { perSecond: 1, perMinute: 100 } });
    await postToken(sim, clientCredentials);

    const sameClient = await postToken(sim, clientCredentials);
    const otherClient = await postToken(sim, clientCredentials, { auth: basic('another-client', 'x') });

    expect(sameClient.status).toBe(429);
    expect(otherClient.status).toBe(401);
  });
});

describe('injected faults', () => {
  it('fail the next count token requests with the given status, then serve normally', async () => {
    const sim = await start();
    await control(sim, 'faults', { status: 503, count: 2 });

    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await postToken(sim, clientCredentials)).status);

    expect(statuses).toEqual([503, 503, 200]);
  });

  it('send Retry-After with an injected 429', async () => {
    const sim = await start();
    await control(sim, 'faults', { status: 429, count: 1, retryAfter: 7 });

    const answer = await postToken(sim, clientCredentials);

    expect(answer.status).toBe(429);
    expect(answer.headers.get('retry-after')).toBe('7');
    expect(answer.headers.get('x-rate-limited-by')).toEqual(expect.any(String));
  });

  it('drop the connection without an answer when asked to', async () => {
    const sim = await start();
    await control(sim, 'faults', { drop: true, count: 1 });

    const dropped = postToken(sim, clientCredentials);

    await expect(dropped).rejects.toThrow();
    expect((await postToken(sim, clientCredentials)).status).toBe(200);
  });

  it('delay and then serve normally when given delayMs alone', async () => {
    const sim = await start();
    await control(sim, 'faults', { delayMs: 20, count: 1 });

    const answer = await postToken(sim, clientCredentials);

    expect(answer.status).toBe(200);
    expect(answer.body.token_type).toBe('bearer');
  });

  it('hold the answer back for delayMs', async () => {
    const sim = await start();
    await control(sim, 'faults', { delayMs: 60_000, count: 1 });

    const held = fetch(`${sim.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
      signal: AbortSignal.timeout(300),
    });

    await expect(held).rejects.toThrow(/abort|timeout/i);
  });

  it('count as failed grants in the stats', async () => {
    const sim = await start();
    await control(sim, 'faults', { status: 500, count: 1 });

    await postToken(sim, { grant_type: 'refresh_token', refresh_token: 'whatever' });

    expect(sim.stats().failedGrants.refresh_token).toBe(1);
  });

  it('are refused with 400 when they would change nothing', async () => {
    const sim = await start();

    const answer = await control<{ error: string; message: string }>(sim, 'faults', { count: 1 });

    expect(answer.status).toBe(400);
    expect(answer.body.message).toMatch(/status|delayMs|drop/);
  });
});

describe('the client id in the form', () => {
  it('must match the authenticated client', async () => {
    const sim = await start();

    const answer = await postToken(sim, {
      grant_type: 'authorization_code',
      client_id: `${CLIENT_ID}-other`,
      code: 'c',
      redirect_uri: 'r',
    });

    expect(answer.status).toBe(401);
    expect(answer.body.error).toBe('invalid_client');
  });
});

describe('an outage (forSeconds)', () => {
  it('fails every token request until the simulator clock has moved past it, however many come', async () => {
    const clock = fakeClock();
    const sim = await start({ now: clock.now });
    await control(sim, 'faults', { status: 503, forSeconds: 3600 });

    const during: number[] = [];
    for (let i = 0; i < 5; i++) during.push((await postToken(sim, clientCredentials)).status);
    clock.advance(3599);
    const lastSecond = (await postToken(sim, clientCredentials)).status;
    clock.advance(1);
    const after = (await postToken(sim, clientCredentials)).status;

    expect(during).toEqual([503, 503, 503, 503, 503]);
    expect(lastSecond).toBe(503);
    expect(after).toBe(200);
  });

  it('ends at once with DELETE /__control/faults', async () => {
    const sim = await start();
    await control(sim, 'faults', { status: 503, forSeconds: 3600 });

    const cleared = await fetch(`${sim.url}/__control/faults`, { method: 'DELETE' });
    const answer = await postToken(sim, clientCredentials);

    expect(cleared.status).toBe(204);
    expect(answer.status).toBe(200);
  });
});

describe('a dropped answer (drop: after-grant)', () => {
  it('acts on the refresh, rotating the refresh token, and then drops the socket', async () => {
    const sim = await start({ rotateRefreshTokens: true });
    const token = await userToken(sim);
    await control(sim, 'faults', { drop: 'after-grant', count: 1 });

    const dropped = refresh(sim, token.refresh_token);
    await expect(dropped).rejects.toThrow();
    const again = await refresh(sim, token.refresh_token);

    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');
    expect(sim.stats()).toMatchObject({
      grants: { refresh_token: 1 },
      failedGrants: { refresh_token: 1 },
      answersLost: 1,
    });
  });

  it('is refused with 400 for any other drop value', async () => {
    const sim = await start();

    const answer = await control<{ message: string }>(sim, 'faults', { drop: 'sometimes' });

    expect(answer.status).toBe(400);
    expect(answer.body.message).toMatch(/^drop/);
  });
});

describe('the rateLimited counter', () => {
  it('counts the 429s of the rate limit, not injected ones', async () => {
    const sim = await start({ rateLimit: { perSecond: 1, perMinute: 10 } });
    await control(sim, 'faults', { status: 429, count: 1, retryAfter: 3 });

    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await postToken(sim, clientCredentials)).status);

    expect(statuses).toEqual([429, 200, 429]);
    expect(sim.stats().rateLimited).toBe(1);
  });
});
