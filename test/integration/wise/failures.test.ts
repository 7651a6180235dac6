import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WiseInvalidClientError, WiseRateLimitedError, WiseUnavailableError } from '#shared/wise/errors.ts';
import type { WiseOAuthClient } from '#shared/wise/wise-oauth-client.ts';
import {
  approve,
  CLIENT_ID,
  CLIENT_SECRET,
  cachedCredentials,
  clientFor,
  control,
  defaultUserId,
  type Simulator,
  startTestSimulator,
  wiseFailure,
} from './simulator-support.ts';

describe('WiseOAuthClient against faults injected into the Wise simulator', () => {
  let simulator: Simulator;
  const clients: WiseOAuthClient[] = [];

  beforeAll(async () => {
    simulator = await startTestSimulator();
  });

  afterEach(async () => {
    await control(simulator, 'reset-stats', {});
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });

  afterAll(async () => {
    await simulator.close();
  });

  function testClient(overrides: Parameters<typeof clientFor>[1] = {}) {
    const made = clientFor(simulator, overrides);
    clients.push(made.client);
    return made;
  }

  it('waits out a 429 with Retry-After and then gets the token', async () => {
    const { client, sleeps } = testClient();
    await control(simulator, 'faults', { status: 429, count: 1, retryAfter: 2 });

    const grant = await client.clientCredentials();

    expect(grant.accessToken).not.toBe('');
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThanOrEqual(2000);
    expect(simulator.stats().failedGrants.client_credentials).toBe(1);
    expect(simulator.stats().grants.client_credentials).toBe(1);
  });

  it('gives up on a 429 whose Retry-After reaches past the deadline, saying how long to wait', async () => {
    const { client, sleeps } = testClient({ totalDeadlineMs: 5000 });
    await control(simulator, 'faults', { status: 429, count: 1, retryAfter: 60 });

    const error = await wiseFailure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseRateLimitedError);
    expect((error as WiseRateLimitedError).retryAfterSeconds).toBe(60);
    expect(error.traceId).toMatch(/\S/);
    expect(sleeps).toEqual([]);
  });

  it('answers the first 429 at once, without retrying, when the caller asks so', async () => {
    const { client, sleeps } = testClient();
    const heard: Array<{ retryAfterSeconds?: number }> = [];
    await control(simulator, 'faults', { status: 429, count: 1, retryAfter: 2 });

    const error = await wiseFailure(
      client.clientCredentials({ retryRateLimited: false, onRateLimited: (answer) => heard.push(answer) }),
    );

    expect(error).toBeInstanceOf(WiseRateLimitedError);
    expect(heard).toEqual([{ retryAfterSeconds: 2 }]);
    expect(sleeps).toEqual([]);
    expect(simulator.stats().failedGrants.client_credentials).toBe(1);
    expect(simulator.stats().grants.client_credentials).toBe(0);
  });

  it('tells of a 429 as it arrives even when the retry then gets the token', async () => {
    const { client } = testClient();
    const heard: number[] = [];
    await control(simulator, 'faults', { status: 429, count: 1, retryAfter: 1 });

    const grant = await client.clientCredentials({
      onRateLimited: () => heard.push(simulator.stats().grants.client_credentials),
    });

    expect(grant.accessToken).not.toBe('');
    // Heard before the retry was granted.
    expect(heard).toEqual([0]);
    expect(simulator.stats().grants.client_credentials).toBe(1);
  });

  it('retries a 503 and then refreshes', async () => {
    const { client, sleeps } = testClient();
    const grant = await client.exchangeCode({
      code: await approve(simulator, await defaultUserId(simulator)),
    });
    await control(simulator, 'faults', { status: 503, count: 2 });

    const refreshed = await client.refresh({ refreshToken: grant.refreshToken ?? '' });

    expect(refreshed.accessToken).not.toBe(grant.accessToken);
    expect(sleeps).toHaveLength(2);
    expect(simulator.stats().failedGrants.refresh_token).toBe(2);
  });

  it('throws unavailable after every attempt met a 503', async () => {
    const { client } = testClient({ maxAttempts: 3 });
    await control(simulator, 'faults', { status: 503, count: 3 });

    const error = await wiseFailure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseUnavailableError);
    expect(error.status).toBe(503);
    expect(simulator.stats().failedGrants.client_credentials).toBe(3);
  });

  it('retries a dropped connection', async () => {
    const { client, sleeps } = testClient();
    await control(simulator, 'faults', { drop: true, count: 1 });

    const grant = await client.clientCredentials();

    expect(grant.accessToken).not.toBe('');
    expect(sleeps).toHaveLength(1);
    expect(simulator.stats().failedGrants.client_credentials).toBe(1);
  });

  it('classifies dropped connections on every attempt as unavailable', async () => {
    const { client } = testClient({ maxAttempts: 2 });
    await control(simulator, 'faults', { drop: true, count: 2 });

    const error = await wiseFailure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseUnavailableError);
    expect(error.status).toBeUndefined();
  });

  it('abandons an answer slower than the request timeout and retries', async () => {
    // Long enough for the second, undelayed request even on a busy machine.
    const { client, sleeps } = testClient({ requestTimeoutMs: 1000 });
    await control(simulator, 'faults', { delayMs: 5000, count: 1 });

    const grant = await client.clientCredentials();

    expect(grant.accessToken).not.toBe('');
    expect(sleeps).toHaveLength(1);
  });

  it('classifies an answer slower than the request timeout on the last attempt as unavailable', async () => {
    const { client } = testClient({ requestTimeoutMs: 200, maxAttempts: 1 });
    await control(simulator, 'faults', { delayMs: 5000, count: 1 });

    const error = await wiseFailure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseUnavailableError);
    expect(error.message).toContain('200 ms');
  });
});

