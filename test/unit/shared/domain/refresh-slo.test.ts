import { describe, expect, it } from 'vitest';
import { isAtRisk, lifeLeftMs, refreshLatenessMs } from '#shared/domain/refresh-slo.ts';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
/** A 12-hour token issued at T0. */
const token = { accessTokenExpiresAt: T0 + 12 * HOUR, lastRefreshAt: T0, createdAt: T0 - 48 * HOUR };

describe('refreshLatenessMs', () => {
  it('is how long after its due time a refresh ran, and 0 when it ran early or was never due', () => {
    expect(refreshLatenessMs({ nextRefreshAt: T0 }, T0 + 90_000)).toBe(90_000);
    expect(refreshLatenessMs({ nextRefreshAt: T0 }, T0 - 90_000)).toBe(0);
    expect(refreshLatenessMs({}, T0)).toBe(0);
  });
});

describe('lifeLeftMs', () => {
  it('is how long the token still lives, and 0 once it expired', () => {
    expect(lifeLeftMs(token, T0 + 11 * HOUR)).toBe(HOUR);
    expect(lifeLeftMs(token, T0 + 13 * HOUR)).toBe(0);
  });
});

describe('isAtRisk', () => {
  it('holds once less than the share of the lifetime since the last refresh is left', () => {
    expect(isAtRisk(token, T0 + 10.8 * HOUR - 1, 0.1)).toBe(false);
    expect(isAtRisk(token, T0 + 10.8 * HOUR, 0.1)).toBe(false);
    expect(isAtRisk(token, T0 + 10.8 * HOUR + 1, 0.1)).toBe(true);
  });

  it('measures the lifetime from the creation when the record was never refreshed', () => {
    const { lastRefreshAt: _never, ...created } = { ...token, createdAt: T0 };

    expect(isAtRisk(created, T0 + 9.6 * HOUR - 1, 0.2)).toBe(false);
    expect(isAtRisk(created, T0 + 9.6 * HOUR + 1, 0.2)).toBe(true);
  });

  it('holds for an expired token and for a record without one', () => {
    expect(isAtRisk(token, T0 + 13 * HOUR, 0.1)).toBe(true);
    expect(isAtRisk({ createdAt: T0 }, T0, 0.1)).toBe(true);
  });
});
