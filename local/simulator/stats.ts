import { GRANT_TYPES, type GrantType, type SimulatorStats } from './options.ts';

/** Counts every grant served and refused, and every API call. */
export class StatsCounter {
  #stats = emptyStats();

  grantServed(grantType: GrantType): void {
    this.#stats.grants[grantType]++;
  }

  grantFailed(grantType: GrantType): void {
    this.#stats.failedGrants[grantType]++;
  }

  /** A token request the per-client rate limit refused (injected 429s are not counted). */
  rateLimited(): void {
    this.#stats.rateLimited++;
  }

  /** A token request acted on whose answer was dropped (`drop: 'after-grant'`). */
  answerLost(): void {
    this.#stats.answersLost++;
  }

  apiCall(): void {
    this.#stats.apiCalls++;
  }

  /** A copy, safe to keep. */
  snapshot(): SimulatorStats {
    return structuredClone(this.#stats);
  }

  reset(): void {
    this.#stats = emptyStats();
  }
}

function emptyStats(): SimulatorStats {
  const zeros = () => Object.fromEntries(GRANT_TYPES.map((type) => [type, 0])) as Record<GrantType, number>;
  return { grants: zeros(), failedGrants: zeros(), rateLimited: 0, answersLost: 0, apiCalls: 0 };
}
