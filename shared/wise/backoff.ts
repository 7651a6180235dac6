/** The first retry waits around this long; each further one doubles it. */
export const BASE_DELAY_MS = 250;
/** No computed back-off exceeds this (a longer `Retry-After` still wins). */
export const MAX_DELAY_MS = 8_000;

/** The un-jittered exponential back-off after the given failed attempt (1-based). */
export function exponentialDelay(attempt: number): number {
  return Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (attempt - 1));
}

/**
 * How long to wait after a failed attempt: "equal jitter" (half the exponential delay plus a random
 * half), or, when Wise sent `Retry-After`, that wait plus a little jitter so a fleet does not come back
 * at the same instant. Never shorter than `Retry-After`.
 */
export function retryDelay(attempt: number, random: () => number, retryAfterMs?: number): number {
  const exponential = exponentialDelay(attempt);
  if (retryAfterMs !== undefined) return retryAfterMs + Math.floor(random() * BASE_DELAY_MS);
  return Math.floor(exponential / 2 + random() * (exponential / 2));
}
