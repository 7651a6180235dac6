// Prints `N passed, N failed` from vitest's JSON report (argument 1) and the test command's exit status
// (argument 2). A file that failed outside its tests (an error in a hook, such as the leak scan's) counts
// as failed, and so does a failing exit status that no counted failure explains (the type check, the
// linter, a global teardown).
import { readFileSync } from 'node:fs';

const [reportPath, statusText = '0'] = process.argv.slice(2);
const status = Number(statusText);
let passed = 0;
let failed = 0;
try {
  const report = JSON.parse(readFileSync(reportPath, 'utf8'));
  passed = report.numPassedTests;
  failed =
    report.numFailedTests +
    (report.numFailedTestSuites > 0 && report.numFailedTests === 0 ? report.numFailedTestSuites : 0);
} catch {
  // No report: vitest did not run.
}
if (status !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
