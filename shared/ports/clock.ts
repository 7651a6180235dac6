/** The time, in epoch milliseconds. Injected everywhere a rule depends on time. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
