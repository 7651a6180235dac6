import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CallerPolicy } from '#shared/domain/caller-policy.ts';
import {
  ConnectionNotFoundError,
  ForbiddenError,
  ProviderUnavailableError,
  ReauthorizationRequiredError,
  RolledBackRecordError,
  TokenDecryptionError,
} from '#shared/domain/errors.ts';
import type { RecordKey } from '#shared/domain/records.ts';
import { EXPIRY_SKEW_MS, FALLBACK_VALIDITY_MS } from '#shared/domain/refresh-rule.ts';
import { logger, MetricName, metrics } from '#shared/observability.ts';
import { STORE_RESERVE_MS } from '#shared/use-cases/refresh-record.ts';
import {
  BUSY_WAIT_BUDGET_MS,
  VEND_CACHE_SECONDS,
  VEND_REFRESH_DEADLINE_MS,
  VendCache,
  type VendRequest,
  vendToken,
} from '#shared/use-cases/vend-token.ts';
import {
  WiseInvalidClientError,
  WiseInvalidGrantError,
  WiseRateLimitedError,
  WiseUnavailableError,
} from '#shared/wise/errors.ts';
import { sealForSeed } from '../../../support/fake-envelope.ts';
import {
  fakeBroker,
  HOUR,
  PAYMENTS,
  PAYMENTS_SESSION,
  STRANGER,
  seedConnection,
  silenceObservability,
  T0,
  TTL,
} from './refresh-fakes.ts';

const acme: RecordKey = { kind: 'connection', connectionId: 'acme-1' };

beforeEach(() => {
  silenceObservability();
});

afterEach(() => {
  vi.restoreAllMocks();
});

function request(extra: Partial<VendRequest> = {}): VendRequest {
  return { callerArn: PAYMENTS_SESSION, target: acme, ...extra };
}

/** Another instance's refresh of `acme-1` that finishes while this vend waits. */
async function finishOtherRefresh(broker: ReturnType<typeof fakeBroker>, owner: string) {
  const generation = ((await broker.store.getConnection('acme-1'))?.generation ?? 0) + 1;
  const sealed = await sealForSeed(broker.cipher, acme, generation, { access_token: 'access-other' });
  const now = broker.clock.now();
  await broker.store.completeRefresh(acme, {
    owner,
    now,
    update: {
      generation,
      dataKey: sealed.dataKey,
      accessToken: sealed.access_token ?? new Uint8Array(),
      accessTokenExpiresAt: now + TTL,
      nextRefreshAt: now + 0.8 * TTL,
      lastRefreshAt: now,
    },
  });
}

