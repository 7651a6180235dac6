import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import { TokenDecryptionError } from '#shared/domain/errors.ts';
import type { RecordKey } from '#shared/domain/records.ts';
import { BACKOFF_BASE_MS } from '#shared/domain/refresh-rule.ts';
import { logger, MetricName, type metrics, publishMetrics, setMetricsSink } from '#shared/observability.ts';
import {
  LOST_REFRESH_TOKEN,
  RefreshNotStoredError,
  refreshRecord,
  refreshTokenFingerprint,
  STORE_RESERVE_MS,
  WRITE_ATTEMPTS,
} from '#shared/use-cases/refresh-record.ts';
import {
  WiseInvalidClientError,
  WiseInvalidGrantError,
  WiseInvalidRequestError,
  WiseRateLimitedError,
  WiseUnavailableError,
} from '#shared/wise/errors.ts';
import { openStored } from '../../../support/fake-envelope.ts';
import {
  fakeBroker,
  HOUR,
  REGISTRATION_CODE,
  reveal,
  seedConnection,
  silenceObservability,
  T0,
  TTL,
} from './refresh-fakes.ts';

const acme: RecordKey = { kind: 'connection', connectionId: 'acme-1' };
const client: RecordKey = { kind: 'client' };

let metricSpy: MockInstance<typeof metrics.addMetric>;
let logged: MockInstance[];

beforeEach(() => {
  ({ addMetric: metricSpy, logged } = silenceObservability());
});

afterEach(() => {
  vi.restoreAllMocks();
});

function metricNames(): string[] {
  return metricSpy.mock.calls.map(([name]) => name);
}

/** A broker whose connection `acme-1` is due: issued 80 % of a lifetime ago. */
async function dueConnection(options: Parameters<typeof seedConnection>[1] = {}) {
  const broker = fakeBroker();
  await seedConnection(broker, { issuedAt: T0 - 0.8 * TTL, ...options });
  return broker;
}

