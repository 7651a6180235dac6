/**
 * The vend path in process, through the tokens function's own handler: warm (served from the instance's
 * cache), cold (one DynamoDB read and one KMS call) against a bare baseline doing only that read and that
 * call through the same clients, and the heap after many warm vends over many connections.
 */
import { performance } from 'node:perf_hooks';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DecryptCommand, EncryptCommand } from '@aws-sdk/client-kms';
import { createTokensHandler } from '#functions/tokens/handler.ts';
import { buildContext, buildEvent } from '#local/gateway/event.ts';
import { iamIdentity } from '#local/gateway/principal.ts';
import type { LocalBroker } from '#local/local-broker.ts';
import type { AwsCallCounter } from './aws-calls.ts';
import type { BenchCaller } from './connect.ts';
import { atMost, exactly, type Figure, median, quantile, reported } from './figures.ts';

type TokensHandler = ReturnType<typeof createTokensHandler>;

/** Calls a tokens handler as API Gateway would, for `caller`, and fails on anything but a 200. */
async function vend(handler: TokensHandler, caller: BenchCaller, connectionId: string): Promise<void> {
  const body = Buffer.from(JSON.stringify({ connectionId }));
  const event = buildEvent(
    {
      method: 'POST',
      rawPath: '/tokens',
      rawQuery: '',
      headers: { 'content-type': 'application/json', host: 'bench.local' },
      cookies: [],
      queryStringParameters: {},
      body,
      sourceIp: '127.0.0.1',
      localPort: 0,
      protocol: 'HTTP/1.1',
    },
    {
      routeKey: 'POST /tokens',
      pathParameters: {},
      requestId: 'bench',
      accountId: '000000000000',
      timeEpoch: Date.now(),
    },
    iamIdentity({ ...caller.credentials, principal: caller.principal }),
  );
  const context = buildContext({
    functionName: 'bench-tokens',
    region: 'us-east-1',
    accountId: '000000000000',
    timeoutMs: 28_000,
    now: Date.now,
  });
  const result = (await handler(event, context)) as { statusCode?: number; body?: string };
  if (result.statusCode !== 200) throw new Error(`The vend answered ${result.statusCode}: ${result.body}`);
}

async function timed(action: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await action();
  return performance.now() - start;
}

export interface VendBenchOptions {
  broker: LocalBroker;
  calls: AwsCallCounter;
  caller: BenchCaller;
  /** Connected ids; the first is the one timed, all of them serve the heap measure. */
  connectionIds: readonly string[];
  rounds: number;
  heapVends: number;
}

export async function vendFigures(options: VendBenchOptions): Promise<Figure[]> {
  const { broker, calls, caller, connectionIds, rounds } = options;
  const timedId = connectionIds[0] ?? '';
  const runtime = () => broker.runtime;
  const warmHandler = createTokensHandler(runtime);
  const { dynamodb, kms } = broker.aws.clients;
  // The bare baseline: the same read of the same item, and a KMS decrypt of a ciphertext of a token's size.
  const { CiphertextBlob } = await kms.send(
    new EncryptCommand({
      KeyId: broker.aws.keyId,
      Plaintext: Buffer.alloc(600, 7),
      EncryptionContext: { deployment: 'bench', record: `connection:${timedId}`, kind: 'access_token' },
    }),
  );
  const bare = async () => {
    await dynamodb.send(
      new GetItemCommand({
        TableName: broker.aws.tableName,
        Key: { pk: { S: `CONNECTION#${timedId}` }, sk: { S: 'CONNECTION' } },
        ConsistentRead: true,
      }),
    );
    await kms.send(
      new DecryptCommand({
        CiphertextBlob,
        KeyId: broker.aws.keyId,
        EncryptionContext: { deployment: 'bench', record: `connection:${timedId}`, kind: 'access_token' },
      }),
    );
  };
  // A new handler has an empty cache: it vends as a new Lambda instance would.
  const cold = () => vend(createTokensHandler(runtime), caller, timedId);
  const warm = () => vend(warmHandler, caller, timedId);

  for (let i = 0; i < 50; i += 1) {
    await warm();
    await cold();
    await bare();
  }
  const warmTimes: number[] = [];
  const coldTimes: number[] = [];
  const bareTimes: number[] = [];
  let warmCalls = 0;
  let coldReads = 0;
  let coldKms = 0;
  let coldOther = 0;
  // Interleaved, so that all three paths see the same machine load.
  for (let i = 0; i < rounds; i += 1) {
    // The cache keeps a token 30 s: fill it again, untimed, before each batch.
    if (i % 100 === 0) await warm();
    calls.reset();
    warmTimes.push(await timed(warm));
    warmCalls += calls.total();
    calls.reset();
    coldTimes.push(await timed(cold));
    coldReads += calls.total('DynamoDB.');
    coldKms += calls.total('KMS.');
    coldOther += calls.total() - calls.total('DynamoDB.') - calls.total('KMS.');
    bareTimes.push(await timed(bare));
  }

  // The heap: warm vends spread over every connection, after a first round that fills each cache entry.
  const heapHandler = createTokensHandler(runtime);
  const heapVend = (i: number) => vend(heapHandler, caller, connectionIds[i % connectionIds.length] ?? '');
  for (let i = 0; i < connectionIds.length; i += 1) await heapVend(i);
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  for (let i = 0; i < options.heapVends; i += 1) await heapVend(i);
  global.gc?.();
  const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;

  const coldMedian = median(coldTimes);
  const bareMedian = median(bareTimes);
  return [
    reported('warm vend p50 (handler in process)', quantile(warmTimes, 0.5), 'ms'),
    atMost('warm vend p99 (handler in process)', quantile(warmTimes, 0.99), 'ms', 1),
    exactly('AWS calls per warm vend', warmCalls / rounds, 'calls', 0),
    reported('cold vend median (handler in process)', coldMedian, 'ms'),
    reported('bare DynamoDB read + KMS decrypt median', bareMedian, 'ms'),
    atMost('cold vend / bare read and decrypt', coldMedian / bareMedian, 'x', 1.5),
    exactly('DynamoDB calls per cold vend', coldReads / rounds, 'calls', 1),
    exactly('KMS calls per cold vend', coldKms / rounds, 'calls', 1),
    exactly('other AWS calls per cold vend', coldOther / rounds, 'calls', 0),
    atMost(
      `heap growth over ${options.heapVends.toLocaleString('en-US')} warm vends across ${connectionIds.length.toLocaleString('en-US')} connections`,
      heapGrowthMb,
      'MB',
      10,
    ),
  ];
}