describe('vendToken', () => {
  describe('the caller policy', () => {
    it('refuses a caller whose patterns do not cover the connection, before reading anything', async () => {
      const broker = fakeBroker();
      const read = vi.spyOn(broker.store, 'getConnection');

      await expect(vendToken(broker.deps, request({ callerArn: STRANGER }))).rejects.toThrow(ForbiddenError);
      expect(read).not.toHaveBeenCalled();
    });

    it('refuses a connection to a caller that may fetch only the client token', async () => {
      const broker = fakeBroker();
      await seedConnection(broker);
      const policy = new CallerPolicy([{ principal: PAYMENTS, clientToken: true }]);

      await expect(vendToken({ ...broker.deps, policy }, request())).rejects.toThrow(ForbiddenError);
      await expect(
        vendToken({ ...broker.deps, policy }, request({ target: { kind: 'client' } })),
      ).resolves.toMatchObject({ tokenType: 'Bearer' });
    });

    it('refuses the client token to a caller without clientToken', async () => {
      const broker = fakeBroker();

      await expect(
        vendToken(broker.deps, request({ callerArn: STRANGER, target: { kind: 'client' } })),
      ).rejects.toThrow(ForbiddenError);
      expect(broker.wise.calls).toEqual([]);
    });
  });

  describe('a stored token that is still fresh', () => {
    it('is vended as it is, with its generation, scope, profile and the promise until its refresh time', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { accessToken: 'access-stored', generation: 4, profileId: 42 });

      const vended = await vendToken(broker.deps, request({ callerArn: PAYMENTS }));

      expect(vended).toEqual({
        accessToken: 'access-stored',
        tokenType: 'Bearer',
        expiresAt: new Date(T0 + TTL).toISOString(),
        validUntil: new Date(T0 + 0.8 * TTL).toISOString(),
        generation: 4,
        scope: 'transfers',
        connectionId: 'acme-1',
        profileId: 42,
      });
      expect(broker.wise.calls).toEqual([]);
      expect(metrics.addMetric).toHaveBeenCalledWith(MetricName.tokenVended, expect.anything(), 1);
    });

    it('is vended without taking the lease', async () => {
      const broker = fakeBroker();
      await seedConnection(broker);
      const lease = vi.spyOn(broker.store, 'acquireLease');

      await vendToken(broker.deps, request());

      expect(lease).not.toHaveBeenCalled();
    });

    it('tells where each vend came from: the store, the warm cache, or a refresh', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { generation: 2 });
      const cache = new VendCache();
      const vends: Array<{ generation: number; source: string }> = [];
      const onVended = (vend: { generation: number; source: string }) => void vends.push(vend);

      await vendToken(broker.deps, request(), { cache, onVended });
      await vendToken(broker.deps, request(), { cache, onVended });
      await vendToken(broker.deps, request({ rejectedGeneration: 2 }), { cache, onVended });

      expect(vends).toEqual([
        { generation: 2, source: 'store' },
        { generation: 2, source: 'cache' },
        { generation: 3, source: 'refresh' },
      ]);
    });

    it('refuses a record older than its fence: an earlier copy written back over it', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { generation: 3 });
      await broker.store.raiseFence(acme, 5);

      await expect(vendToken(broker.deps, request())).rejects.toThrow(RolledBackRecordError);
    });

    it('is vended from the warm cache the second time, touching neither the store nor the cipher', async () => {
      const broker = fakeBroker();
      await seedConnection(broker);
      const cache = new VendCache();
      await vendToken(broker.deps, request(), { cache });
      const read = vi.spyOn(broker.store, 'getConnection');
      const open = vi.spyOn(broker.cipher, 'open');

      const vended = await vendToken(broker.deps, request(), { cache });

      expect(vended.accessToken).toBe('access-stored');
      expect(read).not.toHaveBeenCalled();
      expect(open).not.toHaveBeenCalled();
    });

    it('is read again once the cache entry is older than the cache lifetime, so a disconnect is seen', async () => {
      const broker = fakeBroker();
      await seedConnection(broker);
      const cache = new VendCache();
      await vendToken(broker.deps, request(), { cache });
      await broker.store.disconnect('acme-1', { now: T0 });

      broker.clock.advance(VEND_CACHE_SECONDS * 1000 - 1);
      await expect(vendToken(broker.deps, request(), { cache })).resolves.toMatchObject({ generation: 1 });
      broker.clock.advance(1);
      await expect(vendToken(broker.deps, request(), { cache })).rejects.toThrow(ConnectionNotFoundError);
    });

    it('is served from the cache never past its validUntil', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { nextRefreshAt: T0 + 10_000 });
      const cache = new VendCache();
      await vendToken(broker.deps, request(), { cache });
      const read = vi.spyOn(broker.store, 'getConnection');

      broker.clock.advance(10_000);
      await vendToken(broker.deps, request(), { cache });

      expect(read).toHaveBeenCalled();
    });

    it('bypasses the cache when the caller rejects the cached generation', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { generation: 1 });
      const cache = new VendCache();
      await vendToken(broker.deps, request(), { cache });

      const vended = await vendToken(broker.deps, request({ rejectedGeneration: 1 }), { cache });

      expect(vended).toMatchObject({ accessToken: 'access-1', generation: 2 });
      expect(broker.wise.count('refresh')).toBe(1);
    });
  });

  describe('refresh on demand', () => {
    it('refreshes a due token before vending it', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL, generation: 1 });

      const vended = await vendToken(broker.deps, request());

      expect(vended).toMatchObject({ accessToken: 'access-1', generation: 2 });
      expect(vended.validUntil).toBe(new Date(T0 + 0.8 * TTL).toISOString());
    });

    it('gives its own call to Wise a deadline that lets it answer within the API Gateway limit', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL });

      await vendToken(broker.deps, request());

      expect(broker.wise.calls[0]?.options?.deadlineMs).toBe(T0 + VEND_REFRESH_DEADLINE_MS);
    });

    it("ends its call to Wise early enough to store the answer within the request's deadline", async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL });

      await vendToken(broker.deps, request(), { endsAt: T0 + 12_000 });

      expect(broker.wise.calls[0]?.options?.deadlineMs).toBe(T0 + 12_000 - STORE_RESERVE_MS);
    });

    it("starts no write in the request's last second", async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL });
      const startedAt: number[] = [];
      vi.spyOn(broker.store, 'completeRefresh').mockImplementation(async () => {
        startedAt.push(broker.clock.now());
        broker.clock.advance(3_000);
        throw new Error('slow and failing');
      });

      const failure = vendToken(broker.deps, request(), { endsAt: T0 + 7_000 });

      await expect(failure).rejects.toThrow(ProviderUnavailableError);
      expect(startedAt).toEqual([T0, T0 + 3_000]);
    });

    it('refreshes an expired token before vending it', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 2 * TTL });

      await expect(vendToken(broker.deps, request())).resolves.toMatchObject({ accessToken: 'access-1' });
    });

    it('refreshes when the caller rejects the stored generation', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { generation: 7 });

      const vended = await vendToken(broker.deps, request({ rejectedGeneration: 7 }));

      expect(vended).toMatchObject({ accessToken: 'access-1', generation: 8 });
    });

    it('returns the newer stored token without a refresh for an older rejected generation', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { generation: 8 });

      const vended = await vendToken(broker.deps, request({ rejectedGeneration: 7 }));

      expect(vended).toMatchObject({ accessToken: 'access-stored', generation: 8 });
      expect(broker.wise.calls).toEqual([]);
    });
  });

  describe('minValiditySeconds', () => {
    it.each([
      // 12-hour tokens refreshed at 95 %: issued 11.2 h ago, 48 min left, promised for 12 more minutes.
      { name: '12-hour tokens at 95 %', lifetimeMs: TTL, age: 11.2 * HOUR, fraction: 0.95, minimum: 3600 },
      // 600 s tokens refreshed at 95 %: planned at the expiry minus the skew, 200 s left.
      { name: '600 s tokens at 95 %', lifetimeMs: 600_000, age: 400_000, fraction: 0.95, minimum: 300 },
    ])(
      'vends the current token until its validUntil even when it lives less than asked ($name)',
      async ({ lifetimeMs, age, fraction, minimum }) => {
        const broker = fakeBroker();
        const issuedAt = T0 - age;
        const expiresAt = issuedAt + lifetimeMs;
        const planned = Math.min(issuedAt + fraction * lifetimeMs, expiresAt - EXPIRY_SKEW_MS);
        await seedConnection(broker, { issuedAt, lifetimeMs, nextRefreshAt: planned });
        const promised = await vendToken(broker.deps, request());

        broker.clock.advance(planned - T0 - 1);
        const vended = await vendToken(broker.deps, request({ minValiditySeconds: minimum }));

        expect(Date.parse(promised.validUntil)).toBe(planned);
        expect(vended).toMatchObject({
          accessToken: 'access-stored',
          generation: 1,
          expiresAt: new Date(expiresAt).toISOString(),
          validUntil: promised.validUntil,
        });
        expect(expiresAt - broker.clock.now()).toBeLessThan(minimum * 1000);
        expect(broker.wise.calls).toEqual([]);
      },
    );

    it.each([
      { name: '12-hour tokens at 95 %', lifetimeMs: TTL, step: 60_000 },
      { name: '600 s tokens at 95 %', lifetimeMs: 600_000, step: 5_000 },
    ])(
      'never calls Wise before validUntil for any minValiditySeconds ($name)',
      async ({ lifetimeMs, step }) => {
        const broker = fakeBroker();
        const planned = Math.min(0.95 * lifetimeMs, lifetimeMs - EXPIRY_SKEW_MS);
        await seedConnection(broker, { lifetimeMs, nextRefreshAt: T0 + planned });
        const generations = new Set<number>();

        for (let now = T0; now < T0 + planned; now += step) {
          broker.clock.advance(now - broker.clock.now());
          for (const minValiditySeconds of [1, 60, 300, 600, 3600]) {
            generations.add((await vendToken(broker.deps, request({ minValiditySeconds }))).generation);
          }
        }

        expect(broker.wise.calls).toEqual([]);
        expect([...generations]).toEqual([1]);
      },
    );

    it('logs a vend whose token lives less than the caller asked, and only such a vend', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.5 * TTL });

      await vendToken(broker.deps, request({ minValiditySeconds: 0.5 * 3600 * 12 }));
      await vendToken(broker.deps, request({ minValiditySeconds: 0.5 * 3600 * 12 + 1 }));

      expect(logger.info).toHaveBeenCalledTimes(1);
      expect(logger.info).toHaveBeenCalledWith(
        'Token vended',
        expect.objectContaining({ connectionId: 'acme-1', shortOfMinValiditySeconds: 0.5 * 3600 * 12 + 1 }),
      );
      expect(logger.debug).toHaveBeenCalledWith(
        'Token vended',
        expect.not.objectContaining({ shortOfMinValiditySeconds: expect.anything() }),
      );
    });

    it('refreshes at validUntil whatever minimum the caller asks', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { lifetimeMs: 600_000, nextRefreshAt: T0 + 540_000 });

      broker.clock.advance(540_000);
      const vended = await vendToken(broker.deps, request({ minValiditySeconds: 300 }));

      expect(vended).toMatchObject({ accessToken: 'access-1', generation: 2 });
    });
  });

  describe('a refresh held by another instance', () => {
    it('waits for the generation to move and vends the new token without calling Wise', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { generation: 3 });
      await broker.store.acquireLease(acme, { owner: 'other', now: T0, leaseMs: 120_000 });
      const sleep = vi.fn(async () => finishOtherRefresh(broker, 'other'));

      const vended = await vendToken(broker.deps, request({ rejectedGeneration: 3 }), { sleep });

      expect(vended).toMatchObject({ accessToken: 'access-other', generation: 4 });
      expect(broker.wise.calls).toEqual([]);
      expect(sleep).toHaveBeenCalledTimes(1);
    });

    it('vends the stored token when the other refresh outlasts the wait and the token was not rejected', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL });
      await broker.store.acquireLease(acme, { owner: 'stuck', now: T0, leaseMs: 120_000 });
      const waits: number[] = [];

      const vended = await vendToken(broker.deps, request(), { sleep: async (ms) => void waits.push(ms) });

      expect(vended.accessToken).toBe('access-stored');
      expect(vended.validUntil).toBe(new Date(T0 + FALLBACK_VALIDITY_MS).toISOString());
      expect(waits.reduce((sum, ms) => sum + ms, 0)).toBe(BUSY_WAIT_BUDGET_MS);
    });

    it('answers 503 with the lease time as Retry-After when the wait ends and the token was rejected', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { generation: 3 });
      await broker.store.acquireLease(acme, { owner: 'stuck', now: T0, leaseMs: 120_000 });

      const failure = vendToken(broker.deps, request({ rejectedGeneration: 3 }), { sleep: async () => {} });

      await expect(failure).rejects.toThrow(ProviderUnavailableError);
      await expect(failure).rejects.toMatchObject({ retryAfterSeconds: 120 });
    });

    it('refreshes itself when the other attempt gives its lease back without a new token', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL });
      await broker.store.acquireLease(acme, { owner: 'other', now: T0, leaseMs: 120_000 });
      const sleep = vi.fn(async () => void (await broker.store.releaseLease(acme, { owner: 'other' })));

      const vended = await vendToken(broker.deps, request(), { sleep });

      expect(vended).toMatchObject({ accessToken: 'access-1', generation: 2 });
      expect(broker.wise.count('refresh')).toBe(1);
      expect(sleep).toHaveBeenCalledTimes(1);
    });

    it('waits with a doubling pause, 50 ms first and 1 s at most, within its budget', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL });
      await broker.store.acquireLease(acme, { owner: 'stuck', now: T0, leaseMs: 120_000 });
      const waits: number[] = [];

      await vendToken(broker.deps, request(), { sleep: async (ms) => void waits.push(ms) });

      expect(waits.slice(0, 6)).toEqual([50, 100, 200, 400, 800, 1_000]);
      expect(Math.max(...waits)).toBe(1_000);
      expect(waits.reduce((sum, ms) => sum + ms, 0)).toBe(BUSY_WAIT_BUDGET_MS);
    });

    it('stops waiting as soon as the connection is disconnected, and answers 404', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL });
      await broker.store.acquireLease(acme, { owner: 'other', now: T0, leaseMs: 120_000 });
      const sleep = vi.fn(async () => void (await broker.store.disconnect('acme-1', { now: T0 })));

      await expect(vendToken(broker.deps, request(), { sleep })).rejects.toThrow(ConnectionNotFoundError);
      expect(sleep).toHaveBeenCalledTimes(1);
    });

    it('vends the still-valid token when the other refresh failed, without trying again itself', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL });
      await broker.store.acquireLease(acme, { owner: 'other', now: T0, leaseMs: 120_000 });
      const sleep = async () => {
        await broker.store.failRefresh(acme, {
          owner: 'other',
          now: T0,
          update: { lastError: { code: 'provider_unavailable', message: 'down', at: T0 }, failureCount: 1 },
        });
      };

      const vended = await vendToken(broker.deps, request(), { sleep });

      expect(vended.accessToken).toBe('access-stored');
      expect(broker.wise.calls).toEqual([]);
    });
  });

  describe('failures', () => {
    it('answers 404 for an unknown connection', async () => {
      const broker = fakeBroker();

      await expect(vendToken(broker.deps, request())).rejects.toThrow(ConnectionNotFoundError);
    });

    it('answers 404 for a disconnected connection', async () => {
      const broker = fakeBroker();
      await seedConnection(broker);
      await broker.store.disconnect('acme-1', { now: T0 });

      await expect(vendToken(broker.deps, request())).rejects.toThrow(ConnectionNotFoundError);
    });

    it('answers 409 for a connection that needs reauthorization', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { status: 'needs_reauth' });

      await expect(vendToken(broker.deps, request())).rejects.toThrow(ReauthorizationRequiredError);
    });

    it('answers 409 when the on-demand refresh meets invalid_grant', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { generation: 2 });
      broker.wise.script('refresh', new WiseInvalidGrantError('revoked'));

      await expect(vendToken(broker.deps, request({ rejectedGeneration: 2 }))).rejects.toThrow(
        ReauthorizationRequiredError,
      );
      expect(broker.events.published).toHaveLength(1);
    });

    it('vends the still-valid due token when Wise rate limits the refresh', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL });
      broker.wise.script('refresh', new WiseRateLimitedError('429', { retryAfterSeconds: 30 }));

      const vended = await vendToken(broker.deps, request());

      expect(vended.accessToken).toBe('access-stored');
      expect(new Date(vended.validUntil).getTime()).toBeGreaterThan(T0);
    });

    it('vends the still-valid token when Wise rejects the client credentials', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL });
      broker.wise.script('refresh', new WiseInvalidClientError('bad secret'));

      await expect(vendToken(broker.deps, request())).resolves.toMatchObject({
        accessToken: 'access-stored',
      });
    });

    it('answers 503 with Retry-After when Wise is down and the stored token is expired', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - TTL - HOUR });
      broker.wise.script('refresh', new WiseUnavailableError('503', { retryAfterSeconds: 90 }));

      const failure = vendToken(broker.deps, request());

      await expect(failure).rejects.toThrow(ProviderUnavailableError);
      await expect(failure).rejects.toMatchObject({ retryAfterSeconds: 90 });
    });

    it('answers 503 rather than vend the token the caller rejected when Wise is down', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { generation: 5 });
      broker.wise.script('refresh', new WiseUnavailableError('503'));

      await expect(vendToken(broker.deps, request({ rejectedGeneration: 5 }))).rejects.toThrow(
        ProviderUnavailableError,
      );
    });

    it('fails with TokenDecryptionError when the stored ciphertext belongs to another record', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { connectionId: 'acme-1' });
      const other = await seedConnection(broker, { connectionId: 'acme-2', accessToken: 'access-of-acme-2' });
      const victim = await broker.store.getConnection('acme-1');
      if (!victim || !other.accessToken) throw new Error('seed failed');
      broker.store.seedConnection({ ...victim, accessToken: other.accessToken });

      await expect(vendToken(broker.deps, request())).rejects.toThrow(TokenDecryptionError);
    });

    it('promises a vended fallback token no later than its expiry minus the skew', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - TTL + EXPIRY_SKEW_MS + 10_000 });
      broker.wise.script('refresh', new WiseUnavailableError('503'));

      const vended = await vendToken(broker.deps, request());

      expect(vended.validUntil).toBe(new Date(T0 + 10_000).toISOString());
    });
  });

  describe('a refresh backing off after a failure', () => {
    /** `acme-1` after a failed refresh: `lastError` recorded and the next attempt a minute away. */
    async function backingOff(seed: Parameters<typeof seedConnection>[1], code = 'provider_unavailable') {
      const broker = fakeBroker();
      await seedConnection(broker, { ...seed, nextRefreshAt: T0 + 60_000 });
      const record = await broker.store.getConnection('acme-1');
      if (!record) throw new Error('seed failed');
      broker.store.seedConnection({
        ...record,
        failureCount: 1,
        lastError: { code, message: 'down', at: T0 },
      });
      return broker;
    }

    it.each(['provider_unavailable', 'rate_limited', 'invalid_client'])(
      'answers 503 with the rest of the back-off for an expired token, without calling Wise (%s)',
      async (code) => {
        const broker = await backingOff({ issuedAt: T0 - TTL - HOUR }, code);

        const first = vendToken(broker.deps, request());
        await expect(first).rejects.toThrow(ProviderUnavailableError);
        await expect(first).rejects.toMatchObject({ retryAfterSeconds: 60 });
        broker.clock.advance(45_000);
        await expect(vendToken(broker.deps, request())).rejects.toMatchObject({ retryAfterSeconds: 15 });

        expect(broker.wise.calls).toEqual([]);
      },
    );

    it('answers 503 for a rejected token during the back-off, and refreshes once it is over', async () => {
      const broker = await backingOff({ generation: 4 });

      const during = vendToken(broker.deps, request({ rejectedGeneration: 4 }));
      await expect(during).rejects.toMatchObject({ retryAfterSeconds: 60 });
      expect(broker.wise.calls).toEqual([]);
      broker.clock.advance(60_000);
      const after = await vendToken(broker.deps, request({ rejectedGeneration: 4 }));

      expect(after).toMatchObject({ accessToken: 'access-1', generation: 5 });
      expect(broker.wise.count('refresh')).toBe(1);
    });

    it('vends the still-valid token the caller did not reject, promised until the next attempt', async () => {
      const broker = await backingOff({ generation: 4 });

      const vended = await vendToken(broker.deps, request({ rejectedGeneration: 3 }));

      expect(vended).toMatchObject({ accessToken: 'access-stored', generation: 4 });
      expect(vended.validUntil).toBe(new Date(T0 + 60_000).toISOString());
      expect(broker.wise.calls).toEqual([]);
    });

    it('does not call Wise when the failure is recorded between its read and its lease', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { generation: 4 });
      const read = broker.store.getConnection.bind(broker.store);
      vi.spyOn(broker.store, 'getConnection').mockImplementationOnce(async (connectionId) => {
        const before = await read(connectionId);
        const record = await read(connectionId);
        if (!record) throw new Error('seed failed');
        broker.store.seedConnection({
          ...record,
          nextRefreshAt: T0 + 60_000,
          failureCount: 1,
          lastError: { code: 'provider_unavailable', message: 'down', at: T0 },
        });
        return before;
      });

      const failure = vendToken(broker.deps, request({ rejectedGeneration: 4 }));

      await expect(failure).rejects.toMatchObject({ retryAfterSeconds: 60 });
      expect(broker.wise.calls).toEqual([]);
    });
  });

  describe('a refresh that fails outside Wise', () => {
    it('vends the still-valid, unrejected token when KMS throttles the data key of the refresh', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL });
      const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      vi.spyOn(broker.cipher, 'prepare').mockRejectedValueOnce(throttled);

      const vended = await vendToken(broker.deps, request());

      expect(vended).toMatchObject({ accessToken: 'access-stored', generation: 1 });
      expect(logger.error).toHaveBeenCalledWith(
        expect.stringContaining('failed'),
        expect.objectContaining({ connectionId: 'acme-1' }),
      );
    });

    it('answers 503 when the token it would fall back on was rejected', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { generation: 2 });
      vi.spyOn(broker.store, 'completeRefresh').mockRejectedValue(new Error('table gone'));

      const failure = vendToken(broker.deps, request({ rejectedGeneration: 2 }));

      await expect(failure).rejects.toThrow(ProviderUnavailableError);
      expect(broker.wise.count('refresh')).toBe(1);
    });

    it('answers 503 instead of the stored token when Wise granted a new one that could not be stored', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL });
      vi.spyOn(broker.store, 'completeRefresh').mockRejectedValue(new Error('table gone'));

      const failure = vendToken(broker.deps, request());

      // The grant killed the stored access token at Wise: vending it would hand out a dead token.
      await expect(failure).rejects.toThrow(ProviderUnavailableError);
      expect(broker.wise.count('refresh')).toBe(1);
    });

    it('still fails with TokenDecryptionError when the stored refresh token does not decrypt', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { issuedAt: T0 - 0.85 * TTL });
      vi.spyOn(broker.cipher, 'open').mockRejectedValueOnce(new TokenDecryptionError('tampered'));

      await expect(vendToken(broker.deps, request())).rejects.toThrow(TokenDecryptionError);
    });
  });

  describe('the client token', () => {
    it('is minted on the first vend and then vended from the store', async () => {
      const broker = fakeBroker();
      const target: RecordKey = { kind: 'client' };

      const first = await vendToken(broker.deps, request({ target }));
      const second = await vendToken(broker.deps, request({ target }));

      expect(first).toMatchObject({ accessToken: 'access-1', generation: 1, tokenType: 'Bearer' });
      expect(first).not.toHaveProperty('connectionId');
      expect(second.accessToken).toBe('access-1');
      expect(broker.wise.count('clientCredentials')).toBe(1);
    });
  });
});

