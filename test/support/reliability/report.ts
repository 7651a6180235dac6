import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where each reliability test file's counts go, one JSON file each (`RELIABILITY_DIR` for another place). */
export const RELIABILITY_DIR =
  process.env.RELIABILITY_DIR ?? join(process.cwd(), 'test-results', 'reliability');

/** What one reliability test file observed: the fault matrices and the chaos run. */
export interface ReliabilityReport {
  /** Which run the counts come from, e.g. `Wise fault matrix`. */
  source: string;
  scenarios: number;
  faults: number;
  kills: number;
  /** Refresh-token requests that reached the Wise simulator. */
  refreshes: number;
  /** Connections that ended needing the user again though the user did nothing. */
  lost: number;
  /** Of {@link lost}, those the broker marked `refresh_token_lost`; the rest were lost silently. */
  markedLost: number;
}

/** The counts of every report added up, with the silent losses apart. */
export interface ReliabilityTotals extends Omit<ReliabilityReport, 'source'> {
  files: number;
  /** Losses the broker did not mark as its own: any is a failure. */
  unmarked: number;
}

/** Writes one test file's counts for the run's summary line. */
export function writeReliabilityReport(report: ReliabilityReport, dir = RELIABILITY_DIR): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${randomUUID()}.json`), JSON.stringify(report));
}

/** Every report written to `dir`; none when nothing was written. */
export function readReliabilityReports(dir = RELIABILITY_DIR): ReliabilityReport[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  return names.map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as ReliabilityReport);
}

/** Adds the reports up. */
export function totalReliability(reports: ReliabilityReport[]): ReliabilityTotals {
  const sum = (pick: (report: ReliabilityReport) => number) =>
    reports.reduce((total, report) => total + pick(report), 0);
  const lost = sum((report) => report.lost);
  const markedLost = sum((report) => report.markedLost);
  return {
    files: reports.length,
    scenarios: sum((report) => report.scenarios),
    faults: sum((report) => report.faults),
    kills: sum((report) => report.kills),
    refreshes: sum((report) => report.refreshes),
    lost,
    markedLost,
    unmarked: lost - markedLost,
  };
}

/** The run's reliability summary line. */
export function reliabilityLine(totals: ReliabilityTotals): string {
  return (
    `Reliability: ${totals.scenarios} scenarios run, ${totals.faults} faults injected, ${totals.kills} kills, ` +
    `${totals.refreshes} refreshes, ${totals.lost} refresh tokens lost ` +
    `(${totals.markedLost} of them marked refresh_token_lost), from ${totals.files} test files`
  );
}
