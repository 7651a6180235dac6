import type { SweepSummary } from '#shared/use-cases/refresh-due.ts';

/**
 * The one line `npm start` prints after each refresh sweep: what it refreshed, what failed and why, the
 * connections at risk, and when the next refresh is due (`nextDueAt`, epoch ms; none when nothing is).
 */
export function sweepLine(summary: SweepSummary, nextDueAt: number | undefined, now: number): string {
  const { failedBy } = summary;
  const failed = `failed ${summary.failed} (rate limited ${failedBy.rateLimited}, transient ${failedBy.transient}, invalid_client ${failedBy.invalidClient}, error ${failedBy.error})`;
  const parts = [
    `refreshed ${summary.refreshed}`,
    failed,
    `needs reauth ${summary.needsReauth}`,
    `at risk ${summary.atRisk}`,
    `next due ${nextDueAt === undefined ? 'none' : `${new Date(nextDueAt).toISOString()} (${inWords(nextDueAt - now)})`}`,
  ];
  if (summary.stoppedBecause !== undefined) parts.push(`stopped early: ${summary.stoppedBecause}`);
  return `[sweep ${new Date(now).toISOString()}] ${parts.join(', ')}`;
}

function inWords(ms: number): string {
  if (ms <= 0) return 'now';
  const minutes = Math.ceil(ms / 60_000);
  if (minutes < 60) return `in ${minutes} min`;
  return `in ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
