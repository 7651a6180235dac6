/**
 * How far one deployment's refresh sweep goes: a pure simulation of the sweep's schedule (no I/O, no
 * timers) over many due times, using the broker's own refresh rule and sweep budget.
 *
 * The model: every `sweepSeconds` the sweep takes the most overdue records, at most its budget, and starts
 * their refreshes paced at its share of Wise's token rate limit; each refresh gives a new token that Wise
 * lets live `ttlSeconds`, whose next refresh is due per {@link nextRefreshAt} (80 % of the lifetime minus
 * up to 5 % jitter). Wise is assumed to answer every refresh at once and successfully: the figures are
 * the schedule's own limits, before any failure.
 */
import { nextRefreshAt, REFRESH_JITTER_SHARE } from '#shared/domain/refresh-rule.ts';
import { sweepBudget } from '#shared/use-cases/refresh-due.ts';

/** Wise's documented default: 1000 token calls a minute per client. */
export const WISE_TOKEN_CALLS_PER_MINUTE = 1000;

/** Wise's access tokens: `expires_in` 43199 seconds. */
export const WISE_ACCESS_TOKEN_SECONDS = 43_199;

/** The longest a sweep may run: its function's timeout is the sweep period, at most Lambda's 900 s. */
export const MAX_SWEEP_RUN_SECONDS = 900;

export interface CapacityScenario {
  readonly name: string;
  readonly connections: number;
  /**
   * When the tokens held at the start were issued: `steady`, spread evenly over the shortest refresh
   * interval before the start, so that none is overdue yet (a deployment that has kept up until now);
   * `cohort`, all within `withinMinutes` just before the start (a bulk import, or a deployment's first day).
   */
  readonly issued: { readonly kind: 'steady' } | { readonly kind: 'cohort'; readonly withinMinutes: number };
  /** Token calls a minute the sweep may spend (its share of Wise's limit). */
  readonly sweepCallsPerMinute: number;
  readonly sweepSeconds: number;
  readonly fraction: number;
  readonly ttlSeconds: number;
  /** How long to simulate. */
  readonly hours: number;
  readonly seed: number;
}

export interface CapacityResult {
  readonly scenario: CapacityScenario;
  /** Refreshes one sweep may start (the broker's `sweepBudget` for the scenario's rate and period). */
  readonly sweepBudget: number;
  /** Refreshes the sweeps started during the simulated time. */
  readonly refreshes: number;
  /** The latest any refresh ran past its token's `fraction` point (80 % of its lifetime), in minutes. */
  readonly worstDelayPastFractionMinutes: number;
  /** Refreshes that ran after their token had expired, plus tokens still waiting at the end that expired. */
  readonly expiredUnrefreshed: number;
  /** Records due but not yet refreshed when the simulation ends. */
  readonly backlogAtEnd: number;
}

/**
 * How many refreshes one sweep can start: the broker's own {@link sweepBudget} at a given rate, for a
 * sweep that runs at most its period and at most {@link MAX_SWEEP_RUN_SECONDS} (its function's timeout).
 */
export function sweepBudgetAt(sweepCallsPerMinute: number, sweepSeconds: number): number {
  return sweepBudget(Math.min(sweepSeconds, MAX_SWEEP_RUN_SECONDS) * 1000, sweepCallsPerMinute / 60);
}

/**
 * The most connections a sweep can keep fresh at steady state: its refreshes a minute times the mean
 * minutes between two refreshes of one connection, `(fraction - jitter/2) x ttl`.
 */
export function steadyStateCapacity(
  refreshesPerMinute: number,
  fraction: number,
  ttlSeconds: number,
): number {
  return Math.floor((refreshesPerMinute * (fraction - REFRESH_JITTER_SHARE / 2) * ttlSeconds) / 60);
}