describe('VendCache', () => {
  const token = { accessToken: 'a', expiresAt: T0 + TTL, generation: 3, validUntil: T0 + HOUR };

  it('serves a newer cached token to a caller that rejected an older generation', () => {
    const cache = new VendCache();
    cache.set(acme, token, T0);

    expect(cache.get(acme, T0, { rejectedGeneration: 2 })).toBe(token);
  });

  it('serves a cached token until its validUntil, however long a caller wants it to live', async () => {
    const broker = fakeBroker();
    await seedConnection(broker, { issuedAt: T0 - 0.7 * TTL });
    const cache = new VendCache();
    await vendToken(broker.deps, request(), { cache });
    const read = vi.spyOn(broker.store, 'getConnection');

    const vended = await vendToken(broker.deps, request({ minValiditySeconds: 3600 * 4 }), { cache });

    expect(vended.accessToken).toBe('access-stored');
    expect(read).not.toHaveBeenCalled();
  });

  it('forgets the oldest entry when full', () => {
    const cache = new VendCache({ maxEntries: 2 });
    for (const connectionId of ['a', 'b', 'c']) cache.set({ kind: 'connection', connectionId }, token, T0);

    expect(cache.size).toBe(2);
    expect(cache.get({ kind: 'connection', connectionId: 'a' }, T0)).toBeUndefined();
    expect(cache.get({ kind: 'connection', connectionId: 'c' }, T0)).toBe(token);
  });
});
