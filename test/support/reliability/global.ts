import { rmSync } from 'node:fs';
import { RELIABILITY_DIR, readReliabilityReports, reliabilityLine, totalReliability } from './report.ts';

/** vitest global setup: starts the run with no reliability reports of an earlier one. */
export function setup(): void {
  rmSync(RELIABILITY_DIR, { recursive: true, force: true });
}

/**
 * vitest global teardown: prints the reliability line of the fault matrices and the chaos run; fails the
 * run when a refresh token was lost without the broker marking the connection `refresh_token_lost`.
 */
export function teardown(): void {
  const totals = totalReliability(readReliabilityReports());
  console.log(reliabilityLine(totals));
  if (totals.unmarked > 0)
    throw new Error(
      `Reliability: ${totals.unmarked} refresh tokens lost without the connection marked refresh_token_lost.`,
    );
}