/** A small seeded generator (mulberry32), so every run of a scenario gives the same figures. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const MINUTE_MS = 60_000;

/** Runs one scenario. Times are ms from a start placed one token lifetime after epoch 0. */
export function simulateSweeps(scenario: CapacityScenario): CapacityResult {
  const random = seededRandom(scenario.seed);
  const ttlMs = scenario.ttlSeconds * 1000;
  const start = ttlMs;
  const end = start + scenario.hours * 3_600_000;
  const count = scenario.connections;
  const issuedAt = new Float64Array(count);
  const expiresAt = new Float64Array(count);
  const dueAt = new Float64Array(count);
  // Due records by the minute they fall due in; each minute's list is sorted when the sweep reaches it.
  const buckets: number[][] = [];
  const enqueue = (id: number): void => {
    const minute = Math.floor((dueAt[id] ?? 0) / MINUTE_MS);
    let bucket = buckets[minute];
    if (!bucket) {
      bucket = [];
      buckets[minute] = bucket;
    }
    bucket.push(id);
  };
  const issue = (id: number, at: number): void => {
    issuedAt[id] = at;
    expiresAt[id] = at + ttlMs;
    dueAt[id] = nextRefreshAt(at, at + ttlMs, scenario.fraction, random);
    enqueue(id);
  };
  const spreadMs =
    scenario.issued.kind === 'steady'
      ? (scenario.fraction - REFRESH_JITTER_SHARE) * ttlMs
      : Math.max(1, scenario.issued.withinMinutes) * MINUTE_MS;
  for (let id = 0; id < count; id += 1) {
    issue(id, start - Math.floor(random() * spreadMs));
  }

  const budget = sweepBudgetAt(scenario.sweepCallsPerMinute, scenario.sweepSeconds);
  const startIntervalMs = 60_000 / scenario.sweepCallsPerMinute;
  let refreshes = 0;
  let worstDelay = 0;
  let expired = 0;
  let oldest = 0;
  let taken = 0; // how many of bucket `oldest` earlier sweeps already took
  for (let sweepAt = start; sweepAt < end; sweepAt += scenario.sweepSeconds * 1000) {
    const nowMinute = Math.floor(sweepAt / MINUTE_MS);
    let started = 0;
    while (started < budget && oldest <= nowMinute) {
      const bucket = buckets[oldest];
      if (!bucket || taken >= bucket.length) {
        buckets[oldest] = [];
        oldest += 1;
        taken = 0;
        continue;
      }
      if (taken === 0) bucket.sort((a, b) => (dueAt[a] ?? 0) - (dueAt[b] ?? 0));
      const id = bucket[taken] ?? 0;
      if ((dueAt[id] ?? 0) > sweepAt) break; // due later in this very minute: the next sweep takes it
      taken += 1;
      const refreshedAt = sweepAt + started * startIntervalMs;
      started += 1;
      refreshes += 1;
      const fractionPoint = (issuedAt[id] ?? 0) + scenario.fraction * ttlMs;
      worstDelay = Math.max(worstDelay, refreshedAt - fractionPoint);
      if (refreshedAt >= (expiresAt[id] ?? 0)) expired += 1;
      issue(id, refreshedAt);
    }
  }

  let backlog = 0;
  for (let minute = oldest; minute < buckets.length; minute += 1) {
    const bucket = buckets[minute] ?? [];
    for (let index = minute === oldest ? taken : 0; index < bucket.length; index += 1) {
      const id = bucket[index] ?? 0;
      if ((dueAt[id] ?? 0) > end) continue;
      backlog += 1;
      worstDelay = Math.max(worstDelay, end - ((issuedAt[id] ?? 0) + scenario.fraction * ttlMs));
      if ((expiresAt[id] ?? 0) <= end) expired += 1;
    }
  }
  return {
    scenario,
    sweepBudget: budget,
    refreshes,
    worstDelayPastFractionMinutes: Math.max(0, worstDelay) / MINUTE_MS,
    expiredUnrefreshed: expired,
    backlogAtEnd: backlog,
  };
}
