import { afterAll, describe, expect, it, vi } from 'vitest';
import type { SweepSummary } from '#shared/use-cases/refresh-due.ts';
import { type BrokerHarness, TEST_CLIENT_SECRET } from '../../support/broker.ts';
import { writeReliabilityReport } from '../../support/reliability/report.ts';
import { brokerPerTest, TOKEN_LIFETIME_MS } from '../lifecycle/refresh-support.ts';
import { faultRoutes, publishedMetrics, WISE_REQUEST_TIMEOUT_MS } from './wise-faults-support.ts';

/**
 * The Wise half of the fault matrix: each fault is injected at the simulator while a connection's refresh
 * is due, and the sweep, the connection's status, the published metrics and a caller's vends are checked,
 * with refresh-token rotation off and on. Afterwards the fault is gone and the connection must refresh
 * again (no refresh token lost), unless Wise really ended it, in which case it must say so.
 */

const connected = brokerPerTest();
const metrics = publishedMetrics();

/** What each scenario came to, for the summary line. */
const outcomes: Array<{ refreshCalls: number; lost: boolean; markedLost: boolean }> = [];
afterAll(() => {
  const lost = outcomes.filter((outcome) => outcome.lost);
  writeReliabilityReport({
    source: 'Wise fault matrix',
    scenarios: outcomes.length,
    faults: outcomes.length,
    kills: 0,
    refreshes: outcomes.reduce((sum, outcome) => sum + outcome.refreshCalls, 0),
    lost: lost.length,
    markedLost: lost.filter((outcome) => outcome.markedLost).length,
  });
  console.log(
    `Wise fault matrix: ${outcomes.length} scenarios, ${outcomes.length} faults injected, ` +
      `${outcomes.reduce((sum, outcome) => sum + outcome.refreshCalls, 0)} refresh calls to Wise, ` +
      `refresh tokens lost ${lost.length} (marked refresh_token_lost: ${lost.filter((outcome) => outcome.markedLost).length})`,
  );
});

/** How many refresh-token requests reached the simulator, answered or not. */
function refreshCalls(broker: BrokerHarness): number {
  const { grants, failedGrants } = broker.simulator.stats();
  return grants.refresh_token + failedGrants.refresh_token;
}

/** Waits (bounded, in real time) until requests the simulator held back have been acted on. */
async function landed(broker: BrokerHarness, calls: number): Promise<void> {
  await vi.waitFor(() => expect(refreshCalls(broker)).toBe(calls), { timeout: 5_000, interval: 50 });
}

/** What a fault comes to, for one rotation setting. */
interface Expected {
  /** The sweep that met the fault. */
  sweep: Partial<SweepSummary>;
  /** The connection's status and its last error's code right after. */
  status: 'active' | 'needs_reauth';
  lastError: string | null;
  /** The refresh metrics published (see `publishedMetrics().counts`), zeros left out. */
  metrics: Record<string, number>;
  /** Refresh-token requests that reached Wise because of the sweep (held-back ones included). */
  calls: number;
  /** A caller's vend right after: the status, and whether it had to report a token Wise refused. */
  vend: { status: 200 | 409 | 503; reported: boolean };
  /** The least time from the fault to the next refresh, when Wise asked for it (`Retry-After`), in ms. */
  backOffAtLeastMs?: number;
  /** Once the fault is gone and any back-off has passed: refreshed again, or still (honestly) marked. */
  afterwards: 'refreshed' | { status: 'needs_reauth'; lastError: string };
}

interface Fault {
  name: string;
  simulator?: { invalidGrantStatus?: 400 | 401 };
  /** The fault is the user revoking access: a connection ended by it is not lost by the broker. */
  userRevokes?: true;
  inject(broker: BrokerHarness): Promise<void>;
  /** Undoes a fault that lasts until it is undone. */
  restore?(broker: BrokerHarness): Promise<void>;
  expected(rotation: boolean): Expected;
}

const ok = { status: 200, reported: false } as const;
const refreshedOnce = {
  sweep: { due: 1, refreshed: 1, failed: 0 },
  status: 'active',
  lastError: null,
  metrics: { RefreshSucceeded: 1 },
} as const;
const transientFailure = (code: 'provider_unavailable' | 'rate_limited') =>
  ({
    sweep: { due: 1, refreshed: 0, failed: 1 },
    status: 'active',
    lastError: code,
    metrics: {
      RefreshFailed: 1,
      ProviderUnavailable: 1,
      [`RefreshRefused.${code}`]: 1,
    },
  }) as const;
const lostByTheBroker = {
  status: 'needs_reauth',
  lastError: 'refresh_token_lost',
} as const;

