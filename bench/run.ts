/**
 * `npm run bench`: measures the vend path side by side in one run and reports medians and their ratio,
 * since this machine is shared and noisy. Targets:
 * - a warm vend (token in the instance's cache) is at least 10 times faster than a cold one (DynamoDB
 *   read and KMS decrypt through the real SDK against the embedded engines);
 * - 20,000 warm vends leave the heap no more than 8 MiB larger (the cache is bounded and leaks nothing).
 */
import { performance } from 'node:perf_hooks';
import { type LocalBroker, startLocalBroker } from '#local/local-broker.ts';
import { LocalSettings } from '#local/local-config.ts';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import { VendCache, vendToken } from '#shared/use-cases/vend-token.ts';
import { BrokerClient } from '../client/index.ts';
import { approveAtSimulator } from '../test/support/local-broker.ts';

const CALLER = 'arn:aws:iam::000000000000:role/bench';
const CREDENTIALS = { accessKeyId: 'AKIABENCH00000000000', secretAccessKey: 'bench-secret-access-key' };
const ROUNDS = 400;
const WARMUP = 50;
const HEAP_VENDS = 20_000;
const TARGET_RATIO = 10;
const TARGET_HEAP_GROWTH_MIB = 8;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

async function connect(broker: LocalBroker, connectionId: string): Promise<void> {
  const client = new BrokerClient({ baseUrl: broker.url, region: 'us-east-1', credentials: CREDENTIALS });
  const session = await client.createConnectSession({ connectionId });
  const callback = await approveAtSimulator(broker, session.state);
  if (callback.status !== 200) throw new Error(`Connecting the bench user failed with ${callback.status}.`);
}

async function main(): Promise<void> {
  const broker = await startLocalBroker(
    {
      source: 'the benchmark',
      broker: parseBrokerConfig(
        { stage: 'bench', callers: [{ principal: CALLER, use: ['bench-*'] }] },
        'the benchmark',
      ),
      local: LocalSettings.parse({
        port: 0,
        dataDir: null,
        credentials: [{ ...CREDENTIALS, principal: CALLER }],
        simulator: { port: 0 },
      }),
    },
    { schedule: false },
  );
  try {
    await connect(broker, 'bench-1');
    const request = { callerArn: CALLER, target: { kind: 'connection', connectionId: 'bench-1' } } as const;
    const warmCache = new VendCache();
    const time = async (cache: VendCache | undefined) => {
      const start = performance.now();
      await vendToken(broker.runtime, request, cache ? { cache } : {});
      return performance.now() - start;
    };

    for (let i = 0; i < WARMUP; i += 1) {
      await time(warmCache);
      await time(undefined);
    }
    // Alternate the two paths so that both see the same machine load.
    const warm: number[] = [];
    const cold: number[] = [];
    for (let i = 0; i < ROUNDS; i += 1) {
      warm.push(await time(warmCache));
      cold.push(await time(undefined));
    }

    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < HEAP_VENDS; i += 1) await time(warmCache);
    global.gc?.();
    const heapGrowthMiB = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;

    const warmMedian = median(warm);
    const coldMedian = median(cold);
    const ratio = coldMedian / warmMedian;
    const results = [
      { measure: 'cold vend median (ms)', value: coldMedian.toFixed(3) },
      { measure: 'warm vend median (ms)', value: warmMedian.toFixed(4) },
      { measure: `cold / warm ratio (target >= ${TARGET_RATIO})`, value: ratio.toFixed(1) },
      {
        measure: `heap growth after ${HEAP_VENDS} warm vends (target <= ${TARGET_HEAP_GROWTH_MIB} MiB)`,
        value: `${heapGrowthMiB.toFixed(2)} MiB${global.gc ? '' : ' (run with --expose-gc for a precise figure)'}`,
      },
    ];
    console.table(results);
    const failures = [
      ratio < TARGET_RATIO ? `the warm vend is only ${ratio.toFixed(1)} times faster than the cold one` : '',
      heapGrowthMiB > TARGET_HEAP_GROWTH_MIB ? `the heap grew by ${heapGrowthMiB.toFixed(2)} MiB` : '',
    ].filter(Boolean);
    if (failures.length > 0) {
      console.error(`Targets missed: ${failures.join('; ')}.`);
      process.exitCode = 1;
    } else {
      console.log('All targets met.');
    }
  } finally {
    await broker.close();
  }
}

await main();