describe('refreshRecord', () => {
  describe('when the refresh succeeds', () => {
    it('stores the new access token encrypted with generation + 1 and frees the lease', async () => {
      const broker = await dueConnection({ generation: 3 });

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome).toMatchObject({ outcome: 'refreshed', accessToken: 'access-1' });
      const stored = await broker.store.getConnection('acme-1');
      expect(stored?.generation).toBe(4);
      expect(stored?.lease).toBeUndefined();
      expect(stored?.accessTokenExpiresAt).toBe(T0 + TTL);
      await expect(reveal(broker.cipher, acme, 'access_token', stored)).resolves.toBe('access-1');
      expect(broker.wise.calls).toMatchObject([{ method: 'refresh', refreshToken: 'refresh-stored' }]);
      expect(metricNames()).toEqual([
        MetricName.refreshSucceeded,
        MetricName.refreshLateness,
        MetricName.tokenLifeLeftAtRefresh,
      ]);
    });

    it('measures how late past its due time it ran and how much life the replaced token had left', async () => {
      const broker = await dueConnection({ issuedAt: T0 - 0.9 * TTL });

      await refreshRecord(broker.deps, acme);

      const tenthOfLifeSeconds = (0.1 * TTL) / 1000;
      expect(metricSpy).toHaveBeenCalledWith(MetricName.refreshLateness, 'Seconds', tenthOfLifeSeconds);
      expect(metricSpy).toHaveBeenCalledWith(
        MetricName.tokenLifeLeftAtRefresh,
        'Seconds',
        tenthOfLifeSeconds,
      );
    });

    it('plans the next refresh at the configured fraction of the new lifetime', async () => {
      const broker = await dueConnection();

      await refreshRecord(broker.deps, acme);

      expect((await broker.store.getConnection('acme-1'))?.nextRefreshAt).toBe(T0 + 0.8 * TTL);
    });

    it('stores the new refresh token when Wise rotates it', async () => {
      const broker = await dueConnection();
      broker.wise.rotateRefreshTokens = true;

      await refreshRecord(broker.deps, acme);

      const stored = await broker.store.getConnection('acme-1');
      await expect(reveal(broker.cipher, acme, 'refresh_token', stored)).resolves.toBe('refresh-1');
    });

    it('keeps the stored refresh token when Wise returns none', async () => {
      const broker = await dueConnection({ refreshToken: 'refresh-original' });
      broker.wise.script('refresh', { refreshToken: undefined });

      await refreshRecord(broker.deps, acme);

      const stored = await broker.store.getConnection('acme-1');
      await expect(reveal(broker.cipher, acme, 'refresh_token', stored)).resolves.toBe('refresh-original');
    });

    it('gives the call to Wise a deadline at half the lease, well inside it', async () => {
      const broker = await dueConnection();

      await refreshRecord(broker.deps, acme);

      expect(broker.wise.calls[0]?.options?.deadlineMs).toBe(T0 + 60_000);
    });

    it('takes the earlier of its own deadline and the one it is given', async () => {
      const broker = await dueConnection();

      await refreshRecord(broker.deps, acme, { deadlineMs: T0 + 5_000 });

      expect(broker.wise.calls[0]?.options?.deadlineMs).toBe(T0 + 5_000);
    });

    it("leaves a 429 to the Wise client's own retries unless told otherwise, as for a vend", async () => {
      const broker = await dueConnection();

      await refreshRecord(broker.deps, acme, { demand: {} });

      expect(broker.wise.calls[0]?.options).toEqual({ deadlineMs: T0 + 60_000 });
    });

    it('passes how to treat a 429 on to every call to Wise', async () => {
      const broker = await dueConnection();
      const onRateLimited = () => {};

      await refreshRecord(broker.deps, acme, { rateLimits: { retryRateLimited: false, onRateLimited } });

      expect(broker.wise.calls[0]?.options).toEqual({
        deadlineMs: T0 + 60_000,
        retryRateLimited: false,
        onRateLimited,
      });
    });

    it('never logs a token, a refresh token or a registration code', async () => {
      const broker = await dueConnection({ withRegistrationCode: true });
      broker.wise.script('refresh', new WiseInvalidGrantError('refused', { traceId: 'trace-x' }));

      await refreshRecord(broker.deps, acme);
      await refreshRecord(broker.deps, client);

      const everything = JSON.stringify(logged.flatMap((spy) => spy.mock.calls));
      expect(everything).toContain('trace-');
      for (const secret of ['access-1', 'access-2', 'refresh-stored', 'refresh-1', REGISTRATION_CODE]) {
        expect(everything).not.toContain(secret);
      }
    });
  });

  describe('the lease', () => {
    it('is busy, without calling Wise, while another owner holds the lease', async () => {
      const broker = await dueConnection();
      await broker.store.acquireLease(acme, { owner: 'other', now: T0, leaseMs: 120_000 });

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome.outcome).toBe('busy');
      expect(broker.wise.calls).toEqual([]);
    });

    it('takes over a lease whose owner crashed once it has expired', async () => {
      const broker = await dueConnection();
      await broker.store.acquireLease(acme, { owner: 'crashed', now: T0, leaseMs: 120_000 });
      broker.clock.advance(120_001);

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome.outcome).toBe('refreshed');
    });

    it('gives the lease back and calls nobody when the record is not due any more', async () => {
      const broker = fakeBroker();
      await seedConnection(broker);

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome.outcome).toBe('not_needed');
      expect(broker.wise.calls).toEqual([]);
      expect((await broker.store.getConnection('acme-1'))?.lease).toBeUndefined();
    });

    it('refreshes on demand when the stored generation is the rejected one', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { generation: 5 });

      const outcome = await refreshRecord(broker.deps, acme, { demand: { rejectedGeneration: 5 } });

      expect(outcome.outcome).toBe('refreshed');
    });

    it('does not refresh on demand when the rejected generation is older than the stored one', async () => {
      const broker = fakeBroker();
      await seedConnection(broker, { generation: 6 });

      const outcome = await refreshRecord(broker.deps, acme, { demand: { rejectedGeneration: 5 } });

      expect(outcome.outcome).toBe('not_needed');
      expect(broker.wise.calls).toEqual([]);
    });

    it('gives the lease back without calling Wise while the record backs off after a failure', async () => {
      const broker = fakeBroker();
      const seeded = await seedConnection(broker, { issuedAt: T0 - TTL - HOUR, nextRefreshAt: T0 + 90_000 });
      broker.store.seedConnection({
        ...seeded,
        failureCount: 2,
        lastError: { code: 'provider_unavailable', message: 'down', at: T0 - 1_000 },
      });

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome).toMatchObject({ outcome: 'failed_transient', retryAfterSeconds: 90 });
      expect(broker.wise.calls).toEqual([]);
      expect((await broker.store.getConnection('acme-1'))?.lease).toBeUndefined();
    });

    it('is gone for an unknown connection', async () => {
      const broker = fakeBroker();

      await expect(refreshRecord(broker.deps, acme)).resolves.toEqual({ outcome: 'gone' });
    });

    it('is gone for a disconnected connection', async () => {
      const broker = await dueConnection();
      await broker.store.disconnect('acme-1', { now: T0 });

      await expect(refreshRecord(broker.deps, acme)).resolves.toEqual({ outcome: 'gone' });
      expect(broker.wise.calls).toEqual([]);
    });

    it('reports needs_reauth for a connection already marked', async () => {
      const broker = await dueConnection({ status: 'needs_reauth' });

      await expect(refreshRecord(broker.deps, acme)).resolves.toEqual({ outcome: 'needs_reauth' });
    });

    it('releases the lease and rethrows when the stored refresh token does not decrypt', async () => {
      const broker = await dueConnection();
      vi.spyOn(broker.cipher, 'open').mockRejectedValueOnce(new TokenDecryptionError('tampered'));

      await expect(refreshRecord(broker.deps, acme)).rejects.toThrow(TokenDecryptionError);
      expect((await broker.store.getConnection('acme-1'))?.lease).toBeUndefined();
    });
  });

  describe('invalid_grant', () => {
    it('marks the connection needs_reauth, takes it off the due index and publishes an event', async () => {
      const broker = await dueConnection();
      broker.wise.script('refresh', new WiseInvalidGrantError('refused', { wiseError: 'invalid_grant' }));

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome).toEqual({ outcome: 'needs_reauth' });
      const stored = await broker.store.getConnection('acme-1');
      expect(stored).toMatchObject({ status: 'needs_reauth', lastError: { code: 'invalid_grant' } });
      expect(stored?.nextRefreshAt).toBeUndefined();
      expect(broker.events.published).toEqual([{ connectionId: 'acme-1', reason: 'invalid_grant', at: T0 }]);
      expect(metricNames()).toEqual([MetricName.refreshFailed, MetricName.reauthorizationRequired]);
    });

    it('grants again with the stored registration code for a registration-code connection', async () => {
      const broker = await dueConnection({ withRegistrationCode: true, generation: 2 });
      broker.wise.script('refresh', new WiseInvalidGrantError('refused'));

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome).toMatchObject({ outcome: 'refreshed', accessToken: 'access-1' });
      expect(broker.wise.calls.map((call) => call.method)).toEqual(['refresh', 'registrationCodeGrant']);
      const stored = await broker.store.getConnection('acme-1');
      expect(stored).toMatchObject({ status: 'active', generation: 3 });
      await expect(reveal(broker.cipher, acme, 'refresh_token', stored)).resolves.toBe('refresh-1');
      expect(broker.events.published).toEqual([]);
    });

    it('marks needs_reauth when the registration code is refused too (the user reclaimed the account)', async () => {
      const broker = await dueConnection({ withRegistrationCode: true });
      broker.wise.script('refresh', new WiseInvalidGrantError('refused'));
      broker.wise.script('registrationCodeGrant', new WiseInvalidGrantError('reclaimed'));

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome).toEqual({ outcome: 'needs_reauth' });
      expect((await broker.store.getConnection('acme-1'))?.status).toBe('needs_reauth');
      expect(broker.events.published).toHaveLength(1);
    });

    it('backs off without marking when the registration-code grant meets an unavailable Wise', async () => {
      const broker = await dueConnection({ withRegistrationCode: true });
      broker.wise.script('refresh', new WiseInvalidGrantError('refused'));
      broker.wise.script('registrationCodeGrant', new WiseUnavailableError('down'));

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome.outcome).toBe('failed_transient');
      expect((await broker.store.getConnection('acme-1'))?.status).toBe('active');
    });

    it('publishes the event before it marks the connection', async () => {
      const broker = await dueConnection();
      broker.wise.script('refresh', new WiseInvalidGrantError('refused'));
      const statusWhenPublished: Array<string | undefined> = [];
      vi.spyOn(broker.events, 'reauthorizationRequired').mockImplementation(async () => {
        statusWhenPublished.push((await broker.store.getConnection('acme-1'))?.status);
      });

      await refreshRecord(broker.deps, acme);

      expect(statusWhenPublished).toEqual(['active']);
      expect((await broker.store.getConnection('acme-1'))?.status).toBe('needs_reauth');
    });

    it('leaves the connection active and due after a back-off when publishing fails, and publishes next time', async () => {
      const broker = await dueConnection();
      broker.wise.script(
        'refresh',
        new WiseInvalidGrantError('refused'),
        new WiseInvalidGrantError('refused'),
      );
      vi.spyOn(broker.events, 'reauthorizationRequired').mockRejectedValueOnce(new Error('bus down'));

      const first = await refreshRecord(broker.deps, acme);
      const afterFirst = await broker.store.getConnection('acme-1');
      broker.clock.advance(BACKOFF_BASE_MS / 2);
      const due = await broker.store.listDue({ now: broker.clock.now(), limit: 10 });
      const second = await refreshRecord(broker.deps, acme);

      expect(first).toEqual({
        outcome: 'failed_transient',
        retryAfterSeconds: BACKOFF_BASE_MS / 2 / 1000,
        rateLimited: false,
      });
      expect(afterFirst).toMatchObject({
        status: 'active',
        failureCount: 1,
        nextRefreshAt: T0 + BACKOFF_BASE_MS / 2,
        lastError: { code: 'invalid_grant' },
      });
      expect(due.map((record) => record.key)).toEqual([acme]);
      expect(second).toEqual({ outcome: 'needs_reauth' });
      expect(broker.events.published).toEqual([
        { connectionId: 'acme-1', reason: 'invalid_grant', at: T0 + BACKOFF_BASE_MS / 2 },
      ]);
      expect((await broker.store.getConnection('acme-1'))?.status).toBe('needs_reauth');
      expect(logger.error).toHaveBeenCalledWith(
        expect.stringContaining('reauthorization event'),
        expect.objectContaining({ connectionId: 'acme-1' }),
      );
    });

    it('publishes again on the next attempt when marking the connection failed after publishing', async () => {
      const broker = await dueConnection();
      broker.wise.script(
        'refresh',
        new WiseInvalidGrantError('refused'),
        new WiseInvalidGrantError('refused'),
      );
      vi.spyOn(broker.store, 'failRefresh').mockRejectedValueOnce(new Error('write failed'));

      const first = await refreshRecord(broker.deps, acme);
      broker.clock.advance(120_001);
      const second = await refreshRecord(broker.deps, acme);

      expect(first).toEqual({ outcome: 'needs_reauth' });
      expect(second).toEqual({ outcome: 'needs_reauth' });
      expect(broker.events.published).toHaveLength(2);
      expect((await broker.store.getConnection('acme-1'))?.status).toBe('needs_reauth');
    });
  });

  describe('invalid_client', () => {
    it('marks nothing, records the error, backs off and raises the operator alarm', async () => {
      const broker = await dueConnection();
      broker.wise.script('refresh', new WiseInvalidClientError('bad secret', { status: 401 }));

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome).toEqual({ outcome: 'invalid_client', retryAfterSeconds: BACKOFF_BASE_MS / 2 / 1000 });
      const stored = await broker.store.getConnection('acme-1');
      expect(stored).toMatchObject({
        status: 'active',
        failureCount: 1,
        lastError: { code: 'invalid_client' },
      });
      expect(stored?.nextRefreshAt).toBe(T0 + BACKOFF_BASE_MS / 2);
      expect(stored?.lease).toBeUndefined();
      expect(logger.error).toHaveBeenCalledWith(
        expect.stringContaining('client credentials'),
        expect.objectContaining({ connectionId: 'acme-1' }),
      );
      expect(metricNames()).toEqual([MetricName.refreshFailed, MetricName.invalidClient]);
      expect(broker.events.published).toEqual([]);
    });
  });

  describe('refusals by class', () => {
    let published: string[];

    beforeEach(() => {
      // Drop what earlier tests counted.
      setMetricsSink(() => {});
      publishMetrics();
      published = [];
      setMetricsSink((line) => published.push(line));
    });

    afterEach(() => setMetricsSink(undefined));

    /** The `class` dimension of every published RefreshRefused count. */
    function refusedClasses(): string[] {
      publishMetrics();
      return published
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((emf) => emf.RefreshRefused !== undefined)
        .map((emf) => String(emf.class));
    }

    it.each([
      ['invalid_grant', () => new WiseInvalidGrantError('revoked')],
      ['invalid_client', () => new WiseInvalidClientError('bad secret', { status: 401 })],
      ['rate_limited', () => new WiseRateLimitedError('slow down', { status: 429, retryAfterSeconds: 5 })],
      ['provider_unavailable', () => new WiseUnavailableError('down', { status: 503 })],
      ['invalid_request', () => new WiseInvalidRequestError('bad request', { status: 400 })],
    ])('counts a refresh Wise refuses as %s under that class', async (refusal, error) => {
      const broker = await dueConnection();
      broker.wise.script('refresh', error());

      await refreshRecord(broker.deps, acme);

      expect(refusedClasses()).toEqual([refusal]);
    });
  });

  describe('when Wise is unavailable or rate limiting', () => {
    it('backs off for at least the Retry-After of a 429 and keeps the still-valid token', async () => {
      const broker = await dueConnection({ failureCount: 2 });
      const before = await broker.store.getConnection('acme-1');
      broker.wise.script(
        'refresh',
        new WiseRateLimitedError('slow down', { status: 429, retryAfterSeconds: 600 }),
      );

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome).toEqual({ outcome: 'failed_transient', retryAfterSeconds: 600, rateLimited: true });
      const stored = await broker.store.getConnection('acme-1');
      expect(stored).toMatchObject({
        status: 'active',
        failureCount: 3,
        lastError: { code: 'rate_limited' },
      });
      expect(stored?.nextRefreshAt).toBe(T0 + 600_000);
      expect(stored?.accessToken).toEqual(before?.accessToken);
      expect(stored?.generation).toBe(before?.generation);
      expect(metricNames()).toEqual([MetricName.refreshFailed, MetricName.providerUnavailable]);
    });

    it('backs off exponentially with the failure count after a 5xx or a timeout', async () => {
      const broker = await dueConnection({ failureCount: 3 });
      broker.wise.script('refresh', new WiseUnavailableError('503', { status: 503 }));

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome).toEqual({
        outcome: 'failed_transient',
        retryAfterSeconds: (4 * BACKOFF_BASE_MS) / 1000,
        rateLimited: false,
      });
      expect((await broker.store.getConnection('acme-1'))?.nextRefreshAt).toBe(T0 + 4 * BACKOFF_BASE_MS);
    });

    it('backs off and logs an error for a request Wise calls malformed', async () => {
      const broker = await dueConnection();
      broker.wise.script(
        'refresh',
        new WiseInvalidRequestError('bad', { status: 400, wiseError: 'invalid_request' }),
      );

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome.outcome).toBe('failed_transient');
      expect((await broker.store.getConnection('acme-1'))?.lastError?.code).toBe('invalid_request');
      expect(logger.error).toHaveBeenCalled();
    });
  });

  describe('storing what Wise returned', () => {
    it('retries a write that failed and stores the new refresh token', async () => {
      const broker = await dueConnection();
      broker.wise.rotateRefreshTokens = true;
      const complete = broker.store.completeRefresh.bind(broker.store);
      vi.spyOn(broker.store, 'completeRefresh')
        .mockRejectedValueOnce(new Error('ProvisionedThroughputExceededException'))
        .mockImplementation(complete);

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome.outcome).toBe('refreshed');
      const stored = await broker.store.getConnection('acme-1');
      await expect(reveal(broker.cipher, acme, 'refresh_token', stored)).resolves.toBe('refresh-1');
      expect(broker.sleeps).toEqual([200]);
      expect(broker.wise.count('refresh')).toBe(1);
    });

    it('recognises a write that landed though its answer was lost', async () => {
      const broker = await dueConnection({ generation: 1 });
      const complete = broker.store.completeRefresh.bind(broker.store);
      vi.spyOn(broker.store, 'completeRefresh')
        .mockImplementationOnce(async (...args) => {
          await complete(...args);
          throw new Error('socket hang up');
        })
        .mockImplementation(complete);

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome).toMatchObject({
        outcome: 'refreshed',
        accessToken: 'access-1',
        record: { generation: 2 },
      });
      expect((await broker.store.getConnection('acme-1'))?.generation).toBe(2);
    });

    it('gives up after a bounded number of failed writes, frees the lease and says so', async () => {
      const broker = await dueConnection();
      const write = vi.spyOn(broker.store, 'completeRefresh').mockRejectedValue(new Error('table gone'));

      await expect(refreshRecord(broker.deps, acme)).rejects.toThrow(RefreshNotStoredError);
      expect(write).toHaveBeenCalledTimes(WRITE_ATTEMPTS);
      expect((await broker.store.getConnection('acme-1'))?.lease).toBeUndefined();
    });

    it('stops retrying the write when the lease is about to run out', async () => {
      const broker = await dueConnection();
      const write = vi.spyOn(broker.store, 'completeRefresh').mockImplementation(async () => {
        broker.clock.advance(110_000);
        throw new Error('slow and failing');
      });

      await expect(refreshRecord(broker.deps, acme)).rejects.toThrow(RefreshNotStoredError);
      expect(write).toHaveBeenCalledTimes(1);
    });

    it('starts no write in the last second of the invocation, though the lease lasts longer', async () => {
      const broker = await dueConnection();
      const invocationEndsAt = T0 + 7_000;
      const startedAt: number[] = [];
      vi.spyOn(broker.store, 'completeRefresh').mockImplementation(async () => {
        startedAt.push(broker.clock.now());
        broker.clock.advance(3_000);
        throw new Error('slow and failing');
      });

      await expect(refreshRecord(broker.deps, acme, { invocationEndsAt })).rejects.toThrow(
        RefreshNotStoredError,
      );

      expect(startedAt).toEqual([T0, T0 + 3_000]);
    });

    it('ends the call to Wise early enough to store its answer before the invocation ends', async () => {
      const broker = await dueConnection();

      await refreshRecord(broker.deps, acme, { invocationEndsAt: T0 + 20_000 });

      expect(broker.wise.calls[0]?.options?.deadlineMs).toBe(T0 + 20_000 - STORE_RESERVE_MS);
    });

    it('never revives a connection disconnected while Wise was answering', async () => {
      const broker = await dueConnection();
      const refresh = broker.wise.refresh.bind(broker.wise);
      vi.spyOn(broker.wise, 'refresh').mockImplementation(async (...args) => {
        await broker.store.disconnect('acme-1', { now: T0 });
        return refresh(...args);
      });

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome).toEqual({ outcome: 'gone' });
      const stored = await broker.store.getConnection('acme-1');
      expect(stored?.status).toBe('disconnected');
      expect(stored?.accessToken).toBeUndefined();
      expect(stored?.refreshToken).toBeUndefined();
    });
  });

  describe('the client token', () => {
    it('is minted with the client-credentials grant when none is stored', async () => {
      const broker = fakeBroker();

      const outcome = await refreshRecord(broker.deps, client);

      expect(outcome).toMatchObject({ outcome: 'refreshed', accessToken: 'access-1' });
      const stored = await broker.store.getClientToken();
      expect(stored).toMatchObject({
        generation: 1,
        accessTokenExpiresAt: T0 + TTL,
        nextRefreshAt: T0 + 0.8 * TTL,
      });
      await expect(reveal(broker.cipher, client, 'access_token', stored)).resolves.toBe('access-1');
      expect(broker.wise.calls.map((call) => call.method)).toEqual(['clientCredentials']);
    });

    it('is minted again when due', async () => {
      const broker = fakeBroker();
      await refreshRecord(broker.deps, client);
      broker.clock.advance(0.8 * TTL);

      const outcome = await refreshRecord(broker.deps, client);

      expect(outcome).toMatchObject({
        outcome: 'refreshed',
        accessToken: 'access-2',
        record: { generation: 2 },
      });
    });

    it('backs off without any status when Wise rejects the client credentials', async () => {
      const broker = fakeBroker();
      broker.wise.script('clientCredentials', new WiseInvalidClientError('bad secret'));

      const outcome = await refreshRecord(broker.deps, client);

      expect(outcome.outcome).toBe('invalid_client');
      expect((await broker.store.getClientToken())?.lastError?.code).toBe('invalid_client');
    });
  });

  it('refreshes an expired token even when its planned refresh time lies ahead', async () => {
    const broker = fakeBroker();
    await seedConnection(broker, { issuedAt: T0 - TTL - HOUR, nextRefreshAt: T0 + HOUR });

    const outcome = await refreshRecord(broker.deps, acme);

    expect(outcome.outcome).toBe('refreshed');
  });

  describe('the window between Wise and the store', () => {
    /** Every call the refresh makes to the store, the cipher, Wise and the event bus, in order. */
    function recordCalls(broker: Awaited<ReturnType<typeof dueConnection>>): string[] {
      const calls: string[] = [];
      const spyOn = (name: string, target: object) => {
        for (const method of Object.getOwnPropertyNames(Object.getPrototypeOf(target))) {
          if (method === 'constructor' || method.startsWith('#')) continue;
          const original = (target as Record<string, unknown>)[method];
          if (typeof original !== 'function') continue;
          vi.spyOn(target as Record<string, (...args: unknown[]) => unknown>, method).mockImplementation(
            (...args: unknown[]) => {
              calls.push(`${name}.${method}`);
              return (original as (...args: unknown[]) => unknown).apply(target, args);
            },
          );
        }
      };
      spyOn('store', broker.store);
      spyOn('cipher', broker.cipher);
      spyOn('wise', broker.wise);
      spyOn('events', broker.events);
      return calls;
    }

    it.each([
      ['a connection', acme, 'refresh'],
      ['the client token', client, 'clientCredentials'],
    ] as const)('lets nothing but the one write follow Wise’s answer for %s', async (_, key, grant) => {
      const broker = await dueConnection();
      if (key.kind === 'client')
        broker.store.seedClientToken({
          generation: 0,
          version: 0,
          failureCount: 0,
          createdAt: T0,
          updatedAt: T0,
        });
      const calls = recordCalls(broker);

      const outcome = await refreshRecord(broker.deps, key);

      expect(outcome.outcome).toBe('refreshed');
      // The fence is raised once the tokens are durable: after the write, never before it.
      expect(calls.slice(calls.indexOf(`wise.${grant}`) + 1)).toEqual([
        'store.completeRefresh',
        'store.raiseFence',
      ]);
    });

    it('stores a rotated refresh token though the key service is down from the moment Wise answered', async () => {
      const broker = await dueConnection();
      broker.wise.rotateRefreshTokens = true;
      const refresh = broker.wise.refresh.bind(broker.wise);
      vi.spyOn(broker.wise, 'refresh').mockImplementation(async (...args) => {
        const grant = await refresh(...args);
        const down = new Error('KMS is unavailable');
        vi.spyOn(broker.cipher, 'prepare').mockRejectedValue(down);
        vi.spyOn(broker.cipher, 'open').mockRejectedValue(down);
        vi.spyOn(broker.cipher, 'encrypt').mockRejectedValue(down);
        return grant;
      });

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome).toMatchObject({ outcome: 'refreshed', accessToken: 'access-1' });
      vi.mocked(broker.cipher.open).mockRestore();
      const stored = await broker.store.getConnection('acme-1');
      await expect(reveal(broker.cipher, acme, 'refresh_token', stored)).resolves.toBe('refresh-1');
    });

    it('seals every secret of the record under the new data key, the registration code included', async () => {
      const broker = await dueConnection({ withRegistrationCode: true, generation: 4 });

      await refreshRecord(broker.deps, acme);

      const stored = await broker.store.getConnection('acme-1');
      expect(stored?.generation).toBe(5);
      const code = stored && (await openStored(broker.cipher, acme, stored, 'registration_code'));
      expect(code).toBe(REGISTRATION_CODE);
    });
  });

  describe('a refresh token lost by the broker', () => {
    it('records the fingerprint of the refresh token it spends before calling Wise, never the token', async () => {
      const broker = await dueConnection({ refreshToken: 'refresh-stored' });
      let duringCall: unknown;
      const refresh = broker.wise.refresh.bind(broker.wise);
      vi.spyOn(broker.wise, 'refresh').mockImplementation(async (...args) => {
        duringCall = (await broker.store.getConnection('acme-1'))?.spending;
        return refresh(...args);
      });

      await refreshRecord(broker.deps, acme);

      expect(duringCall).toEqual({ fingerprint: refreshTokenFingerprint('refresh-stored'), at: T0 });
      expect(JSON.stringify(duringCall)).not.toContain('refresh-stored');
      expect((await broker.store.getConnection('acme-1'))?.spending).toBeUndefined();
    });

    it('says the connection was lost by the broker when Wise refuses a token an earlier attempt spent and never stored', async () => {
      const broker = await dueConnection({ refreshToken: 'refresh-stored' });
      broker.wise.rotateRefreshTokens = true;
      // The first attempt dies between Wise's answer and the write, as a killed process would.
      const refresh = broker.wise.refresh.bind(broker.wise);
      vi.spyOn(broker.wise, 'refresh').mockImplementationOnce(async (...args) => {
        await refresh(...args);
        throw new Error('the process was killed');
      });
      await expect(refreshRecord(broker.deps, acme)).rejects.toThrow('killed');
      broker.wise.script('refresh', new WiseInvalidGrantError('refused', { wiseError: 'invalid_grant' }));
      broker.clock.advance(1);

      const outcome = await refreshRecord(broker.deps, acme);

      expect(outcome).toEqual({ outcome: 'needs_reauth' });
      const stored = await broker.store.getConnection('acme-1');
      expect(stored).toMatchObject({ status: 'needs_reauth', lastError: { code: LOST_REFRESH_TOKEN } });
      expect(broker.events.published).toEqual([
        { connectionId: 'acme-1', reason: LOST_REFRESH_TOKEN, at: T0 + 1 },
      ]);
      expect(metricNames()).toContain(MetricName.connectionLostToCrash);
    });

    it('keeps saying so when the event could not be published the first time', async () => {
      const broker = await dueConnection({ refreshToken: 'refresh-stored' });
      broker.store.seedConnection({
        ...((await broker.store.getConnection('acme-1')) ?? (undefined as never)),
        spending: { fingerprint: refreshTokenFingerprint('refresh-stored'), at: T0 - 1 },
      });
      broker.wise.script(
        'refresh',
        new WiseInvalidGrantError('refused', { wiseError: 'invalid_grant' }),
        new WiseInvalidGrantError('refused', { wiseError: 'invalid_grant' }),
      );
      vi.spyOn(broker.events, 'reauthorizationRequired').mockRejectedValueOnce(new Error('bus down'));

      await refreshRecord(broker.deps, acme);
      broker.clock.advance(HOUR);
      await refreshRecord(broker.deps, acme);

      expect(broker.events.published).toEqual([
        { connectionId: 'acme-1', reason: LOST_REFRESH_TOKEN, at: T0 + HOUR },
      ]);
    });

    it.each([
      ['after a refresh that was stored', false],
      ['after a refresh that Wise answered with 429', true],
    ])('calls a refused token a user’s revocation %s', async (_, rateLimitedFirst) => {
      const broker = await dueConnection({ refreshToken: 'refresh-stored' });
      if (rateLimitedFirst)
        broker.wise.script('refresh', new WiseRateLimitedError('slow down', { retryAfterSeconds: 1 }));
      await refreshRecord(broker.deps, acme);
      broker.clock.advance(TTL);
      broker.wise.script('refresh', new WiseInvalidGrantError('refused', { wiseError: 'invalid_grant' }));

      await refreshRecord(broker.deps, acme);

      expect((await broker.store.getConnection('acme-1'))?.lastError?.code).toBe('invalid_grant');
      expect(broker.events.published.map((event) => event.reason)).toEqual(['invalid_grant']);
      expect(metricNames()).not.toContain(MetricName.connectionLostToCrash);
    });

    it('keeps the record of the spent token when Wise’s answer is unknown (a 5xx or a timeout)', async () => {
      const broker = await dueConnection({ refreshToken: 'refresh-stored' });
      broker.wise.script('refresh', new WiseUnavailableError('timed out'));

      await refreshRecord(broker.deps, acme);

      expect((await broker.store.getConnection('acme-1'))?.spending?.fingerprint).toBe(
        refreshTokenFingerprint('refresh-stored'),
      );
    });
  });
});
