import type { SimulatorClock } from './clock.ts';

/** Whether a request may pass, and if not, how long to wait and which limit said no. */
export type RateVerdict =
  | { limited: false }
  | { limited: true; retryAfterSeconds: number; limitedBy: 'per-second' | 'per-minute' };

const SECOND = 1000;
const MINUTE = 60 * SECOND;

/**
 * Sliding one-second and one-minute windows per client, on the simulator's clock. Refused requests do
 * not count against the client, so a client that backs off gets through again.
 */
export class RateLimiter {
  readonly #perSecond: number;
  readonly #perMinute: number;
  readonly #clock: SimulatorClock;
  readonly #history = new Map<string, number[]>();

  constructor(limits: { perSecond: number; perMinute: number }, clock: SimulatorClock) {
    this.#perSecond = limits.perSecond;
    this.#perMinute = limits.perMinute;
    this.#clock = clock;
  }

  /** Records the request when it passes. */
  check(client: string): RateVerdict {
    const now = this.#clock.now();
    const recent = (this.#history.get(client) ?? []).filter((at) => at > now - MINUTE);
    this.#history.set(client, recent);
    const lastSecond = recent.filter((at) => at > now - SECOND);
    if (lastSecond.length >= this.#perSecond) {
      return {
        limited: true,
        limitedBy: 'per-second',
        retryAfterSeconds: waitSeconds(lastSecond, now, SECOND),
      };
    }
    if (recent.length >= this.#perMinute) {
      return { limited: true, limitedBy: 'per-minute', retryAfterSeconds: waitSeconds(recent, now, MINUTE) };
    }
    recent.push(now);
    return { limited: false };
  }
}

/** Whole seconds until the oldest request in the window leaves it (at least 1). */
function waitSeconds(window: number[], now: number, length: number): number {
  const oldest = window[0] ?? now;
  return Math.max(1, Math.ceil((oldest + length - now) / SECOND));
}
