/**
 * `npm run bench`: the broker's performance budgets, each measured side by side in one run (this machine
 * is shared and noisy: ratios and medians, never a single timing), printed as one table and written to
 * bench/results.json (one object per figure: name, value, unit, budget, met). Exits 1 when a budget is
 * missed. `--quick` runs smaller counts, to try the benchmark itself.
 */
import { writeFileSync } from 'node:fs';
import { startLocalBroker } from '#local/local-broker.ts';
import { LocalSettings } from '#local/local-config.ts';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import { AwsCallCounter } from './aws-calls.ts';
import { bundleFigures } from './bundle-bench.ts';
import { type BenchCaller, benchAudit, connectMany } from './connect.ts';
import { type Figure, figureTable } from './figures.ts';
import { httpFigures } from './http-bench.ts';
import { sweepFigures } from './sweep-bench.ts';
import { vendFigures } from './vend-bench.ts';

const quick = process.argv.includes('--quick');
const COUNTS = quick
  ? { loads: 3, rounds: 300, connections: 100, heapVends: 5_000, sweep: 500, httpSeconds: 1 }
  : { loads: 11, rounds: 2_000, connections: 1_000, heapVends: 100_000, sweep: 10_000, httpSeconds: 5 };

const CALLER: BenchCaller = {
  principal: 'arn:aws:iam::000000000000:role/bench',
  credentials: { accessKeyId: 'AKIABENCH00000000000', secretAccessKey: 'bench-secret-access-key' },
};
export const RESULTS_FILE = new URL('./results.json', import.meta.url);

async function vendAndHttpFigures(): Promise<Figure[]> {
  const broker = await startLocalBroker(
    {
      source: 'the benchmark',
      broker: parseBrokerConfig(
        {
          stage: 'bench',
          callers: [{ principal: CALLER.principal, use: ['bench-*'] }],
          connectWithoutConfirmation: true,
        },
        'the benchmark',
      ),
      local: LocalSettings.parse({
        port: 0,
        dataDir: null,
        credentials: [{ ...CALLER.credentials, principal: CALLER.principal }],
        simulator: { port: 0, rateLimit: { perSecond: 100_000, perMinute: 10_000_000 } },
      }),
    },
    { schedule: false, audit: benchAudit() },
  );
  try {
    const ids = Array.from({ length: COUNTS.connections }, (_, i) => `bench-${i}`);
    await connectMany(broker, CALLER, ids, 16);
    const calls = new AwsCallCounter(broker.aws.clients);
    const vends = await vendFigures({
      broker,
      calls,
      caller: CALLER,
      connectionIds: ids,
      rounds: COUNTS.rounds,
      heapVends: COUNTS.heapVends,
    });
    const http = await httpFigures(broker, CALLER, ids[0] ?? '', {
      concurrency: [1, 8, 64],
      seconds: COUNTS.httpSeconds,
    });
    return [...vends, ...http];
  } finally {
    await broker.close();
  }
}

async function main(): Promise<void> {
  // Bundles first: their load times are measured in fresh processes, before this one gets busy.
  const bundles = await bundleFigures({ loads: COUNTS.loads });
  const figures = [
    ...bundles.figures,
    ...(await vendAndHttpFigures()),
    ...(await sweepFigures(CALLER, COUNTS.sweep)),
  ];
  const machine = `${process.platform} ${process.arch}, Node ${process.version}`;
  writeFileSync(
    RESULTS_FILE,
    `${JSON.stringify({ measuredAt: new Date().toISOString(), machine, quick, figures, bundles: bundles.notes }, null, 2)}\n`,
  );
  console.log(figureTable(figures));
  console.log(`\nWhat each bundle holds most of (esbuild's metafile):\n${bundles.notes.join('\n')}`);
  const missed = figures.filter((figure) => figure.met === false);
  if (missed.length > 0) {
    console.error(`Budgets missed: ${missed.map((figure) => figure.name).join('; ')}.`);
    process.exitCode = 1;
  } else {
    console.log(`All ${figures.filter((figure) => figure.met !== undefined).length} budgets met.`);
  }
}

await main();
