/**
 * The simulator's notion of now: the configured clock plus an offset that tests move forward through
 * `POST /__control/clock`, so expiry rules can be exercised without waiting.
 */
export class SimulatorClock {
  readonly #base: () => number;
  #offsetMs: number;

  /** `offsetMs` carries a moved clock over a restart. */
  constructor(base: () => number, offsetMs = 0) {
    this.#base = base;
    this.#offsetMs = offsetMs;
  }

  /** Epoch milliseconds. */
  now(): number {
    return this.#base() + this.#offsetMs;
  }

  /** How far the clock has been moved from the configured one, in milliseconds. */
  get offsetMs(): number {
    return this.#offsetMs;
  }

  /** Moves the clock forward (or back, with a negative number). */
  advance(seconds: number): void {
    this.#offsetMs += seconds * 1000;
  }
}
