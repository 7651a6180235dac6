import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sweepBudget } from '#shared/use-cases/refresh-due.ts';
import {
  DEFAULT_USAGE,
  freshnessCost,
  refreshesPerConnectionMonth,
  total,
  US_EAST_1_PRICES,
  vendCost,
} from '../../bench/cost-model.ts';
import { DOCUMENT, documentBlock, scaleBlock } from '../../bench/scale.ts';
import {
  simulateSweeps,
  steadyStateCapacity,
  sweepBudgetAt,
  WISE_ACCESS_TOKEN_SECONDS,
} from '../../bench/sweep-capacity.ts';

const base = {
  name: 'test',
  sweepSeconds: 60,
  fraction: 0.8,
  ttlSeconds: WISE_ACCESS_TOKEN_SECONDS,
  seed: 1,
} as const;

describe('docs/COST-AND-SCALE.md', () => {
  it('prints exactly the figures the cost model and the sweep simulation give (npm run scale -- --write)', {
    timeout: 180_000,
  }, () => {
    const block = documentBlock(readFileSync(DOCUMENT, 'utf8'));

    expect(block).toBe(scaleBlock());
  });
});

describe('the cost model', () => {
  it('prices a million vends by the formulas the document states', () => {
    const usage = DEFAULT_USAGE;
    const prices = US_EAST_1_PRICES;
    const misses = 1e6 * usage.vendCacheMissShare;
    const billedSeconds =
      ((1e6 - misses) * usage.warmVendMs +
        misses * usage.coldVendMs +
        1e6 * usage.coldStartShare * usage.initMs) /
      1000;

    const lines = vendCost(1e6);

    expect(lines['HTTP API']).toBeCloseTo(1.0, 10);
    expect(lines.Lambda).toBeCloseTo(0.2 + billedSeconds * 0.5 * 0.0000133334, 10);
    expect(lines.KMS).toBeCloseTo((misses / 10_000) * 0.03, 10);
    expect(lines.DynamoDB).toBeCloseTo((misses / 1e6) * 0.125, 10);
    expect(lines['X-Ray']).toBeCloseTo(0.05 * 5, 10);
    expect(total(lines)).toBeCloseTo(
      Object.values(lines).reduce((sum, value) => sum + value, 0),
      10,
    );
    expect(prices.httpApiPerMillionRequests).toBe(1);
  });

  it('counts a refresh every (80 % - 2.5 %) of a 12-hour token, about 78.5 a month', () => {
    expect(refreshesPerConnectionMonth()).toBeCloseTo(730.5 / ((0.775 * 43_199) / 3600), 10);
    expect(refreshesPerConnectionMonth()).toBeGreaterThan(78);
    expect(refreshesPerConnectionMonth()).toBeLessThan(79);
  });

  it('grows the usage-driven services with the connections and keeps the fixed ones flat', () => {
    const small = freshnessCost(1_000);
    const large = freshnessCost(100_000);
    const refreshes = 99_000 * refreshesPerConnectionMonth();

    expect((large.KMS ?? 0) - (small.KMS ?? 0)).toBeCloseTo(
      (refreshes * DEFAULT_USAGE.refreshKmsRequests * 0.03) / 10_000,
      6,
    );
    expect(large['Secrets Manager']).toBe(small['Secrets Manager']);
    expect(large['CloudWatch metrics, alarms, dashboard']).toBe(
      DEFAULT_USAGE.metrics * 0.3 + DEFAULT_USAGE.alarms * 0.1 + DEFAULT_USAGE.dashboards * 3,
    );
  });
});

describe('the sweep capacity', () => {
  it("uses the broker's own sweep budget: 750 refreshes a 60-second sweep at 900 calls a minute", () => {
    expect(sweepBudgetAt(900, 60)).toBe(sweepBudget(60_000));
    expect(sweepBudgetAt(900, 60)).toBe(750);
    // An hourly sweep is cut off by the function's 900 s timeout.
    expect(sweepBudgetAt(900, 3600)).toBe(sweepBudget(900_000));
  });

  it('keeps R x 0.775 x 43,199 / 60 connections fresh at R refreshes a minute', () => {
    expect(steadyStateCapacity(750, 0.8, WISE_ACCESS_TOKEN_SECONDS)).toBe(
      Math.floor((750 * 0.775 * 43_199) / 60),
    );
  });

  it('refreshes every token of a deployment within its capacity by the next sweep after it falls due', () => {
    const result = simulateSweeps({
      ...base,
      connections: 20_000,
      issued: { kind: 'steady' },
      sweepCallsPerMinute: 900,
      hours: 24,
    });

    expect(result.expiredUnrefreshed).toBe(0);
    expect(result.worstDelayPastFractionMinutes).toBeLessThanOrEqual(1);
    expect(result.refreshes).toBeGreaterThan(20_000 * (24 / 9.6));
  });

  it('lets tokens expire when the due connections outgrow what the sweep can start', () => {
    const over = steadyStateCapacity(150, 0.8, WISE_ACCESS_TOKEN_SECONDS) * 2;

    const result = simulateSweeps({
      ...base,
      connections: over,
      issued: { kind: 'steady' },
      sweepCallsPerMinute: 180,
      hours: 24,
    });

    expect(result.sweepBudget).toBe(150);
    expect(result.expiredUnrefreshed).toBeGreaterThan(0);
    expect(result.backlogAtEnd).toBeGreaterThan(0);
  });

  it('drains a cohort that all falls due together, most overdue first, within the 20 % of slack', () => {
    const within = simulateSweeps({
      ...base,
      connections: 20_000,
      issued: { kind: 'cohort', withinMinutes: 10 },
      sweepCallsPerMinute: 180,
      hours: 24,
    });
    const beyond = simulateSweeps({
      ...base,
      connections: 40_000,
      issued: { kind: 'cohort', withinMinutes: 10 },
      sweepCallsPerMinute: 180,
      hours: 24,
    });

    // 150 a minute drain 20,000 in 133 minutes, inside the 144 minutes before expiry; 40,000 take 267.
    expect(within.expiredUnrefreshed).toBe(0);
    expect(beyond.expiredUnrefreshed).toBeGreaterThan(0);
  });
});
