import { describe, expect, it } from 'vitest';
import { sweepLine } from '#local/sweep-report.ts';
import type { SweepSummary } from '#shared/use-cases/refresh-due.ts';

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const summary: SweepSummary = {
  budget: 750,
  due: 6,
  refreshed: 3,
  failed: 2,
  failedBy: { rateLimited: 1, transient: 0, invalidClient: 1, error: 0 },
  busy: 0,
  needsReauth: 1,
  skipped: 0,
  notStarted: 0,
  atRisk: 1,
};

describe('sweepLine', () => {
  it('says what the sweep refreshed, what failed by class, what is at risk and when the next refresh is due', () => {
    expect(sweepLine(summary, NOW + 2 * 3_600_000 + 5 * 60_000, NOW)).toBe(
      '[sweep 2026-12-01T12:00:00.000Z] refreshed 3, failed 2 (rate limited 1, transient 0, invalid_client 1, error 0), needs reauth 1, at risk 1, next due 2026-12-01T14:05:00.000Z (in 2 h 5 min)',
    );
  });

  it('says when nothing is due, and why the sweep stopped early', () => {
    expect(sweepLine({ ...summary, stoppedBecause: 'rate_limited' }, undefined, NOW)).toMatch(
      /next due none, stopped early: rate_limited$/,
    );
  });

  it('says "now" for a refresh already due', () => {
    expect(sweepLine(summary, NOW - 1, NOW)).toContain('(now)');
  });
});