describe('WiseOAuthClient when Wise rejects the client secret', () => {
  let simulator: Simulator;
  const clients: WiseOAuthClient[] = [];

  beforeAll(async () => {
    simulator = await startTestSimulator();
  });

  afterEach(async () => {
    await control(simulator, 'client-secret', { clientSecret: CLIENT_SECRET });
    await control(simulator, 'reset-stats', {});
    await Promise.all(clients.splice(0).map((client) => client.close()));
  });

  afterAll(async () => {
    await simulator.close();
  });

  function testClient(credentials: ReturnType<typeof cachedCredentials>) {
    const made = clientFor(simulator, { credentials: credentials.provider });
    clients.push(made.client);
    return made;
  }

  it('picks up a rotated secret by fetching fresh credentials once', async () => {
    const credentials = cachedCredentials({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
    const { client } = testClient(credentials);
    await client.clientCredentials();
    const rotated = 'rotated-secret-0002';
    await control(simulator, 'client-secret', { clientSecret: rotated });
    credentials.store({ clientId: CLIENT_ID, clientSecret: rotated });

    const grant = await client.clientCredentials();

    expect(grant.accessToken).not.toBe('');
    expect(credentials.calls).toEqual([undefined, undefined, { forceFresh: true }]);
  });

  it('falls back to the previous secret while Wise has not taken the new one yet', async () => {
    const credentials = cachedCredentials({
      clientId: CLIENT_ID,
      clientSecret: 'not-yet-registered-secret-0003',
      previousClientSecret: CLIENT_SECRET,
    });
    const { client } = testClient(credentials);

    const grant = await client.clientCredentials();

    expect(grant.accessToken).not.toBe('');
    expect(credentials.calls).toEqual([undefined, { forceFresh: true }]);
  });

  it('throws invalid_client when no secret it has is accepted, without the secrets in the message', async () => {
    const wrong = 'wrong-secret-0004';
    const previous = 'old-secret-0005';
    const credentials = cachedCredentials({
      clientId: CLIENT_ID,
      clientSecret: wrong,
      previousClientSecret: previous,
    });
    const { client } = testClient(credentials);

    const error = await wiseFailure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseInvalidClientError);
    expect(error.status).toBe(401);
    expect(error.wiseError).toBe('invalid_client');
    expect(error.message).not.toContain(wrong);
    expect(error.message).not.toContain(previous);
    expect(simulator.stats().failedGrants.client_credentials).toBe(2);
  });
});
