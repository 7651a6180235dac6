import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type ReliabilityReport,
  readReliabilityReports,
  reliabilityLine,
  totalReliability,
  writeReliabilityReport,
} from '../../support/reliability/report.ts';

const wiseMatrix: ReliabilityReport = {
  source: 'Wise fault matrix',
  scenarios: 22,
  faults: 22,
  kills: 0,
  refreshes: 68,
  lost: 2,
  markedLost: 2,
};
const chaosRun: ReliabilityReport = {
  source: 'chaos run',
  scenarios: 1,
  faults: 5,
  kills: 5,
  refreshes: 40,
  lost: 1,
  markedLost: 1,
};

const dirs: string[] = [];
function emptyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'reliability-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the reliability summary', () => {
  it('adds up every test file’s report into one line', () => {
    const dir = emptyDir();
    writeReliabilityReport(wiseMatrix, dir);
    writeReliabilityReport(chaosRun, dir);

    const totals = totalReliability(readReliabilityReports(dir));

    expect(totals).toEqual({
      files: 2,
      scenarios: 23,
      faults: 27,
      kills: 5,
      refreshes: 108,
      lost: 3,
      markedLost: 3,
      unmarked: 0,
    });
    expect(reliabilityLine(totals)).toBe(
      'Reliability: 23 scenarios run, 27 faults injected, 5 kills, 108 refreshes, 3 refresh tokens lost (3 of them marked refresh_token_lost), from 2 test files',
    );
  });

  it('counts a loss the broker did not mark as unmarked', () => {
    const totals = totalReliability([wiseMatrix, { ...chaosRun, lost: 2, markedLost: 1 }]);

    expect(totals.unmarked).toBe(1);
  });

  it('reads no reports from a folder nothing wrote to', () => {
    expect(readReliabilityReports(join(emptyDir(), 'missing'))).toEqual([]);
  });

  it('fails the run at teardown when a lost refresh token was not marked, after printing the line', async () => {
    const dir = emptyDir();
    vi.stubEnv('RELIABILITY_DIR', dir);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const global = await import('../../support/reliability/global.ts');
    writeReliabilityReport({ ...wiseMatrix, lost: 3, markedLost: 2 }, dir);

    expect(() => global.teardown()).toThrow(/1 refresh tokens lost without the connection marked/);
    expect(log).toHaveBeenCalledWith(expect.stringMatching(/^Reliability: 22 scenarios run/));
  });

  it('passes the run at teardown when every lost refresh token was marked', async () => {
    const dir = emptyDir();
    vi.stubEnv('RELIABILITY_DIR', dir);
    vi.spyOn(console, 'log').mockImplementation(() => {});
    const global = await import('../../support/reliability/global.ts');
    writeReliabilityReport(wiseMatrix, dir);

    expect(() => global.teardown()).not.toThrow();
  });
});
