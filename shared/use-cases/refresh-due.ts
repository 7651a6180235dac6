import { setTimeout as delay } from 'node:timers/promises';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { BrokerConfig } from '#shared/config/broker-config.ts';
import { isAtRisk } from '#shared/domain/refresh-slo.ts';
import { logger, MetricName, metrics, recordKeys } from '#shared/observability.ts';
import type { Clock } from '#shared/ports/clock.ts';
import type { DueRecord } from '#shared/ports/token-store.ts';
import {
  type RefreshDeps,
  type RefreshOptions,
  type RefreshOutcome,
  readRecord,
  refreshRecord,
  STORE_RESERVE_MS,
} from './refresh-record.ts';

/**
 * The share of Wise's token rate limit (`refresh.tokenCallsPerMinute`, 1000 a minute per client by
 * default) the sweep may spend: the rest is headroom for on-demand refreshes by vends, for new connections,
 * and for the records that cost more than one call (a registration code granted again, Wise's 5xx
 * retried). Sweeps do not start refreshes at the same time: one runs at most its period (the function's
 * timeout) and starts nothing in its last {@link MIN_TIME_TO_START_MS}, so the next one starts after it
 * stopped starting.
 */
export const SWEEP_SHARE_OF_RATE_LIMIT = 0.9;

/** Token calls a minute the sweep may spend at Wise's default limit of 1000. */
export const SWEEP_TOKEN_CALLS_PER_MINUTE = 900;

/** How many refreshes a sweep starts a second at Wise's default limit: its share, spread evenly. */
export const SWEEP_STARTS_PER_SECOND = SWEEP_TOKEN_CALLS_PER_MINUTE / 60;

/** How many refreshes a sweep starts a second, at most, for Wise's token rate limit of the client. */
export function sweepStartsPerSecond(tokenCallsPerMinute: number): number {
  return (tokenCallsPerMinute * SWEEP_SHARE_OF_RATE_LIMIT) / 60;
}

/**
 * No refresh is started with less time left in the invocation than this: at least 5 s for its call to
 * Wise, and {@link STORE_RESERVE_MS} after it for storing the answer (or recording the failure).
 */
export const MIN_TIME_TO_START_MS = STORE_RESERVE_MS + 5_000;

/** What one sweep did. */
export interface SweepSummary {
  /**
   * How many refreshes the sweep could start in the time it had: see {@link sweepBudget}. The due index is
   * asked for this many records at most.
   */
  budget: number;
  /** Records the due index listed (at most the sweep's budget). */
  due: number;
  refreshed: number;
  /** Transient failures, rejected client credentials and unexpected errors. */
  failed: number;
  /** The failures by class: Wise's 429, other transient failures (5xx, timeouts, back-off), invalid_client, unexpected errors. */
  failedBy: { rateLimited: number; transient: number; invalidClient: number; error: number };
  /** Another attempt held the lease. */
  busy: number;
  needsReauth: number;
  /** Not needed any more, or gone (disconnected meanwhile). */
  skipped: number;
  /** Listed but not started; they stay due for the next sweep. */
  notStarted: number;
  /**
   * Records listed but not refreshed (failed, busy or not started) whose token has less than
   * `refresh.atRiskShare` of its lifetime left: the `ConnectionsAtRisk` metric.
   */
  atRisk: number;
  /**
   * Why the sweep stopped starting refreshes before the end of its list: Wise answered 429, or the
   * invocation was running out of time. Absent when every listed record was started.
   */
  stoppedBecause?: 'rate_limited' | 'out_of_time';
}

export type SweepDeps = RefreshDeps & {
  config: {
    refresh: Pick<
      BrokerConfig['refresh'],
      'fraction' | 'leaseSeconds' | 'concurrency' | 'sweepSeconds' | 'tokenCallsPerMinute' | 'atRiskShare'
    >;
  };
};

export interface SweepOptions {
  /** The invocation's remaining time (Lambda's `context.getRemainingTimeInMillis`); unbounded when absent. */
  remainingTimeMs?: () => number;
}

/**
 * How many refreshes one sweep can start with `availableMs` of time: the pacer starts
 * {@link SWEEP_STARTS_PER_SECOND} a second and nothing is started in the last {@link MIN_TIME_TO_START_MS},
 * so `floor(SWEEP_STARTS_PER_SECOND x (availableMs - MIN_TIME_TO_START_MS) / 1000)`, and 0 when less is left.
 * With a 60 s sweep that is 750 at Wise's default limit; an hourly sweep (its function times out at 900 s)
 * gets 13,350.
 */
