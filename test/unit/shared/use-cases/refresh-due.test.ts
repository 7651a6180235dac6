import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { logger, MetricName, metrics } from '#shared/observability.ts';
import { obtainClientAccessToken } from '#shared/use-cases/client-token.ts';
import {
  MIN_TIME_TO_START_MS,
  refreshDue,
  SWEEP_STARTS_PER_SECOND,
  SWEEP_TOKEN_CALLS_PER_MINUTE,
  sweepBudget,
} from '#shared/use-cases/refresh-due.ts';
import { STORE_RESERVE_MS } from '#shared/use-cases/refresh-record.ts';
import {
  WiseInvalidClientError,
  WiseInvalidGrantError,
  WiseRateLimitedError,
  WiseUnavailableError,
} from '#shared/wise/errors.ts';
import { fakeBroker, seedConnection, silenceObservability, T0, TTL } from './refresh-fakes.ts';

beforeEach(() => {
  silenceObservability();
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** `count` due connections `acme-0 ..`, and one that is not due. */
async function withDueConnections(count: number, options: Parameters<typeof fakeBroker>[0] = {}) {
  const broker = fakeBroker(options);
  for (let index = 0; index < count; index++) {
    await seedConnection(broker, { connectionId: `acme-${index}`, issuedAt: T0 - 0.8 * TTL - index });
  }
  await seedConnection(broker, { connectionId: 'acme-fresh' });
  return broker;
}

/**
 * Sleeps on the fake clock as timers would: once every other piece of work has settled, the earliest
 * sleeper wakes and the clock moves to its wake-up time.
 */
function useFakeTimers(broker: ReturnType<typeof fakeBroker>): void {
  const sleepers: Array<{ at: number; wake: () => void }> = [];
  let running = false;
  const run = async () => {
    running = true;
    for (let rounds = 0; sleepers.length > 0 && rounds < 10_000; rounds++) {
      await new Promise((settled) => setImmediate(settled));
      sleepers.sort((a, b) => a.at - b.at);
      const first = sleepers.shift();
      if (first === undefined) break;
      broker.clock.advance(Math.max(0, first.at - broker.clock.now()));
      first.wake();
    }
    running = false;
  };
  broker.deps.sleep = (ms) =>
    new Promise<void>((wake) => {
      sleepers.push({ at: broker.clock.now() + ms, wake });
      if (!running) void run();
    });
}

describe('refreshDue', () => {
  it('refreshes every due record and leaves the others alone', async () => {
    const broker = await withDueConnections(3);

    const summary = await refreshDue(broker.deps);

    expect(summary).toEqual({
      budget: 750,
      due: 3,
      refreshed: 3,
      failed: 0,
      busy: 0,
      needsReauth: 0,
      skipped: 0,
      notStarted: 0,
      failedBy: { rateLimited: 0, transient: 0, invalidClient: 0, error: 0 },
      atRisk: 0,
    });
    expect(broker.wise.count('refresh')).toBe(3);
    expect((await broker.store.getConnection('acme-fresh'))?.generation).toBe(1);
  });

  it('counts each outcome in its summary', async () => {
    const broker = await withDueConnections(4, { concurrency: 1 });
    await broker.store.acquireLease(
      { kind: 'connection', connectionId: 'acme-3' },
      { owner: 'other', now: T0, leaseMs: 60_000 },
    );
    // The most overdue first: acme-3 (busy), then acme-2, acme-1, acme-0.
    broker.wise.script('refresh', new WiseInvalidGrantError('revoked'), new WiseUnavailableError('down'));

    const summary = await refreshDue(broker.deps);

    expect(summary).toEqual({
      budget: 750,
      due: 4,
      refreshed: 1,
      failed: 1,
      busy: 1,
      needsReauth: 1,
      skipped: 0,
      notStarted: 0,
      failedBy: { rateLimited: 0, transient: 1, invalidClient: 0, error: 0 },
      atRisk: 0,
    });
  });

  it.each([
    { sweepSeconds: 60, remainingMs: 60_000, budget: 750 },
    { sweepSeconds: 60, remainingMs: undefined, budget: 750 },
    { sweepSeconds: 60, remainingMs: 45_000, budget: 525 },
    { sweepSeconds: 120, remainingMs: 120_000, budget: 1_650 },
    { sweepSeconds: 3600, remainingMs: 900_000, budget: 13_350 },
    { sweepSeconds: 3600, remainingMs: undefined, budget: 53_850 },
  ])(
    'asks the due index for as many records as it can start in its time: $budget with $remainingMs ms left, sweeping every $sweepSeconds s',
    async ({ sweepSeconds, remainingMs, budget }) => {
      const broker = await withDueConnections(1);
      broker.deps.config.refresh.sweepSeconds = sweepSeconds;
      const listDue = vi.spyOn(broker.store, 'listDue');

      const summary = await refreshDue(
        broker.deps,
        remainingMs === undefined ? {} : { remainingTimeMs: () => remainingMs },
      );

      expect(listDue).toHaveBeenCalledWith({ now: T0, limit: budget });
      expect(summary).toMatchObject({ budget, due: 1, refreshed: 1 });
      expect(budget).toBe(
        Math.floor(
          (SWEEP_STARTS_PER_SECOND *
            (Math.min(remainingMs ?? Infinity, sweepSeconds * 1000) - MIN_TIME_TO_START_MS)) /
            1000,
        ),
      );
    },
  );

  it('is not cut to one minute of the rate limit when it has more time', () => {
    expect(sweepBudget(900_000)).toBeGreaterThan(SWEEP_TOKEN_CALLS_PER_MINUTE);
    expect(sweepBudget(MIN_TIME_TO_START_MS)).toBe(0);
    expect(sweepBudget(MIN_TIME_TO_START_MS - 1)).toBe(0);
  });

  it('lists and starts nothing when the invocation starts with too little time', async () => {
    const broker = await withDueConnections(2);
    const listDue = vi.spyOn(broker.store, 'listDue');

    const summary = await refreshDue(broker.deps, { remainingTimeMs: () => MIN_TIME_TO_START_MS });

    expect(listDue).not.toHaveBeenCalled();
    expect(summary).toMatchObject({ budget: 0, due: 0, refreshed: 0, notStarted: 0 });
    expect(broker.wise.count('refresh')).toBe(0);
  });

  it('starts no more than 900/60 refreshes in any second, however many may run at once', async () => {
    const broker = await withDueConnections(45, { concurrency: 8 });
    useFakeTimers(broker);
    const startedAt: number[] = [];
    const refresh = broker.wise.refresh.bind(broker.wise);
    vi.spyOn(broker.wise, 'refresh').mockImplementation(async (...args) => {
      startedAt.push(broker.clock.now());
      return refresh(...args);
    });

    const summary = await refreshDue(broker.deps);

    expect(summary).toMatchObject({ due: 45, refreshed: 45, notStarted: 0 });
    const perSecond = SWEEP_TOKEN_CALLS_PER_MINUTE / 60;
    const crowded = startedAt.filter(
      (at, index) => index >= perSecond && at - (startedAt[index - perSecond] ?? 0) < 1_000,
    );
    expect(crowded).toEqual([]);
    expect((startedAt.at(-1) ?? 0) - T0).toBeGreaterThanOrEqual((44 * 1_000) / perSecond);
  });

  it('paces and budgets at 90 % of a raised Wise limit, refresh.tokenCallsPerMinute', async () => {
    const broker = await withDueConnections(90, { concurrency: 8 });
    broker.deps.config.refresh.tokenCallsPerMinute = 4000;
    useFakeTimers(broker);
    const startedAt: number[] = [];
    const refresh = broker.wise.refresh.bind(broker.wise);
    vi.spyOn(broker.wise, 'refresh').mockImplementation(async (...args) => {
      startedAt.push(broker.clock.now());
      return refresh(...args);
    });

    const summary = await refreshDue(broker.deps);

    // 3600 a minute: 60 a second, and 3000 in the 50 s a 60 s sweep may start refreshes in.
    expect(summary).toMatchObject({ budget: 3000, due: 90, refreshed: 90 });
    const crowded = startedAt.filter((at, index) => index >= 60 && at - (startedAt[index - 60] ?? 0) < 1_000);
    expect(crowded).toEqual([]);
    expect((startedAt.at(-1) ?? 0) - T0).toBeLessThan((89 * 1_000) / SWEEP_STARTS_PER_SECOND);
  });

  it('counts as at risk the records it could not refresh that have less than atRiskShare of their life left', async () => {
    const broker = fakeBroker({ concurrency: 1 });
    await seedConnection(broker, { connectionId: 'acme-late', issuedAt: T0 - 0.95 * TTL });
    await seedConnection(broker, { connectionId: 'acme-due', issuedAt: T0 - 0.85 * TTL });
    await seedConnection(broker, { connectionId: 'acme-fine', issuedAt: T0 - 0.96 * TTL });
    await broker.store.acquireLease(
      { kind: 'connection', connectionId: 'acme-fine' },
      { owner: 'other', now: T0, leaseMs: 60_000 },
    );
    broker.wise.script('refresh', new WiseUnavailableError('down'), new WiseUnavailableError('down'));
    const addMetric = vi.mocked(metrics.addMetric);

    const summary = await refreshDue(broker.deps);

    // acme-fine is busy (another attempt holds its lease) with 4 % left: at risk too; acme-due has 15 %.
    expect(summary).toMatchObject({ due: 3, failed: 2, busy: 1, atRisk: 2 });
    expect(addMetric).toHaveBeenCalledWith(MetricName.connectionsAtRisk, 'Count', 2);
    expect(logger.warn).toHaveBeenCalledWith(
      expect.stringContaining('at risk'),
      expect.objectContaining({ connectionIds: ['acme-fine', 'acme-late'] }),
    );
  });

  it.each([
    { leftAfterSweepMs: 1_900, atRisk: 0, notChecked: 1 },
    { leftAfterSweepMs: 2_100, atRisk: 1, notChecked: 0 },
  ])(
    'reads no record for the at-risk count in the last 2 s of the invocation: $leftAfterSweepMs ms left counts $atRisk',
    async ({ leftAfterSweepMs, atRisk, notChecked }) => {
      const broker = fakeBroker({ concurrency: 1 });
      await seedConnection(broker, { connectionId: 'acme-late', issuedAt: T0 - 0.95 * TTL });
      let left = 60_000;
      vi.spyOn(broker.wise, 'refresh').mockImplementation(async () => {
        left = leftAfterSweepMs;
        throw new WiseUnavailableError('down');
      });

      const summary = await refreshDue(broker.deps, { remainingTimeMs: () => left });

      expect(summary).toMatchObject({ due: 1, failed: 1, atRisk });
      expect(logger.warn).toHaveBeenCalledWith(
        expect.stringContaining('at risk'),
        expect.objectContaining({ atRisk, notChecked }),
      );
    },
  );

  it('counts none at risk when it refreshed every due record', async () => {
    const broker = await withDueConnections(2);
    const addMetric = vi.mocked(metrics.addMetric);

    const summary = await refreshDue(broker.deps);

    expect(summary.atRisk).toBe(0);
    expect(addMetric).toHaveBeenCalledWith(MetricName.connectionsAtRisk, 'Count', 0);
    expect(logger.warn).not.toHaveBeenCalledWith(expect.stringContaining('at risk'), expect.anything());
  });

  it('stops starting refreshes at the first one Wise rate limits, and says so', async () => {
    const broker = await withDueConnections(5, { concurrency: 1 });
    broker.wise.script(
      'refresh',
      {},
      new WiseRateLimitedError('slow down', { status: 429, retryAfterSeconds: 30 }),
    );

    const summary = await refreshDue(broker.deps);

    expect(summary).toEqual({
      budget: 750,
      due: 5,
      refreshed: 1,
      failed: 1,
      busy: 0,
      needsReauth: 0,
      skipped: 0,
      notStarted: 3,
      stoppedBecause: 'rate_limited',
      failedBy: { rateLimited: 1, transient: 0, invalidClient: 0, error: 0 },
      atRisk: 0,
    });
    expect(broker.wise.count('refresh')).toBe(2);
    const stillDue = await broker.store.listDue({ now: broker.clock.now(), limit: 10 });
    expect(stillDue.map((record) => record.key)).toEqual([
      { kind: 'connection', connectionId: 'acme-2' },
      { kind: 'connection', connectionId: 'acme-1' },
      { kind: 'connection', connectionId: 'acme-0' },
    ]);
  });

  it('asks Wise not to retry a 429 during the sweep, and to say when one arrives', async () => {
    const broker = await withDueConnections(1);

    await refreshDue(broker.deps);

    expect(broker.wise.calls[0]?.options).toMatchObject({
      retryRateLimited: false,
      onRateLimited: expect.any(Function),
    });
  });

  it('stops starting refreshes at a 429 Wise answered, even when the refresh then succeeded', async () => {
    const broker = await withDueConnections(5, { concurrency: 1 });
    const refresh = broker.wise.refresh.bind(broker.wise);
    vi.spyOn(broker.wise, 'refresh').mockImplementationOnce(async (params, options) => {
      // What a Wise client that retried the 429 does: tells of it, then returns the retry's grant.
      options?.onRateLimited?.({ retryAfterSeconds: 1 });
      return refresh(params, options);
    });

    const summary = await refreshDue(broker.deps);

    expect(summary).toMatchObject({
      due: 5,
      refreshed: 1,
      failed: 0,
      notStarted: 4,
      stoppedBecause: 'rate_limited',
    });
  });

  it('starts no refresh after a 429 arrives, while the rate-limited one is still ending', async () => {
    const broker = await withDueConnections(6, { concurrency: 2 });
    const refresh = broker.wise.refresh.bind(broker.wise);
    let calls = 0;
    vi.spyOn(broker.wise, 'refresh').mockImplementation(async (params, options) => {
      calls += 1;
      if (calls !== 2) return refresh(params, options);
      options?.onRateLimited?.({ retryAfterSeconds: 30 });
      // The other refresh finishes meanwhile, and its worker looks for the next record.
      for (let round = 0; round < 20; round++) await new Promise((settled) => setImmediate(settled));
      throw new WiseRateLimitedError('slow down', { status: 429, retryAfterSeconds: 30 });
    });

    const summary = await refreshDue(broker.deps);

    expect(calls).toBe(2);
    expect(summary).toMatchObject({
      due: 6,
      refreshed: 1,
      failed: 1,
      notStarted: 4,
      stoppedBecause: 'rate_limited',
    });
  });

  it('goes on after a failure that is not a rate limit', async () => {
    const broker = await withDueConnections(3, { concurrency: 1 });
    broker.wise.script('refresh', new WiseUnavailableError('503', { status: 503 }));

    const summary = await refreshDue(broker.deps);

    expect(summary).toMatchObject({ due: 3, refreshed: 2, failed: 1, notStarted: 0 });
    expect(summary.stoppedBecause).toBeUndefined();
  });

  it('never runs more refreshes at once than the configured concurrency', async () => {
    const broker = await withDueConnections(10, { concurrency: 3 });
    let running = 0;
    let most = 0;
    const refresh = broker.wise.refresh.bind(broker.wise);
    vi.spyOn(broker.wise, 'refresh').mockImplementation(async (...args) => {
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setImmediate(resolve));
      running -= 1;
      return refresh(...args);
    });

    const summary = await refreshDue(broker.deps);

    expect(summary.refreshed).toBe(10);
    expect(most).toBe(3);
  });

  it('starts nothing new once the invocation runs short of time', async () => {
    const broker = await withDueConnections(5, { concurrency: 1 });
    // The first reading sizes the budget; then one before each start.
    const left = [60_000, 60_000, 30_000, MIN_TIME_TO_START_MS - 1];

    const summary = await refreshDue(broker.deps, { remainingTimeMs: () => left.shift() ?? 0 });

    expect(summary).toMatchObject({ due: 5, refreshed: 2, notStarted: 3, stoppedBecause: 'out_of_time' });
  });

  it('gives each call to Wise a deadline that leaves time to store the answer', async () => {
    const broker = await withDueConnections(1);

    await refreshDue(broker.deps, { remainingTimeMs: () => 20_000 });

    expect(broker.wise.calls[0]?.options?.deadlineMs).toBe(T0 + 20_000 - STORE_RESERVE_MS);
  });

  it("starts no write of a refresh in the invocation's last second, though the lease lasts longer", async () => {
    const broker = await withDueConnections(1);
    const startedAt: number[] = [];
    vi.spyOn(broker.store, 'completeRefresh').mockImplementation(async () => {
      startedAt.push(broker.clock.now());
      broker.clock.advance(9_700);
      throw new Error('slow and failing');
    });

    const summary = await refreshDue(broker.deps, { remainingTimeMs: () => 20_000 });

    // A third try would start at T0 + 19 400 (after its 400 ms wait: T0 + 19 800), in the last second.
    expect(summary).toMatchObject({ due: 1, failed: 1 });
    expect(startedAt).toEqual([T0, T0 + 9_700]);
  });

  it('goes on with the other records when one fails unexpectedly', async () => {
    const broker = await withDueConnections(2, { concurrency: 1 });
    vi.spyOn(broker.cipher, 'prepare').mockRejectedValueOnce(new Error('KMS is down'));

    const summary = await refreshDue(broker.deps);

    expect(summary).toMatchObject({ due: 2, refreshed: 1, failed: 1, failedBy: { error: 1 } });
    expect(logger.error).toHaveBeenCalledWith(
      'Refresh failed unexpectedly',
      expect.objectContaining({ connectionId: expect.stringMatching(/^acme-/) }),
    );
  });

  it('counts refused client credentials as an invalid_client failure, and goes on', async () => {
    const broker = await withDueConnections(2, { concurrency: 1 });
    broker.wise.script('refresh', new WiseInvalidClientError('Wise refused the client', { status: 401 }));

    const summary = await refreshDue(broker.deps);

    expect(summary).toMatchObject({
      due: 2,
      refreshed: 1,
      failed: 1,
      failedBy: { invalidClient: 1, transient: 0, rateLimited: 0, error: 0 },
    });
  });

  it('counts a connection disconnected after the listing as skipped', async () => {
    const broker = await withDueConnections(2, { concurrency: 1 });
    const listDue = broker.store.listDue.bind(broker.store);
    vi.spyOn(broker.store, 'listDue').mockImplementation(async (options) => {
      const due = await listDue(options);
      await broker.store.disconnect('acme-0', { now: broker.clock.now() });
      return due;
    });

    const summary = await refreshDue(broker.deps);

    expect(summary).toMatchObject({ due: 2, refreshed: 1, skipped: 1, failed: 0 });
  });

  it('stops at a 429 even from a Wise port that does not call onRateLimited, and leaves the rest due', async () => {
    const broker = await withDueConnections(3, { concurrency: 1 });
    vi.spyOn(broker.wise, 'refresh').mockRejectedValue(
      new WiseRateLimitedError('slow down', { status: 429, retryAfterSeconds: 30 }),
    );

    const summary = await refreshDue(broker.deps);

    expect(summary).toMatchObject({ due: 3, failed: 1, notStarted: 2, stoppedBecause: 'rate_limited' });
    expect(broker.wise.refresh).toHaveBeenCalledTimes(1);
  });

  it('gives no reason for stopping when it started every due record', async () => {
    const broker = await withDueConnections(1);
    broker.wise.script(
      'refresh',
      new WiseRateLimitedError('slow down', { status: 429, retryAfterSeconds: 30 }),
    );

    const summary = await refreshDue(broker.deps);

    expect(summary).toMatchObject({ due: 1, failed: 1, notStarted: 0 });
    expect(summary).not.toHaveProperty('stoppedBecause');
  });

  it('counts no connection at risk that was disconnected or marked for reauthorization meanwhile', async () => {
    const broker = fakeBroker({ concurrency: 1 });
    for (const connectionId of ['acme-a', 'acme-b', 'acme-c']) {
      await seedConnection(broker, { connectionId, issuedAt: T0 - 0.95 * TTL });
    }
    vi.spyOn(broker.wise, 'refresh').mockImplementation(async () => {
      await broker.store.disconnect('acme-b', { now: broker.clock.now() });
      const marked = await broker.store.getConnection('acme-c');
      if (marked) broker.store.seedConnection({ ...marked, status: 'needs_reauth' });
      throw new WiseRateLimitedError('slow down', { status: 429, retryAfterSeconds: 30 });
    });

    const summary = await refreshDue(broker.deps);

    expect(summary).toMatchObject({ due: 3, failed: 1, notStarted: 2, atRisk: 1 });
  });

  it('refreshes the client token when it is due', async () => {
    const broker = fakeBroker();
    await obtainClientAccessToken(broker.deps);
    broker.clock.advance(0.8 * TTL);

    const summary = await refreshDue(broker.deps);

    expect(summary).toMatchObject({ due: 1, refreshed: 1 });
    expect(broker.wise.count('clientCredentials')).toBe(2);
    expect((await broker.store.getClientToken())?.generation).toBe(2);
  });
});
