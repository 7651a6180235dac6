import { setTimeout as delay } from 'node:timers/promises';
import type { BrokerConfig } from '#shared/config/broker-config.ts';
import { logger } from '#shared/observability.ts';
import type { Clock } from '#shared/ports/clock.ts';
import type { DueRecord } from '#shared/ports/token-store.ts';
import {
  describe,
  type RefreshDeps,
  type RefreshOutcome,
  refreshRecord,
  STORE_RESERVE_MS,
} from './refresh-record.ts';

/**
 * Token calls a minute the sweeps of the whole fleet may spend: Wise allows 1000 a minute per client, and
 * the rest is headroom for on-demand refreshes by vends, for new connections, and for the records that
 * cost more than one call (a registration code granted again, Wise's 429 and 5xx retried).
 */
export const SWEEP_TOKEN_CALLS_PER_MINUTE = 900;

/** How many refreshes a sweep starts a second, at most: its share of the rate limit, spread evenly. */
export const SWEEP_STARTS_PER_SECOND = SWEEP_TOKEN_CALLS_PER_MINUTE / 60;

/**
 * No refresh is started with less time left in the invocation than this: at least 5 s for its call to
 * Wise, and {@link STORE_RESERVE_MS} after it for storing the answer (or recording the failure).
 */
export const MIN_TIME_TO_START_MS = STORE_RESERVE_MS + 5_000;

/** What one sweep did. */
export interface SweepSummary {
  /** Records the due index listed (at most the sweep's budget). */
  due: number;
  refreshed: number;
  /** Transient failures, rejected client credentials and unexpected errors. */
  failed: number;
  /** Another attempt held the lease. */
  busy: number;
  needsReauth: number;
  /** Not needed any more, or gone (disconnected meanwhile). */
  skipped: number;
  /** Listed but not started; they stay due for the next sweep. */
  notStarted: number;
  /**
   * Why the sweep stopped starting refreshes before the end of its list: Wise answered 429, or the
   * invocation was running out of time. Absent when every listed record was started.
   */
  stoppedBecause?: 'rate_limited' | 'out_of_time';
}

export type SweepDeps = RefreshDeps & {
  config: {
    refresh: Pick<BrokerConfig['refresh'], 'fraction' | 'leaseSeconds' | 'concurrency' | 'sweepSeconds'>;
  };
};

export interface SweepOptions {
  /** The invocation's remaining time (Lambda's `context.getRemainingTimeInMillis`); unbounded when absent. */
  remainingTimeMs?: () => number;
}

/**
 * How many refreshes one sweep may start: its share of {@link SWEEP_TOKEN_CALLS_PER_MINUTE} for the period
 * between sweeps, but never more than one minute's share, whatever the period: a sweep's refreshes are
 * started within about a minute, and two sweeps may overlap.
 */
export function sweepBudget(sweepSeconds: number): number {
  const share = Math.floor((SWEEP_TOKEN_CALLS_PER_MINUTE * sweepSeconds) / 60);
  return Math.min(SWEEP_TOKEN_CALLS_PER_MINUTE, share);
}

/**
 * A token bucket that holds one token and gains `ratePerSecond` a second: each call resolves at its turn,
 * at least 1/`ratePerSecond` s after the previous one (turns go in call order), waiting through `sleep`.
 */
function pacer(
  ratePerSecond: number,
  clock: Clock,
  sleep: (ms: number) => Promise<void>,
): () => Promise<void> {
  const intervalMs = 1000 / ratePerSecond;
  let nextTurn = Number.NEGATIVE_INFINITY;
  return async () => {
    const now = clock.now();
    const turn = Math.max(now, nextTurn);
    nextTurn = turn + intervalMs;
    if (turn > now) await sleep(Math.ceil(turn - now));
  };
}

/**
 * The scheduled sweep: lists the records whose refresh is due (from the due index, most overdue first,
 * at most the sweep's budget) and refreshes each under its lease, starting at most
 * {@link SWEEP_STARTS_PER_SECOND} a second with at most `refresh.concurrency` running at once. It starts
 * nothing new once Wise answers 429, or once the invocation has less than {@link MIN_TIME_TO_START_MS}
 * left; the rest stay due for the next sweep. Each refresh gets the invocation's end, so its call to Wise
 * leaves time to store the answer and no write starts as the invocation is cut off.
 */
export async function refreshDue(deps: SweepDeps, options: SweepOptions = {}): Promise<SweepSummary> {
  const remaining = options.remainingTimeMs ?? (() => Number.POSITIVE_INFINITY);
  const budget = sweepBudget(deps.config.refresh.sweepSeconds);
  const due = await deps.store.listDue({ now: deps.clock.now(), limit: budget });
  const summary: SweepSummary = {
    due: due.length,
    refreshed: 0,
    failed: 0,
    busy: 0,
    needsReauth: 0,
    skipped: 0,
    notStarted: 0,
  };
  const pace = pacer(SWEEP_STARTS_PER_SECOND, deps.clock, deps.sleep ?? ((ms) => delay(ms)));
  const state: { stop?: SweepSummary['stoppedBecause'] } = {};

  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < due.length && state.stop === undefined) {
      await pace();
      const left = remaining();
      if (left < MIN_TIME_TO_START_MS) state.stop ??= 'out_of_time';
      const item = due[next];
      if (state.stop !== undefined || item === undefined) return;
      next += 1;
      const outcome = await refreshOne(deps, item, deps.clock.now() + left);
      if (outcome.outcome === 'failed_transient' && outcome.rateLimited) state.stop ??= 'rate_limited';
      tally(summary, outcome.outcome);
    }
  };
  const workers = Math.max(1, Math.min(deps.config.refresh.concurrency, due.length));
  await Promise.all(Array.from({ length: workers }, worker));
  summary.notStarted = due.length - next;
  if (summary.notStarted > 0 && state.stop !== undefined) summary.stoppedBecause = state.stop;

  logger.info('Refresh sweep finished', { ...summary, budget });
  return summary;
}

async function refreshOne(
  deps: SweepDeps,
  item: DueRecord,
  invocationEndsAt: number,
): Promise<RefreshOutcome | { outcome: 'error' }> {
  try {
    return await refreshRecord(deps, item.key, { invocationEndsAt });
  } catch (error) {
    // One record's trouble (a ciphertext that does not decrypt, a store that keeps failing) never stops the sweep.
    logger.error('Refresh failed unexpectedly', { record: describe(item.key), error: error as Error });
    return { outcome: 'error' };
  }
}

function tally(summary: SweepSummary, outcome: RefreshOutcome['outcome'] | 'error'): void {
  switch (outcome) {
    case 'refreshed':
      summary.refreshed += 1;
      break;
    case 'busy':
      summary.busy += 1;
      break;
    case 'needs_reauth':
      summary.needsReauth += 1;
      break;
    case 'not_needed':
    case 'gone':
      summary.skipped += 1;
      break;
    case 'failed_transient':
    case 'invalid_client':
    case 'error':
      summary.failed += 1;
      break;
  }
}
