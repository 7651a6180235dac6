import { createServer, type Server, type Socket } from 'node:net';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerConfigSchema } from '#shared/config/broker-config.ts';
import { AWS_CLIENT_TIMEOUTS, deployedClientConfig } from '#shared/runtime/aws-client-config.ts';
import { deployedBrokerEvents, deployedTokenCipher, deployedTokenStore } from '#shared/runtime/aws-parts.ts';
import { STORE_RESERVE_MS } from '#shared/use-cases/refresh-record.ts';

/**
 * A deployed function's AWS SDK clients against an endpoint that accepts connections and never answers
 * (a hung DynamoDB, KMS, Secrets Manager or EventBridge): each call fails with the SDK's timeout after its
 * retries, within the time a refresh keeps for storing Wise's answer, instead of holding the invocation.
 */
let server: Server;
let endpoint: string;
const sockets = new Set<Socket>();
const saved = { ...process.env };

beforeAll(async () => {
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the hung endpoint has no port');
  endpoint = `http://127.0.0.1:${address.port}`;
  // As in a Lambda: region and credentials from the environment; every service at the hung endpoint.
  Object.assign(process.env, {
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'example-secret-access-key',
    AWS_ENDPOINT_URL: endpoint,
  });
  delete process.env.AWS_MAX_ATTEMPTS;
});

afterAll(async () => {
  process.env = saved;
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** How long `call` took to fail, and what it failed with; a call still running after 15 s counts as hung. */
async function timeFailure(call: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  let guard: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    guard = setTimeout(() => reject(new Error('still waiting after 15 s: the call hangs')), 15_000);
  });
  try {
    await Promise.race([call(), hung]);
    return { ms: performance.now() - started, error: undefined };
  } catch (error) {
    return { ms: performance.now() - started, error };
  } finally {
    clearTimeout(guard);
  }
}

/** The SDK's error at the root of what the adapter threw (an adapter may wrap it in a broker error). */
function rootCause(error: unknown): { name?: string; $metadata?: { attempts?: number } } | undefined {
  let current = error as { cause?: unknown } | undefined;
  while (current?.cause !== undefined) current = current.cause as { cause?: unknown };
  return current as ReturnType<typeof rootCause>;
}

describe('the AWS SDK clients of a deployed function, against an endpoint that never answers', () => {
  it('fail every call with the SDK timeout after its retries, within the store reserve of a refresh', async () => {
    const store = deployedTokenStore({
      tableName: 'broker',
      config: { refresh: brokerConfigSchema.shape.refresh.parse({}) },
    });
    const cipher = deployedTokenCipher({ keyId: 'alias/broker', config: { stage: 'test' } });
    const events = deployedBrokerEvents({ eventBusName: 'broker' });
    const secrets = new SecretsManagerClient(deployedClientConfig());

    const results = await Promise.all([
      timeFailure(() => store.getConnection('acme-1')),
      timeFailure(() =>
        cipher.prepare({ record: { kind: 'connection', connectionId: 'acme-1' }, generation: 1 }),
      ),
      timeFailure(() => secrets.send(new GetSecretValueCommand({ SecretId: 'broker/wise' }))),
      timeFailure(() =>
        events.connected({
          connectionId: 'acme-1',
          grant: 'authorization_code',
          imported: false,
          generation: 1,
          at: 0,
        }),
      ),
    ]);

    // The SDK's own attempts: four for DynamoDB, three for the others, each cut at the request timeout.
    const attempts = [4, 3, 3, 3];
    results.forEach(({ ms, error }, index) => {
      expect(rootCause(error)?.name).toBe('TimeoutError');
      expect(rootCause(error)?.$metadata?.attempts).toBe(attempts[index]);
      expect(ms).toBeGreaterThanOrEqual((attempts[index] ?? 0) * AWS_CLIENT_TIMEOUTS.requestTimeout - 50);
      expect(ms).toBeLessThan(STORE_RESERVE_MS);
    });
  }, 30_000);
});