const FAULTS: Fault[] = [
  {
    name: '503 for 2 calls (the Wise client retries within the refresh)',
    inject: (broker) => broker.control('faults', { status: 503, count: 2 }).then(() => undefined),
    expected: () => ({ ...refreshedOnce, calls: 3, vend: ok, afterwards: 'refreshed' }),
  },
  {
    name: '503 for 4 calls (every attempt of one refresh)',
    inject: (broker) => broker.control('faults', { status: 503, count: 4 }).then(() => undefined),
    expected: () => ({
      ...transientFailure('provider_unavailable'),
      calls: 4,
      vend: ok,
      afterwards: 'refreshed',
    }),
  },
  {
    name: '429 with Retry-After: 120',
    inject: (broker) =>
      broker.control('faults', { status: 429, count: 1, retryAfter: 120 }).then(() => undefined),
    expected: () => ({
      ...transientFailure('rate_limited'),
      sweep: { due: 1, refreshed: 0, failed: 1, failedBy: expect.objectContaining({ rateLimited: 1 }) },
      backOffAtLeastMs: 120_000,
      calls: 1,
      vend: ok,
      afterwards: 'refreshed',
    }),
  },
  {
    name: 'a hang past the request deadline, once',
    inject: (broker) =>
      broker.control('faults', { delayMs: 3 * WISE_REQUEST_TIMEOUT_MS, count: 1 }).then(() => undefined),
    // The retry is answered at once; the held request reaches Wise later. With rotation its refresh token
    // is dead by then; without, Wise refreshes again and ends the access token the broker stored, which a
    // caller reports and the broker then replaces.
    expected: (rotation) => ({
      ...refreshedOnce,
      calls: 2,
      vend: { status: 200, reported: !rotation },
      afterwards: 'refreshed',
    }),
  },
  {
    name: 'a hang past the request deadline, every attempt',
    inject: (broker) =>
      broker.control('faults', { delayMs: 3 * WISE_REQUEST_TIMEOUT_MS, count: 4 }).then(() => undefined),
    // Every attempt gave up, and then Wise acted on each: the stored access token is dead either way, and
    // with rotation the refresh token too (the new one went to a request that had given up).
    expected: (rotation) => ({
      ...transientFailure('provider_unavailable'),
      calls: 4,
      vend: { status: 503, reported: true },
      afterwards: rotation ? lostByTheBroker : 'refreshed',
    }),
  },
  {
    name: 'a dropped connection before Wise acted, once',
    inject: (broker) => broker.control('faults', { drop: true, count: 1 }).then(() => undefined),
    expected: () => ({ ...refreshedOnce, calls: 2, vend: ok, afterwards: 'refreshed' }),
  },
  {
    name: 'a dropped connection before Wise acted, every attempt',
    inject: (broker) => broker.control('faults', { drop: true, count: 4 }).then(() => undefined),
    expected: () => ({
      ...transientFailure('provider_unavailable'),
      calls: 4,
      vend: ok,
      afterwards: 'refreshed',
    }),
  },
  {
    name: 'a dropped connection after Wise acted (the answer lost)',
    inject: (broker) => broker.control('faults', { drop: 'after-grant', count: 1 }).then(() => undefined),
    // Without rotation the retry gets a token with the same refresh token. With rotation the refresh token
    // the lost answer carried was the only live one: the broker lost it, and must say so, not blame the user.
    expected: (rotation) =>
      rotation
        ? {
            sweep: { due: 1, refreshed: 0, needsReauth: 1 },
            ...lostByTheBroker,
            metrics: {
              RefreshFailed: 1,
              ReauthorizationRequired: 1,
              ConnectionLostToCrash: 1,
              'RefreshRefused.invalid_grant': 1,
            },
            calls: 2,
            vend: { status: 409, reported: false },
            afterwards: lostByTheBroker,
          }
        : { ...refreshedOnce, calls: 2, vend: ok, afterwards: 'refreshed' },
  },
  ...([400, 401] as const).map(
    (invalidGrantStatus): Fault => ({
      name: `invalid_grant as ${invalidGrantStatus} (the user revoked access)`,
      simulator: { invalidGrantStatus },
      userRevokes: true,
      inject: async (broker) => {
        await broker.control('revoke', { userId: (await broker.defaultUser()).id });
      },
      expected: () => ({
        sweep: { due: 1, refreshed: 0, needsReauth: 1 },
        status: 'needs_reauth',
        lastError: 'invalid_grant',
        metrics: { RefreshFailed: 1, ReauthorizationRequired: 1, 'RefreshRefused.invalid_grant': 1 },
        calls: 1,
        vend: { status: 409, reported: false },
        afterwards: { status: 'needs_reauth', lastError: 'invalid_grant' },
      }),
    }),
  ),
  {
    name: 'invalid_client (the client secret was rotated at Wise)',
    inject: (broker) =>
      broker.control('client-secret', { clientSecret: 'rotated-at-wise-only' }).then(() => undefined),
    restore: (broker) =>
      broker.control('client-secret', { clientSecret: TEST_CLIENT_SECRET }).then(() => undefined),
    expected: () => ({
      sweep: { due: 1, refreshed: 0, failed: 1, failedBy: expect.objectContaining({ invalidClient: 1 }) },
      status: 'active',
      lastError: 'invalid_client',
      metrics: { RefreshFailed: 1, InvalidClient: 1, 'RefreshRefused.invalid_client': 1 },
      calls: 1,
      vend: ok,
      afterwards: 'refreshed',
    }),
  },
];

