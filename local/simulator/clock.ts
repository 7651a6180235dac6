/**
 * The simulator's notion of now: the configured clock plus an offset that tests move forward through
 * `POST /__control/clock`, so expiry rules can be exercised without waiting.
 */
export class SimulatorClock {
  readonly #base: () => number;
  #offsetMs = 0;

  constructor(base: () => number) {
    this.#base = base;
  }

  /** Epoch milliseconds. */
  now(): number {
    return this.#base() + this.#offsetMs;
  }

  /** Moves the clock forward (or back, with a negative number). */
  advance(seconds: number): void {
    this.#offsetMs += seconds * 1000;
  }
}
