/**
 * The sweep at scale: many connections fall due at once (the shared clock jumps past their refresh
 * point) and the broker's own sweep refreshes them against the simulator, whose rate limit is raised for
 * the run as `refresh.tokenCallsPerMinute` is. Counts Wise's refreshes and the DynamoDB calls by kind.
 */
import { performance } from 'node:perf_hooks';
import { startLocalBroker } from '#local/local-broker.ts';
import { LocalSettings } from '#local/local-config.ts';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import type { SweepSummary } from '#shared/use-cases/refresh-due.ts';
import { AwsCallCounter } from './aws-calls.ts';
import { type BenchCaller, benchAudit, connectMany } from './connect.ts';
import { exactly, type Figure, reported } from './figures.ts';
import { sweepBudgetAt } from './sweep-capacity.ts';

const RAISED_CALLS_PER_MINUTE = 100_000;

/** The JS heap in use after a full collection (`--expose-gc`, as `npm run bench` runs), else as it is. */
function heapAfterGc(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

export async function sweepFigures(caller: BenchCaller, connections: number): Promise<Figure[]> {
  let offsetMs = 0;
  const clock = { now: () => Date.now() + offsetMs };
  const broker = await startLocalBroker(
    {
      source: 'the sweep benchmark',
      broker: parseBrokerConfig(
        {
          stage: 'bench',
          callers: [{ principal: caller.principal, use: ['sweep-*'] }],
          connectWithoutConfirmation: true,
          refresh: { concurrency: 50, tokenCallsPerMinute: RAISED_CALLS_PER_MINUTE },
        },
        'the sweep benchmark',
      ),
      local: LocalSettings.parse({
        port: 0,
        dataDir: null,
        credentials: [{ ...caller.credentials, principal: caller.principal }],
        simulator: { port: 0, rateLimit: { perSecond: 100_000, perMinute: 10_000_000 } },
      }),
    },
    { schedule: false, clock, audit: benchAudit() },
  );
  try {
    const ids = Array.from({ length: connections }, (_, i) => `sweep-${i}`);
    const connectStarted = performance.now();
    await connectMany(broker, caller, ids, 16);
    const connectSeconds = (performance.now() - connectStarted) / 1000;

    const simulator = broker.simulator?.url ?? '';
    await fetch(`${simulator}/__control/reset-stats`, { method: 'POST' });
    const calls = new AwsCallCounter(broker.aws.clients);
    // Every token is due by 80 % of its 12 hours: ten hours later, all of them are.
    offsetMs = 10 * 3_600_000;
    const heapBefore = heapAfterGc();
    const rssBefore = process.memoryUsage().rss;
    let peakRss = rssBefore;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }, 50);
    const started = performance.now();
    let sweeps = 0;
    let refreshed = 0;
    try {
      for (; sweeps < 20; sweeps += 1) {
        const summary = (await broker.sweep()) as SweepSummary;
        refreshed += summary.refreshed;
        if (summary.due === 0) break;
      }
    } finally {
      clearInterval(sampler);
    }
    const sweepSeconds = (performance.now() - started) / 1000;
    const heapAfter = heapAfterGc();
    const stats = (await (await fetch(`${simulator}/__control/stats`)).json()) as {
      grants: { refresh_token: number };
    };
    const operations = calls.byOperation();
    const defaultBudget = sweepBudgetAt(900, 60);
    return [
      reported(`connecting ${connections.toLocaleString('en-US')} connections (setup)`, connectSeconds, 's'),
      reported(
        `sweep of ${connections.toLocaleString('en-US')} due connections, wall time`,
        sweepSeconds,
        's',
      ),
      exactly('connections refreshed by the sweep', refreshed, 'connections', connections),
      exactly('Wise refreshes per due connection', stats.grants.refresh_token / connections, 'calls', 1),
      exactly('DynamoDB scans during the sweep', operations['DynamoDB.Scan'] ?? 0, 'calls', 0),
      reported('DynamoDB queries during the sweep', operations['DynamoDB.Query'] ?? 0, 'calls'),
      reported('DynamoDB GetItem during the sweep', operations['DynamoDB.GetItem'] ?? 0, 'calls'),
      reported('DynamoDB UpdateItem during the sweep', operations['DynamoDB.UpdateItem'] ?? 0, 'calls'),
      reported('DynamoDB PutItem during the sweep', operations['DynamoDB.PutItem'] ?? 0, 'calls'),
      reported('KMS calls during the sweep', calls.total('KMS.'), 'calls'),
      // The benchmark's one process also holds the simulator, the embedded DynamoDB and the earlier
      // figures' garbage: what the sweep itself adds is the growth, and what it keeps is the live heap.
      reported('peak resident memory during the sweep (the whole benchmark process)', peakRss / 1e6, 'MB'),
      reported('resident memory growth during the sweep', (peakRss - rssBefore) / 1e6, 'MB'),
      reported('live heap before the sweep (after a full GC)', heapBefore / 1e6, 'MB'),
      reported('live heap after the sweep (after a full GC)', heapAfter / 1e6, 'MB'),
      reported(
        `minutes the same sweep takes at Wise's default 1000 calls a minute (${defaultBudget} a 60 s sweep)`,
        Math.ceil(connections / defaultBudget),
        'min',
      ),
    ];
  } finally {
    await broker.close();
  }
}