describe.each([
  { rotation: false, rotateRefreshTokens: false },
  { rotation: true, rotateRefreshTokens: true },
])('Wise faults with refresh-token rotation $rotation', ({ rotation, rotateRefreshTokens }) => {
  it.each(FAULTS)('$name', async (fault) => {
    const { broker, connection } = await connected({
      simulator: { rotateRefreshTokens, ...fault.simulator },
    });
    const routes = faultRoutes(broker);
    const expected = fault.expected(rotation);
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
    const faultAt = broker.clock.now();
    await fault.inject(broker);

    const sweep = await routes.sweep();
    if (expected.calls > refreshCalls(broker)) await landed(broker, expected.calls);
    const calls = refreshCalls(broker);
    const status = await routes.status('acme-1');
    const published = metrics.counts();
    const vend = await routes.callerVend('acme-1');

    expect(sweep).toMatchObject(expected.sweep);
    expect(calls).toBe(expected.calls);
    expect({ status: status.status, lastError: status.lastError?.code ?? null }).toEqual({
      status: expected.status,
      lastError: expected.lastError,
    });
    expect(published).toEqual(expected.metrics);
    expect({ status: vend.status, reported: vend.reported }).toEqual(expected.vend);
    if (vend.status === 200) expect(vend.accepted).toBe(true);

    // Nothing asks Wise again before the back-off (or Retry-After) ends: no retry storm.
    const nextRefreshAt = Date.parse(status.nextRefreshAt ?? '') || broker.clock.now();
    if (expected.backOffAtLeastMs !== undefined)
      expect(nextRefreshAt - faultAt).toBeGreaterThanOrEqual(expected.backOffAtLeastMs);
    const callsBefore = refreshCalls(broker);
    if (expected.lastError !== null)
      broker.clock.advance(Math.max(0, nextRefreshAt - 1_000 - broker.clock.now()));
    const quiet = await routes.sweep();
    // While it backs off, a caller is answered as right after the fault, without a call to Wise.
    const quietVend = expected.lastError === null ? undefined : await routes.callerVend('acme-1');
    expect(quiet.due).toBe(0);
    if (quietVend) expect({ status: quietVend.status, reported: quietVend.reported }).toEqual(expected.vend);
    expect(refreshCalls(broker)).toBe(callsBefore);

    await fault.restore?.(broker);
    broker.clock.advance(Math.max(0, nextRefreshAt - broker.clock.now()) + 0.8 * TOKEN_LIFETIME_MS);
    const later = await routes.sweep();
    const after = await routes.status('acme-1');
    const finalVend = await routes.callerVend('acme-1');
    // Lost: the connection needs the user again though the user did nothing.
    outcomes.push({
      refreshCalls: refreshCalls(broker),
      lost: after.status === 'needs_reauth' && !fault.userRevokes,
      markedLost: after.lastError?.code === 'refresh_token_lost',
    });

    if (expected.afterwards === 'refreshed') {
      expect(later).toMatchObject({ refreshed: 1, needsReauth: 0 });
      expect(after).toMatchObject({ status: 'active', lastError: null });
      expect(finalVend).toEqual({ status: 200, accepted: true, reported: false });
      const stored = await broker.runtime.store.getConnection('acme-1');
      expect(stored?.generation).toBeGreaterThan(connection.generation);
    } else {
      expect(after.status).toBe(expected.afterwards.status);
      expect(after.lastError?.code).toBe(expected.afterwards.lastError);
      expect(finalVend.status).toBe(409);
    }
  });
});

describe.each([
  { rotation: false, rotateRefreshTokens: false },
  { rotation: true, rotateRefreshTokens: true },
])(
  'Wise faults met by a vend’s own refresh, with rotation $rotation',
  ({ rotation, rotateRefreshTokens }) => {
    // The faults that leave the stored token alive, and the user's revocation, which does not.
    const cases = FAULTS.filter((fault) => {
      const expected = fault.expected(rotation);
      return fault.userRevokes || (expected.lastError !== null && expected.vend === ok);
    });

    it.each(cases)('$name', async (fault) => {
      const { broker, connection } = await connected({
        simulator: { rotateRefreshTokens, ...fault.simulator },
      });
      const routes = faultRoutes(broker);
      const expected = fault.expected(rotation);
      broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
      await fault.inject(broker);

      const vend = await routes.callerVend('acme-1');
      const status = await routes.status('acme-1');
      const published = metrics.counts();

      expect(vend).toEqual(
        fault.userRevokes
          ? { status: 409, accepted: false, reported: false }
          : { status: 200, accepted: true, reported: false },
      );
      expect({ status: status.status, lastError: status.lastError?.code ?? null }).toEqual({
        status: expected.status,
        lastError: expected.lastError,
      });
      expect(published).toEqual(expected.metrics);
      const stored = await broker.runtime.store.getConnection('acme-1');
      expect(stored?.generation).toBe(connection.generation);
    });
  },
);
