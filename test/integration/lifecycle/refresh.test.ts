import { describe, expect, it } from 'vitest';
import { REAUTHORIZATION_REQUIRED_DETAIL_TYPE } from '#shared/adapters/eventbridge-events.ts';
import type { ConnectionRecord } from '#shared/domain/records.ts';
import { BACKOFF_CAP_MS } from '#shared/domain/refresh-rule.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import { refreshRecord } from '#shared/use-cases/refresh-record.ts';
import type { BrokerHarness } from '../../support/broker.ts';
import { openStored } from '../../support/fake-envelope.ts';
import {
  brokerPerTest,
  instanceRuntime,
  refreshRoutes,
  storeWith,
  TOKEN_LIFETIME_MS,
  wiseAccepts,
} from './refresh-support.ts';

const acme = { kind: 'connection', connectionId: 'acme-1' } as const;
const LEASE_MS = 120_000;

const connected = brokerPerTest();

async function tokensOf(harness: BrokerHarness, connection: ConnectionRecord | undefined) {
  if (!connection?.accessToken || !connection.refreshToken)
    throw new Error('The connection holds no tokens.');
  const { cipher } = harness.runtime;
  const accessToken = await openStored(cipher, acme, connection, 'access_token');
  const refreshToken = await openStored(cipher, acme, connection, 'refresh_token');
  if (accessToken === undefined || refreshToken === undefined) throw new Error('A token did not open.');
  return { accessToken, refreshToken };
}

function refreshGrants(harness: BrokerHarness): number {
  return harness.simulator.stats().grants.refresh_token;
}

describe('the scheduled sweep', () => {
  it('refreshes a connection proactively at 80 % of its lifetime, and not before', async () => {
    const { broker, connection, routes } = await connected();
    const before = await tokensOf(broker, connection);

    broker.clock.advance(0.74 * TOKEN_LIFETIME_MS);
    const early = await routes.sweep();
    broker.clock.advance(0.06 * TOKEN_LIFETIME_MS);
    const due = await routes.sweep();

    expect(early).toMatchObject({ due: 0, refreshed: 0 });
    expect(due).toMatchObject({ due: 1, refreshed: 1, failed: 0 });
    const stored = await broker.runtime.store.getConnection('acme-1');
    expect(stored?.generation).toBe(connection.generation + 1);
    expect(stored?.accessTokenExpiresAt).toBe(broker.clock.now() + TOKEN_LIFETIME_MS);
    const after = await tokensOf(broker, stored);
    await expect(wiseAccepts(broker, after.accessToken)).resolves.toBe(true);
    await expect(wiseAccepts(broker, before.accessToken)).resolves.toBe(false);
  });

  it('stops starting refreshes when Wise answers 429, leaving the rest due for the next sweep', async () => {
    const { broker, routes } = await connected({ config: { refresh: { concurrency: 1 } } });
    // One Wise user each: a new grant for the same user would end the refresh token of the one before.
    for (const connectionId of ['acme-2', 'acme-3']) {
      const user = (await broker.control('users', { email: `${connectionId}@example.com` })) as {
        id: number;
      };
      await broker.connect(connectionId, { userId: user.id });
    }
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
    await broker.control('faults', { status: 429, count: 1, retryAfter: 600 });

    const limited = await routes.sweep();
    const next = await routes.sweep();

    expect(limited).toMatchObject({ due: 3, failed: 1, notStarted: 2, stoppedBecause: 'rate_limited' });
    expect(broker.simulator.stats().failedGrants.refresh_token).toBe(1);
    expect(next).toMatchObject({ due: 2, refreshed: 2, notStarted: 0 });
    expect(next).not.toHaveProperty('stoppedBecause');
    expect(refreshGrants(broker)).toBe(2);
  });

  it('starts no refresh after the first 429, though refreshes run side by side and the 429 could be retried', async () => {
    const { broker } = await connected({ config: { refresh: { concurrency: 3 } } });
    for (const connectionId of ['acme-2', 'acme-3', 'acme-4', 'acme-5', 'acme-6']) {
      const user = (await broker.control('users', { email: `${connectionId}@example.com` })) as {
        id: number;
      };
      await broker.connect(connectionId, { userId: user.id });
    }
    // The pacer's turns come at once, so every worker has a refresh running when Wise first answers.
    const unpaced = Object.assign(instanceRuntime(broker, 'sweep-instance'), { sleep: async () => {} });
    const routes = refreshRoutes(broker, { runtime: () => unpaced });
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
    // A short Retry-After: the Wise client on its own would wait it out and get the token.
    await broker.control('faults', { status: 429, count: 1, retryAfter: 1 });

    const limited = await routes.sweep();
    const tokenRequests = broker.simulator.stats();
    const next = await routes.sweep();
    broker.clock.advance(BACKOFF_CAP_MS);
    const afterBackOff = await routes.sweep();

    // 30 s left in the invocation: 15 starts a second for the 20 s before the last 10 s.
    expect(limited).toMatchObject({
      budget: 300,
      due: 6,
      refreshed: 2,
      failed: 1,
      notStarted: 3,
      stoppedBecause: 'rate_limited',
    });
    // The three refreshes running when the 429 came, one request each: none started after it, none retried.
    expect(tokenRequests.failedGrants.refresh_token).toBe(1);
    expect(tokenRequests.grants.refresh_token).toBe(2);
    expect(next).toMatchObject({ due: 3, refreshed: 3, notStarted: 0 });
    expect(next).not.toHaveProperty('stoppedBecause');
    expect(afterBackOff).toMatchObject({ due: 1, refreshed: 1 });
    expect(refreshGrants(broker)).toBe(6);
  });

  describe.each([
    { rotateRefreshTokens: false, refreshTokenChanges: false },
    { rotateRefreshTokens: true, refreshTokenChanges: true },
  ])(
    'with refresh-token rotation $rotateRefreshTokens at the simulator',
    ({ rotateRefreshTokens, refreshTokenChanges }) => {
      it('keeps the connection working across several refreshes', async () => {
        const { broker, connection, routes } = await connected({ simulator: { rotateRefreshTokens } });
        let previous = await tokensOf(broker, connection);

        for (let round = 1; round <= 4; round++) {
          broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
          const summary = await routes.sweep();
          const stored = await broker.runtime.store.getConnection('acme-1');
          const current = await tokensOf(broker, stored);
          const vended = await routes.vendOk({ connectionId: 'acme-1' });

          expect(summary).toMatchObject({ due: 1, refreshed: 1 });
          expect(stored?.generation).toBe(connection.generation + round);
          expect(current.refreshToken !== previous.refreshToken).toBe(refreshTokenChanges);
          expect(vended).toMatchObject({ accessToken: current.accessToken, generation: stored?.generation });
          await expect(wiseAccepts(broker, vended.accessToken)).resolves.toBe(true);
          previous = current;
        }
        expect(refreshGrants(broker)).toBe(4);
      });
    },
  );
});

