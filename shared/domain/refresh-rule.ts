/**
 * The refresh rule: when a token is refreshed, how long a vended token is promised, and how long to wait
 * after a failure. Pure functions of their arguments; every time is epoch ms and randomness is injected.
 */

/** Vended tokens are never promised closer than this to Wise's expiry, for clock skew and transit. */
export const EXPIRY_SKEW_MS = 60_000;

/** Refreshes are spread earlier by up to this share of the token lifetime, so a cohort does not stampede. */
export const REFRESH_JITTER_SHARE = 0.05;

/** How long a still-valid token that could not be refreshed is promised: short, so callers ask again soon. */
export const FALLBACK_VALIDITY_MS = 30_000;

/** The first retry after a failed refresh waits about this long; each further failure doubles it. */
export const BACKOFF_BASE_MS = 30_000;

/** No computed back-off exceeds this; a longer `Retry-After` from Wise still wins. */
export const BACKOFF_CAP_MS = 15 * 60_000;

/** The token fields the rule reads. */
export interface TokenTimes {
  accessToken?: unknown;
  accessTokenExpiresAt?: number;
  nextRefreshAt?: number;
  generation: number;
  /** Present after a failed refresh that was not yet followed by a success. */
  lastError?: unknown;
}

/**
 * When to refresh a token issued at `issuedAt` that Wise lets live until `expiresAt`: at `fraction` of its
 * lifetime, minus a random jitter of up to 5 % of the lifetime (earlier, never later). Never later than
 * the expiry minus {@link EXPIRY_SKEW_MS} and never before `issuedAt`.
 */
export function nextRefreshAt(
  issuedAt: number,
  expiresAt: number,
  fraction: number,
  random: () => number,
): number {
  const ttl = Math.max(0, expiresAt - issuedAt);
  const jitter = Math.floor(clampUnit(random()) * REFRESH_JITTER_SHARE * ttl);
  const planned = issuedAt + Math.floor(fraction * ttl) - jitter;
  return Math.max(issuedAt, Math.min(planned, expiresAt - EXPIRY_SKEW_MS));
}

/**
 * Until when the broker promises not to replace the stored token: the earlier of its refresh-due time and
 * its expiry minus {@link EXPIRY_SKEW_MS}. When that moment has passed (the token is due but could not be
 * refreshed, and is vended anyway), a short window of {@link FALLBACK_VALIDITY_MS} from `now`, still
 * bounded by the expiry minus the skew; never before `now`.
 */
export function validUntil(
  record: Pick<TokenTimes, 'accessTokenExpiresAt' | 'nextRefreshAt'>,
  now: number,
): number {
  const expiresAt = record.accessTokenExpiresAt ?? now;
  const latest = expiresAt - EXPIRY_SKEW_MS;
  const promised = Math.min(record.nextRefreshAt ?? latest, latest);
  if (promised > now) return promised;
  return Math.max(now, Math.min(now + FALLBACK_VALIDITY_MS, latest));
}

/**
 * How long to wait before the next attempt after `failureCount` consecutive failures (1 for the first):
 * an exponential back-off from {@link BACKOFF_BASE_MS} capped at {@link BACKOFF_CAP_MS}, with "equal
 * jitter" (half fixed, half random), and never shorter than Wise's `Retry-After`.
 */
export function backoff(failureCount: number, random: () => number, retryAfterSeconds?: number): number {
  const exponent = Math.max(0, Math.min(failureCount - 1, 30));
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** exponent);
  const jittered = Math.floor(ceiling / 2 + clampUnit(random()) * (ceiling / 2));
  return Math.max(jittered, Math.ceil((retryAfterSeconds ?? 0) * 1000));
}

/**
 * How long, in ms from `now`, a record still waits out the back-off of a failed refresh (a transient
 * failure or rejected client credentials, recorded with `lastError` and a later `nextRefreshAt`); 0 when
 * it does not. Until then no one asks Wise for it: not the sweep, and not a vend of an expired or
 * rejected token.
 */
export function backoffRemaining(
  record: Pick<TokenTimes, 'nextRefreshAt' | 'lastError'>,
  now: number,
): number {
  if (record.lastError === undefined || record.nextRefreshAt === undefined) return 0;
  return Math.max(0, record.nextRefreshAt - now);
}

/** Whether the proactive refresh of a record is due at `now`. */
export function isDue(record: Pick<TokenTimes, 'nextRefreshAt'>, now: number): boolean {
  return record.nextRefreshAt !== undefined && record.nextRefreshAt <= now;
}

/** Whether a record has no access token that Wise would still accept at `now`. */
export function isExpired(
  record: Pick<TokenTimes, 'accessToken' | 'accessTokenExpiresAt'>,
  now: number,
): boolean {
  return (
    record.accessToken === undefined ||
    record.accessTokenExpiresAt === undefined ||
    record.accessTokenExpiresAt <= now
  );
}

/** Why a caller asks for a token beyond "the current one". */
export interface RefreshDemand {
  /** The generation the caller saw rejected by Wise with a 401. */
  rejectedGeneration?: number;
}

/**
 * Whether a record must be refreshed now: it has no live token, its refresh is due, or the caller saw its
 * current generation rejected. Nothing else may replace a token before its {@link validUntil}, which other
 * callers were promised: a caller's minimum validity never forces a refresh (it is given the current token,
 * whose expiry tells the truth). An older rejected generation needs nothing: the stored token is newer.
 */
export function refreshNeeded(record: TokenTimes, now: number, demand: RefreshDemand = {}): boolean {
  if (isExpired(record, now) || isDue(record, now)) return true;
  return demand.rejectedGeneration !== undefined && demand.rejectedGeneration === record.generation;
}

function clampUnit(value: number): number {
  if (!Number.isFinite(value) || value < 0) return 0;
  return value >= 1 ? 1 - Number.EPSILON : value;
}