export function sweepBudget(availableMs: number, startsPerSecond = SWEEP_STARTS_PER_SECOND): number {
  const startingMs = availableMs - MIN_TIME_TO_START_MS;
  return startingMs > 0 ? Math.floor((startsPerSecond * startingMs) / 1000) : 0;
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
 * at most the sweep's {@link sweepBudget} for the invocation's remaining time, or `refresh.sweepSeconds`
 * when that is shorter or unknown) and refreshes each under its lease, starting at most
 * {@link sweepStartsPerSecond} a second (15 at Wise's default limit) with at most `refresh.concurrency`
 * running at once.
 *
 * It starts nothing new from the moment Wise answers a 429 to any of its refreshes (the answer is heard as
 * it arrives, and the sweep's refreshes do not retry a 429: they back off as Wise asked), or once the
 * invocation has less than {@link MIN_TIME_TO_START_MS} left; refreshes already running finish, and the
 * rest stay due for the next sweep. Each refresh gets the invocation's end, so its call to Wise leaves time
 * to store the answer and no write starts as the invocation is cut off.
 */
export async function refreshDue(deps: SweepDeps, options: SweepOptions = {}): Promise<SweepSummary> {
  const remaining = options.remainingTimeMs ?? (() => Number.POSITIVE_INFINITY);
  const startsPerSecond = sweepStartsPerSecond(deps.config.refresh.tokenCallsPerMinute);
  const budget = sweepBudget(Math.min(remaining(), deps.config.refresh.sweepSeconds * 1000), startsPerSecond);
  const due = budget > 0 ? await deps.store.listDue({ now: deps.clock.now(), limit: budget }) : [];
  const summary: SweepSummary = {
    budget,
    due: due.length,
    refreshed: 0,
    failed: 0,
    failedBy: { rateLimited: 0, transient: 0, invalidClient: 0, error: 0 },
    busy: 0,
    needsReauth: 0,
    skipped: 0,
    notStarted: 0,
    atRisk: 0,
  };
  const unrefreshed: DueRecord[] = [];
  const pace = pacer(startsPerSecond, deps.clock, deps.sleep ?? ((ms) => delay(ms)));
  const state: { stop?: SweepSummary['stoppedBecause'] } = {};
  const rateLimits = {
    retryRateLimited: false,
    onRateLimited: () => {
      state.stop ??= 'rate_limited';
    },
  };

  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < due.length && state.stop === undefined) {
      await pace();
      const left = remaining();
      if (left < MIN_TIME_TO_START_MS) state.stop ??= 'out_of_time';
      const item = due[next];
      if (state.stop !== undefined || item === undefined) return;
      next += 1;
      const outcome = await refreshOne(deps, item, { invocationEndsAt: deps.clock.now() + left, rateLimits });
      // Also when the 429 came from a Wise port that does not call onRateLimited.
      if (outcome.outcome === 'failed_transient' && outcome.rateLimited) state.stop ??= 'rate_limited';
      tally(summary, outcome);
      if (STILL_DUE.has(outcome.outcome)) unrefreshed.push(item);
    }
  };
  const workers = Math.max(1, Math.min(deps.config.refresh.concurrency, due.length));
  await Promise.all(Array.from({ length: workers }, worker));
  summary.notStarted = due.length - next;
  if (summary.notStarted > 0 && state.stop !== undefined) summary.stoppedBecause = state.stop;
  unrefreshed.push(...due.slice(next));
  summary.atRisk = await countAtRisk(deps, unrefreshed, remaining);
  metrics.addMetric(MetricName.connectionsAtRisk, MetricUnit.Count, summary.atRisk);

  logger.info('Refresh sweep finished', { ...summary });
  return summary;
}

/** The outcomes after which a listed record is still due: nobody refreshed it. */
const STILL_DUE = new Set<RefreshOutcome['outcome'] | 'error'>([
  'failed_transient',
  'invalid_client',
  'busy',
  'error',
]);

/** No record is read for the at-risk count with less time than this left in the invocation. */
const AT_RISK_READ_MARGIN_MS = 2_000;

/**
 * How many of the records the sweep left due are at risk (see {@link isAtRisk}): each is read again, a
 * few at a time, while the invocation has time. The ones at risk are logged by connection id.
 */
async function countAtRisk(
  deps: SweepDeps,
  records: readonly DueRecord[],
  remaining: () => number,
): Promise<number> {
  const atRisk: string[] = [];
  let next = 0;
  let unread = 0;
  const reader = async (): Promise<void> => {
    while (next < records.length) {
      const item = records[next];
      next += 1;
      if (item === undefined) return;
      if (remaining() < AT_RISK_READ_MARGIN_MS) {
        unread += 1;
        continue;
      }
      try {
        const record = await readRecord(deps, item.key);
        const refreshable = record && record.status !== 'disconnected' && record.status !== 'needs_reauth';
        if (refreshable && isAtRisk(record, deps.clock.now(), deps.config.refresh.atRiskShare)) {
          atRisk.push(item.key.kind === 'connection' ? item.key.connectionId : 'client');
        }
      } catch (error) {
        unread += 1;
        logger.warn('Could not read a record to see whether it is at risk', {
          ...recordKeys(item.key),
          error: error instanceof Error ? error.name : typeof error,
        });
      }
    }
  };
  const readers = Math.max(1, Math.min(deps.config.refresh.concurrency, records.length));
  await Promise.all(Array.from({ length: readers }, reader));
  if (atRisk.length > 0 || unread > 0) {
    logger.warn('Connections at risk: due, not refreshed, and running out of token life', {
      outcome: 'at_risk',
      atRisk: atRisk.length,
      connectionIds: atRisk.slice(0, 50),
      notChecked: unread,
    });
  }
  return atRisk.length;
}

async function refreshOne(
  deps: SweepDeps,
  item: DueRecord,
  options: RefreshOptions,
): Promise<RefreshOutcome | { outcome: 'error' }> {
  try {
    return await refreshRecord(deps, item.key, options);
  } catch (error) {
    // One record's trouble (a ciphertext that does not decrypt, a store that keeps failing) never stops the sweep.
    logger.error('Refresh failed unexpectedly', { ...recordKeys(item.key), error: error as Error });
    return { outcome: 'error' };
  }
}

function tally(summary: SweepSummary, result: RefreshOutcome | { outcome: 'error' }): void {
  switch (result.outcome) {
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
      summary.failed += 1;
      if (result.rateLimited) summary.failedBy.rateLimited += 1;
      else summary.failedBy.transient += 1;
      break;
    case 'invalid_client':
      summary.failed += 1;
      summary.failedBy.invalidClient += 1;
      break;
    case 'error':
      summary.failed += 1;
      summary.failedBy.error += 1;
      break;
  }
}