/** The reauthorization events recorded by the local EventBridge (connecting publishes events too). */
function reauthorizationEvents(broker: BrokerHarness) {
  return broker.aws.recordedEvents.filter(
    (event) => event.detailType === REAUTHORIZATION_REQUIRED_DETAIL_TYPE,
  );
}

describe('invalid_grant', () => {
  it('marks the connection needs_reauth, publishes an event, and vends answer 409', async () => {
    const { broker, connection, routes } = await connected();
    const user = await broker.defaultUser();
    await broker.control('revoke', { userId: user.id });

    const response = await routes.vend({ connectionId: 'acme-1', rejectedGeneration: connection.generation });
    const again = await routes.vend({ connectionId: 'acme-1' });

    expect(response.statusCode).toBe(409);
    expect(response.json).toMatchObject({ error: 'reauthorization_required' });
    expect(again.statusCode).toBe(409);
    const stored = await broker.runtime.store.getConnection('acme-1');
    expect(stored).toMatchObject({ status: 'needs_reauth', lastError: { code: 'invalid_grant' } });
    expect(stored?.nextRefreshAt).toBeUndefined();
    const published = reauthorizationEvents(broker).map((event) => JSON.parse(event.detail ?? '{}'));
    expect(published).toEqual([
      { connectionId: 'acme-1', reason: 'invalid_grant', at: new Date(broker.clock.now()).toISOString() },
    ]);
  });

  it('takes a connection marked needs_reauth off the sweep', async () => {
    const { broker, routes } = await connected();
    await broker.control('revoke', { userId: (await broker.defaultUser()).id });
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);

    const first = await routes.sweep();
    const second = await routes.sweep();

    expect(first).toMatchObject({ due: 1, needsReauth: 1 });
    expect(second).toMatchObject({ due: 0 });
    expect(reauthorizationEvents(broker)).toHaveLength(1);
  });
});

