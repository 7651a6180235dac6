import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LEAK_REPORTS_DIR, type LeakReport } from './report.ts';

/** vitest global setup: starts the run with no leak-scan reports of an earlier one. */
export function setup(): void {
  rmSync(LEAK_REPORTS_DIR, { recursive: true, force: true });
}

/**
 * vitest global teardown: adds up the reports every test file wrote and prints the counts; fails the run
 * when anything was found (each such file has failed already).
 */
export function teardown(): void {
  let reports: LeakReport[] = [];
  try {
    reports = readdirSync(LEAK_REPORTS_DIR)
      .filter((name) => name.endsWith('.json'))
      .map((name) => JSON.parse(readFileSync(join(LEAK_REPORTS_DIR, name), 'utf8')) as LeakReport);
  } catch {
    // No test file wrote a report (for example, none ran).
  }
  const sum = (pick: (report: LeakReport) => number) =>
    reports.reduce((total, report) => total + pick(report), 0);
  const found = sum((report) => report.found.length);
  const kinds: Record<string, number> = {};
  for (const report of reports) {
    for (const [kind, count] of Object.entries(report.secretsByKind))
      kinds[kind] = (kinds[kind] ?? 0) + count;
  }
  const byKind = Object.entries(kinds)
    .sort()
    .map(([kind, count]) => `${count} ${kind}`)
    .join(', ');
  console.log(
    `Leak scan: ${reports.length} test files, ${sum((report) => report.lines)} lines in ${sum((report) => report.outputs)} outputs scanned, ${sum((report) => report.secrets)} secrets known (${byKind || 'none'}), secrets found: ${found}`,
  );
  if (found > 0) {
    const files = reports.filter((report) => report.found.length > 0).map((report) => report.file);
    throw new Error(`Leak scan: secrets found in what ${files.join(', ')} produced.`);
  }
}
