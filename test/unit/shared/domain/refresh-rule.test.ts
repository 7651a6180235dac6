import { describe, expect, it } from 'vitest';
import {
  BACKOFF_BASE_MS,
  BACKOFF_CAP_MS,
  backoff,
  backoffRemaining,
  EXPIRY_SKEW_MS,
  FALLBACK_VALIDITY_MS,
  isDue,
  isExpired,
  nextRefreshAt,
  refreshNeeded,
  validUntil,
} from '#shared/domain/refresh-rule.ts';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
const TTL = 12 * HOUR;
const never = () => 0;
const always = () => 0.999_999;

describe('nextRefreshAt', () => {
  it('is the configured fraction of the lifetime after issue when the jitter is zero', () => {
    expect(nextRefreshAt(T0, T0 + TTL, 0.8, never)).toBe(T0 + 0.8 * TTL);
  });

  it('spreads refreshes earlier by up to 5 % of the lifetime, never later', () => {
    const earliest = nextRefreshAt(T0, T0 + TTL, 0.8, always);
    const middle = nextRefreshAt(T0, T0 + TTL, 0.8, () => 0.5);

    expect(earliest).toBeGreaterThanOrEqual(T0 + 0.75 * TTL);
    expect(earliest).toBeLessThan(T0 + 0.75 * TTL + 1_000);
    expect(middle).toBe(T0 + 0.8 * TTL - 0.025 * TTL);
  });

  it('never falls later than the expiry minus the skew, even for a fraction close to one', () => {
    const shortTtl = 2 * 60_000;

    expect(nextRefreshAt(T0, T0 + shortTtl, 0.95, never)).toBe(T0 + shortTtl - EXPIRY_SKEW_MS);
  });

  it('never falls before the issue time, even for a token shorter-lived than the skew', () => {
    expect(nextRefreshAt(T0, T0 + 30_000, 0.8, never)).toBe(T0);
  });

  it('takes a random source below 0 as 0 and one of 1 or more as just under 1', () => {
    expect(nextRefreshAt(T0, T0 + TTL, 0.8, () => -1)).toBe(T0 + 0.8 * TTL);
    expect(nextRefreshAt(T0, T0 + TTL, 0.8, () => Number.NaN)).toBe(T0 + 0.8 * TTL);
    expect(nextRefreshAt(T0, T0 + TTL, 0.8, () => 2)).toBe(
      nextRefreshAt(T0, T0 + TTL, 0.8, () => 1 - Number.EPSILON),
    );
    expect(nextRefreshAt(T0, T0 + TTL, 0.8, () => 2)).toBeGreaterThanOrEqual(T0 + 0.75 * TTL);
  });
});

describe('validUntil', () => {
  it('is the refresh-due time when that comes before the expiry minus the skew', () => {
    const record = { accessTokenExpiresAt: T0 + TTL, nextRefreshAt: T0 + 0.8 * TTL };

    expect(validUntil(record, T0)).toBe(T0 + 0.8 * TTL);
  });

  it('is the expiry minus the skew when the refresh is planned later than that', () => {
    const record = { accessTokenExpiresAt: T0 + TTL, nextRefreshAt: T0 + TTL + HOUR };

    expect(validUntil(record, T0)).toBe(T0 + TTL - EXPIRY_SKEW_MS);
  });

  it('gives a short window from now for a due token vended because it could not be refreshed', () => {
    const record = { accessTokenExpiresAt: T0 + TTL, nextRefreshAt: T0 + 0.8 * TTL };
    const now = T0 + 0.9 * TTL;

    expect(validUntil(record, now)).toBe(now + FALLBACK_VALIDITY_MS);
  });

  it('gives the short window already at the refresh-due time itself', () => {
    const record = { accessTokenExpiresAt: T0 + TTL, nextRefreshAt: T0 + 0.8 * TTL };
    const now = T0 + 0.8 * TTL;

    expect(validUntil(record, now)).toBe(now + FALLBACK_VALIDITY_MS);
  });

  it('bounds that short window by the expiry minus the skew', () => {
    const record = { accessTokenExpiresAt: T0 + TTL, nextRefreshAt: T0 + 0.8 * TTL };
    const now = T0 + TTL - EXPIRY_SKEW_MS - 10_000;

    expect(validUntil(record, now)).toBe(T0 + TTL - EXPIRY_SKEW_MS);
  });

  it('is never in the past, even within the skew of the expiry', () => {
    const record = { accessTokenExpiresAt: T0 + TTL, nextRefreshAt: T0 + 0.8 * TTL };
    const now = T0 + TTL - 5_000;

    expect(validUntil(record, now)).toBe(now);
  });
});

describe('backoff', () => {
  it('waits between half and all of the base delay after the first failure', () => {
    expect(backoff(1, never)).toBe(BACKOFF_BASE_MS / 2);
    expect(backoff(1, always)).toBeLessThanOrEqual(BACKOFF_BASE_MS);
    expect(backoff(1, always)).toBeGreaterThan(BACKOFF_BASE_MS - 10);
  });

  it('doubles with every further failure', () => {
    expect(backoff(2, never)).toBe(BACKOFF_BASE_MS);
    expect(backoff(3, never)).toBe(2 * BACKOFF_BASE_MS);
    expect(backoff(4, never)).toBe(4 * BACKOFF_BASE_MS);
  });

  it('is capped at fifteen minutes however many failures came before', () => {
    expect(backoff(50, always)).toBeLessThanOrEqual(BACKOFF_CAP_MS);
    expect(backoff(50, never)).toBe(BACKOFF_CAP_MS / 2);
  });

  it('is never shorter than the Retry-After Wise sent', () => {
    expect(backoff(1, never, 600)).toBe(600_000);
  });

  it('keeps its own delay when Retry-After is shorter', () => {
    expect(backoff(3, never, 1)).toBe(2 * BACKOFF_BASE_MS);
  });
});