describe('the reauthorization event', () => {
  it('is published by the next sweep when EventBridge failed, and only then is the connection marked', async () => {
    const { broker, routes } = await connected();
    await broker.control('revoke', { userId: (await broker.defaultUser()).id });
    const busDown = instanceRuntime(broker, 'bus-down-instance', {
      events: {
        reauthorizationRequired: async () => {
          throw new Error('EventBridge is unavailable');
        },
        connected: async () => {},
        recovered: async () => {},
        disconnected: async () => {},
      },
    });
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);

    const failedAt = broker.clock.now();
    const failed = await refreshRoutes(broker, { runtime: () => busDown }).sweep();
    const unmarked = await broker.runtime.store.getConnection('acme-1');
    broker.clock.advance(BACKOFF_CAP_MS);
    const retried = await routes.sweep();
    const after = await routes.sweep();

    expect(failed).toMatchObject({ due: 1, failed: 1, needsReauth: 0 });
    expect(unmarked).toMatchObject({ status: 'active', lastError: { code: 'invalid_grant' } });
    expect(unmarked?.nextRefreshAt).toBeGreaterThan(failedAt);
    expect(retried).toMatchObject({ due: 1, needsReauth: 1 });
    expect(after).toMatchObject({ due: 0 });
    expect(await broker.runtime.store.getConnection('acme-1')).toMatchObject({ status: 'needs_reauth' });
    const published = reauthorizationEvents(broker).map((event) => JSON.parse(event.detail ?? '{}'));
    expect(published).toEqual([
      { connectionId: 'acme-1', reason: 'invalid_grant', at: new Date(broker.clock.now()).toISOString() },
    ]);
  });
});

