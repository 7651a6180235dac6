import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describeMetric } from './metric-coverage.ts';
import type { RehearsalResult } from './rehearse.ts';

/** Where `npm run rehearse` and the test write the report. */
export const REPORT_FILE = 'test-results/rehearsal.json';

/** The report as text: the journey, a table per function, and every failure. */
export function formatReport(result: RehearsalResult): string {
  const lines: string[] = [];
  lines.push(`Deployment rehearsal of ${result.assembly} (${(result.durationMs / 1000).toFixed(1)} s)`);
  lines.push('');
  lines.push('Journey:');
  for (const step of result.journey) {
    lines.push(
      `  ${step.ok ? 'ok  ' : 'FAIL'} ${step.name} (${step.ms} ms)${step.detail ? `: ${step.detail}` : ''}`,
    );
  }
  for (const fn of result.functions) {
    lines.push('');
    lines.push(`${fn.function} (${fn.logicalId}, ${fn.handler})`);
    const rows: [string, string][] = [
      ['bundle size', `${(fn.bundleBytes / 1024).toFixed(0)} KiB`],
      [
        'init (process start to first /invocation/next)',
        fn.initMs === undefined ? 'never' : `${fn.initMs} ms`,
      ],
      ['invocations', String(fn.invocations)],
      ['denials', String(fn.denials)],
    ];
    for (const [operation, count] of Object.entries(fn.callsByOperation).sort()) {
      rows.push([`calls ${operation}`, String(count)]);
    }
    for (const unused of fn.unusedPermissions) {
      rows.push([
        `unused ${unused.action}`,
        `${unused.resources.join(', ')}${unused.condition ? ` when ${JSON.stringify(unused.condition)}` : ''}: ${unused.reason ?? 'NO REASON'}`,
      ]);
    }
    const width = Math.max(...rows.map(([name]) => name.length));
    lines.push(`  ${'-'.repeat(width)} | ${'-'.repeat(10)}`);
    for (const [name, value] of rows) lines.push(`  ${name.padEnd(width)} | ${value}`);
  }
  if (result.metrics) {
    const { emitted, unemitted, publishedByAws } = result.metrics;
    const watchers = (metric: { alarms: string[]; widgets: string[] }) =>
      `alarms: ${metric.alarms.join(', ') || 'none'}; widgets: ${metric.widgets.join(', ') || 'none'}`;
    lines.push('');
    lines.push('Metrics the functions emitted, and what watches them:');
    for (const metric of emitted) {
      lines.push(`  ${describeMetric(metric)} from ${metric.functions.join(', ')}: ${watchers(metric)}`);
    }
    lines.push('Watched metrics the journey did not emit:');
    for (const metric of unemitted) {
      lines.push(`  ${describeMetric(metric)}: ${watchers(metric)}: ${metric.reason ?? 'NO REASON'}`);
    }
    lines.push(`Watched metrics AWS publishes: ${publishedByAws.length}`);
  }
  lines.push('');
  for (const warning of result.warnings) lines.push(`Warning: ${warning}`);
  if (result.ok) {
    lines.push('The rehearsal passed.');
  } else {
    lines.push(`The rehearsal FAILED (${result.failures.length}):`);
    for (const failure of result.failures) lines.push(`  - ${failure}`);
  }
  return lines.join('\n');
}

/** Writes the report as JSON (without the per-call list's repetition, which stays in `calls`). */
export function writeReport(result: RehearsalResult, file: string = REPORT_FILE): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
}