describe('backoffRemaining', () => {
  const failed = {
    nextRefreshAt: T0 + 60_000,
    lastError: { code: 'provider_unavailable', message: 'Wise answered 503.', at: T0 },
  };

  it('is the time left until the retry a failure set', () => {
    expect(backoffRemaining(failed, T0 + 15_000)).toBe(45_000);
  });

  it('is 0 once the retry time has come, and after it', () => {
    expect(backoffRemaining(failed, T0 + 60_000)).toBe(0);
    expect(backoffRemaining(failed, T0 + 90_000)).toBe(0);
  });

  it('is 0 without a recorded failure, however far the refresh-due time is', () => {
    expect(backoffRemaining({ nextRefreshAt: T0 + 60_000 }, T0)).toBe(0);
  });

  it('is 0 for a failed record with no refresh-due time', () => {
    expect(backoffRemaining({ lastError: failed.lastError }, T0)).toBe(0);
  });
});

describe('isDue and isExpired', () => {
  const record = { accessToken: 'ciphertext', accessTokenExpiresAt: T0 + TTL, nextRefreshAt: T0 + 0.8 * TTL };

  it('is due from the refresh-due time on', () => {
    expect(isDue(record, T0 + 0.8 * TTL - 1)).toBe(false);
    expect(isDue(record, T0 + 0.8 * TTL)).toBe(true);
  });

  it('is never due without a refresh-due time (not refreshable)', () => {
    expect(isDue({}, T0 + 10 * TTL)).toBe(false);
  });

  it('is expired from the expiry on, or when there is no token at all', () => {
    expect(isExpired(record, T0 + TTL - 1)).toBe(false);
    expect(isExpired(record, T0 + TTL)).toBe(true);
    expect(isExpired({ accessTokenExpiresAt: T0 + TTL }, T0)).toBe(true);
    expect(isExpired({ accessToken: 'ciphertext' }, T0)).toBe(true);
  });
});

describe('refreshNeeded', () => {
  const record = {
    accessToken: 'ciphertext',
    accessTokenExpiresAt: T0 + TTL,
    nextRefreshAt: T0 + 0.8 * TTL,
    generation: 7,
  };

  it('needs nothing for a fresh token and no demand', () => {
    expect(refreshNeeded(record, T0)).toBe(false);
  });

  it('needs a refresh when the token is due', () => {
    expect(refreshNeeded(record, T0 + 0.8 * TTL)).toBe(true);
  });

  it('needs a refresh when the caller saw the stored generation rejected', () => {
    expect(refreshNeeded(record, T0, { rejectedGeneration: 7 })).toBe(true);
  });

  it('needs nothing when the rejected generation is older than the stored one', () => {
    expect(refreshNeeded(record, T0, { rejectedGeneration: 6 })).toBe(false);
  });

  it('needs a refresh when the token is expired, even with its refresh time ahead', () => {
    expect(refreshNeeded({ ...record, nextRefreshAt: T0 + 2 * TTL }, T0 + TTL)).toBe(true);
  });

  describe.each([
    { name: '12-hour tokens refreshed at 95 %', lifetime: TTL, fraction: 0.95 },
    { name: '600 s tokens refreshed at 95 %', lifetime: 600_000, fraction: 0.95 },
    { name: '600 s tokens refreshed at 80 %', lifetime: 600_000, fraction: 0.8 },
  ])('with $name', ({ lifetime, fraction }) => {
    /** A token as the broker stores it: its refresh time planned by the rule itself. */
    function stored(random: () => number) {
      return {
        accessToken: 'ciphertext',
        accessTokenExpiresAt: T0 + lifetime,
        nextRefreshAt: nextRefreshAt(T0, T0 + lifetime, fraction, random),
        lastRefreshAt: T0,
        generation: 7,
      };
    }

    it.each([
      ['no jitter', never],
      ['the largest jitter', always],
    ])(
      'never needs a refresh before the promised validUntil, and needs one at it (%s)',
      (_jitter, random) => {
        const token = stored(random);
        const promised = validUntil(token, T0);
        const early: number[] = [];

        for (let now = T0; now < promised; now += 1_000) {
          if (refreshNeeded(token, now) || refreshNeeded(token, now, { rejectedGeneration: 6 }))
            early.push(now);
        }

        expect(early).toEqual([]);
        expect(refreshNeeded(token, promised - 1)).toBe(false);
        expect(refreshNeeded(token, promised)).toBe(true);
        expect(promised).toBeLessThanOrEqual(T0 + lifetime - EXPIRY_SKEW_MS);
      },
    );

    it('refreshes a rejected token before the promise ends', () => {
      const token = stored(never);

      expect(refreshNeeded(token, T0 + 1_000, { rejectedGeneration: 7 })).toBe(true);
    });
  });
});