describe('a refresh that crashes', () => {
  it('(a) is taken over once the lease of a refresh that died before calling Wise expires', async () => {
    const { broker, connection, routes } = await connected();
    const impatient = refreshRoutes(broker, { sleep: async () => {} });
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
    await broker.runtime.store.acquireLease(acme, {
      owner: 'crashed-instance',
      now: broker.clock.now(),
      leaseMs: LEASE_MS,
    });

    const whileHeld = await routes.sweep();
    const stillVended = await impatient.vendOk({ connectionId: 'acme-1' });
    broker.clock.advance(LEASE_MS + 1);
    const afterExpiry = await routes.sweep();

    expect(whileHeld).toMatchObject({ due: 1, busy: 1, refreshed: 0 });
    expect(stillVended.generation).toBe(connection.generation);
    expect(afterExpiry).toMatchObject({ due: 1, refreshed: 1 });
    const stored = await broker.runtime.store.getConnection('acme-1');
    expect(stored?.lease).toBeUndefined();
    await expect(wiseAccepts(broker, (await tokensOf(broker, stored)).accessToken)).resolves.toBe(true);
  });

  it('(b) retries a write that failed after Wise answered, so the rotated refresh token is kept', async () => {
    const { broker, routes } = await connected({ simulator: { rotateRefreshTokens: true } });
    let failures = 0;
    const flaky = instanceRuntime(broker, 'flaky-instance', {
      store: storeWith(broker.runtime.store, 'completeRefresh', (real) => async (...args) => {
        if (failures++ === 0) throw new Error('ProvisionedThroughputExceededException');
        return real(...args);
      }),
    });
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);

    const outcome = await refreshRecord(flaky, acme);
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
    const next = await routes.sweep();

    expect(outcome.outcome).toBe('refreshed');
    expect(failures).toBe(2);
    expect(next).toMatchObject({ refreshed: 1, failed: 0, needsReauth: 0 });
    expect(refreshGrants(broker)).toBe(2);
    const stored = await broker.runtime.store.getConnection('acme-1');
    expect(stored?.status).toBe('active');
    await expect(wiseAccepts(broker, (await tokensOf(broker, stored)).accessToken)).resolves.toBe(true);
  });

  it('(c) recognises a write that landed though its answer was lost; the next refresh uses its refresh token', async () => {
    const { broker, connection, routes } = await connected({ simulator: { rotateRefreshTokens: true } });
    let answersLost = 0;
    const unlucky = instanceRuntime(broker, 'unlucky-instance', {
      store: storeWith(broker.runtime.store, 'completeRefresh', (real) => async (...args) => {
        const stored = await real(...args);
        if (answersLost++ === 0) throw new Error('socket hang up');
        return stored;
      }),
    });
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);

    const outcome = await refreshRecord(unlucky, acme);
    const landed = await broker.runtime.store.getConnection('acme-1');
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
    const next = await routes.sweep();

    expect(outcome).toMatchObject({
      outcome: 'refreshed',
      record: { generation: connection.generation + 1 },
    });
    expect(landed?.generation).toBe(connection.generation + 1);
    expect(landed?.lease).toBeUndefined();
    expect(next).toMatchObject({ refreshed: 1, needsReauth: 0 });
    expect(refreshGrants(broker)).toBe(2);
  });

  it('(d) stores a rotated refresh token though KMS fails from the moment Wise answered', async () => {
    const { broker, routes } = await connected({ simulator: { rotateRefreshTokens: true } });
    const { wise, cipher } = broker.runtime;
    let wiseAnswered = false;
    const kmsDown = async (): Promise<never> => {
      throw Object.assign(new Error('KMS is unavailable'), { name: 'KMSInternalException' });
    };
    const unlucky = instanceRuntime(broker, 'unlucky-instance', {
      wise: {
        ...bindAll(wise),
        refresh: async (...args) => {
          const grant = await wise.refresh(...args);
          wiseAnswered = true;
          return grant;
        },
      },
      cipher: {
        encrypt: (...args) => (wiseAnswered ? kmsDown() : cipher.encrypt(...args)),
        decrypt: (...args) => (wiseAnswered ? kmsDown() : cipher.decrypt(...args)),
        prepare: (...args) => (wiseAnswered ? kmsDown() : cipher.prepare(...args)),
        open: (...args) => (wiseAnswered ? kmsDown() : cipher.open(...args)),
      },
    });
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);

    const outcome = await refreshRecord(unlucky, acme);
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
    const next = await routes.sweep();

    expect(wiseAnswered).toBe(true);
    expect(outcome.outcome).toBe('refreshed');
    expect(next).toMatchObject({ refreshed: 1, needsReauth: 0 });
    const stored = await broker.runtime.store.getConnection('acme-1');
    await expect(wiseAccepts(broker, (await tokensOf(broker, stored)).accessToken)).resolves.toBe(true);
  });

  it('(e) reports a connection whose rotated refresh token died with the process as lost by the broker', async () => {
    const { broker, routes } = await connected({ simulator: { rotateRefreshTokens: true } });
    const wise = broker.runtime.wise;
    const killed = instanceRuntime(broker, 'killed-instance', {
      wise: {
        ...bindAll(wise),
        refresh: async (...args) => {
          await wise.refresh(...args);
          throw new Error('SIGKILL: the process died before it could store the answer');
        },
      },
    });
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);

    await expect(refreshRecord(killed, acme)).rejects.toThrow('SIGKILL');
    broker.clock.advance(LEASE_MS + 1);
    const next = await routes.sweep();

    expect(next).toMatchObject({ needsReauth: 1 });
    expect(await broker.runtime.store.getConnection('acme-1')).toMatchObject({
      status: 'needs_reauth',
      lastError: { code: 'refresh_token_lost' },
    });
    const published = reauthorizationEvents(broker).map((event) => JSON.parse(event.detail ?? '{}'));
    expect(published).toMatchObject([{ connectionId: 'acme-1', reason: 'refresh_token_lost' }]);
  });

  it('never revives a connection disconnected while Wise was answering its refresh', async () => {
    const { broker, routes } = await connected();
    const wise = broker.runtime.wise;
    const racing: Runtime = instanceRuntime(broker, 'racing-instance', {
      wise: {
        ...bindAll(wise),
        refresh: async (...args) => {
          const grant = await wise.refresh(...args);
          await broker.runtime.store.disconnect('acme-1', { now: broker.clock.now() });
          return grant;
        },
      },
    });
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);

    const outcome = await refreshRecord(racing, acme);
    const vended = await routes.vend({ connectionId: 'acme-1' });

    expect(outcome).toEqual({ outcome: 'gone' });
    const stored = await broker.runtime.store.getConnection('acme-1');
    expect(stored?.status).toBe('disconnected');
    expect(stored?.accessToken).toBeUndefined();
    expect(stored?.refreshToken).toBeUndefined();
    expect(stored?.nextRefreshAt).toBeUndefined();
    expect(vended.statusCode).toBe(404);
  });
});

/** Every method of a port bound to it, so a copy with one method replaced still works. */
function bindAll<T extends object>(port: T): T {
  const bound: Record<string, unknown> = {};
  let prototype: object | null = port;
  while (prototype && prototype !== Object.prototype) {
    for (const name of Object.getOwnPropertyNames(prototype)) {
      const value: unknown = Reflect.get(port, name);
      if (name !== 'constructor' && typeof value === 'function' && !(name in bound)) {
        bound[name] = value.bind(port);
      }
    }
    prototype = Object.getPrototypeOf(prototype);
  }
  return bound as T;
}
