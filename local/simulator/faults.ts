import type { SimulatorClock } from './clock.ts';

/** How the next token-endpoint requests fail, as `POST /__control/faults` sets it. */
export interface Fault {
  /** Status to answer; omitted or 200 with `delayMs` means: delay, then serve normally. */
  status?: number | undefined;
  /** How many requests in a row (ignored with `forSeconds`). */
  count: number;
  /**
   * Every request for this long on the simulator's clock, from when the fault is set, however many come:
   * an outage. `count` does not apply then.
   */
  forSeconds?: number | undefined;
  /** `Retry-After` seconds to send with the failure. */
  retryAfter?: number | undefined;
  /** Wait this long before answering (or dropping). */
  delayMs?: number | undefined;
  /**
   * Destroy the socket without an answer: `true` before the request is acted on, `'after-grant'` after it
   * was (tokens issued, a rotated refresh token's predecessor dead), so only the answer is lost.
   */
  drop?: boolean | 'after-grant' | undefined;
}

/** The one pending fault; setting a new one replaces it. */
export class FaultPlan {
  readonly #clock: SimulatorClock;
  #fault: Fault | undefined;
  #remaining = 0;
  #endsAt = Number.NEGATIVE_INFINITY;

  constructor(clock: SimulatorClock) {
    this.#clock = clock;
  }

  set(fault: Fault): void {
    this.#fault = fault;
    this.#remaining = fault.count;
    this.#endsAt =
      fault.forSeconds === undefined ? Number.NEGATIVE_INFINITY : this.#clock.now() + fault.forSeconds * 1000;
  }

  clear(): void {
    this.#fault = undefined;
    this.#remaining = 0;
    this.#endsAt = Number.NEGATIVE_INFINITY;
  }

  /** The fault for this request, counting it off; `undefined` when none is pending. */
  take(): Fault | undefined {
    if (!this.#fault) return undefined;
    if (this.#fault.forSeconds !== undefined) {
      if (this.#clock.now() < this.#endsAt) return this.#fault;
      this.clear();
      return undefined;
    }
    if (this.#remaining <= 0) return undefined;
    this.#remaining--;
    return this.#fault;
  }
}
