import type { BrokerConfig } from '#shared/config/broker-config.ts';
import { logger } from '#shared/observability.ts';
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
 * the rest is headroom for on-demand refreshes by vends and for new connections.
 */
export const SWEEP_TOKEN_CALLS_PER_MINUTE = 900;

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
  /** Listed but not started because the invocation was running out of time. */
  notStarted: number;
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
 * How many refreshes one sweep may start: its share of {@link SWEEP_TOKEN_CALLS_PER_MINUTE} for the
 * period between sweeps, so a fleet sweeping every `sweepSeconds` stays under Wise's rate limit.
 */
export function sweepBudget(sweepSeconds: number): number {
  return Math.floor((SWEEP_TOKEN_CALLS_PER_MINUTE * sweepSeconds) / 60);
}

/**
 * The scheduled sweep: lists the records whose refresh is due (from the due index, most overdue first,
 * at most the sweep's budget) and refreshes each under its lease with at most `refresh.concurrency`
 * running at once. It starts nothing new once the invocation has less than {@link MIN_TIME_TO_START_MS}
 * left, and hands each refresh the invocation's end, so its call to Wise leaves time to store the answer
 * and no write starts as the invocation is cut off.
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

  let next = 0;
  const worker = async (): Promise<void> => {
    for (let item = due[next]; item !== undefined; item = due[next]) {
      const left = remaining();
      if (left < MIN_TIME_TO_START_MS) return;
      next += 1;
      tally(summary, await refreshOne(deps, item, deps.clock.now() + left));
    }
  };
  const workers = Math.max(1, Math.min(deps.config.refresh.concurrency, due.length));
  await Promise.all(Array.from({ length: workers }, worker));
  summary.notStarted = due.length - next;

  logger.info('Refresh sweep finished', { ...summary, budget });
  return summary;
}

async function refreshOne(
  deps: SweepDeps,
  item: DueRecord,
  invocationEndsAt: number,
): Promise<RefreshOutcome['outcome'] | 'error'> {
  try {
    return (await refreshRecord(deps, item.key, { invocationEndsAt })).outcome;
  } catch (error) {
    // One record's trouble (a ciphertext that does not decrypt, a store that keeps failing) never stops the sweep.
    logger.error('Refresh failed unexpectedly', { record: describe(item.key), error: error as Error });
    return 'error';
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
