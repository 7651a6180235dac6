import { randomBytes } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { KMSClient } from '@aws-sdk/client-kms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { startEmbeddedDynamoDb } from '#local/aws/dynamodb.ts';
import { type LocalAwsOptions, type RecordedEvent, startLocalAws } from '#local/aws/local-aws.ts';

/** The region every test client names. */
export const TEST_REGION = 'us-east-1';

/** Dummy static credentials: with them no client ever consults a real credential chain. */
export const TEST_CREDENTIALS = { accessKeyId: 'AKIALOCALTEST0000000', secretAccessKey: 'local-test-only' };

/** The KMS alias {@link testLocalAws} creates when its options name no keys. */
export const TEST_KEY_ALIAS = 'alias/wise-broker-test';

/** The configuration for any SDK v3 client pointed at a local endpoint. */
export function testClientConfig(endpoint: string): {
  endpoint: string;
  region: string;
  credentials: typeof TEST_CREDENTIALS;
} {
  return { endpoint, region: TEST_REGION, credentials: { ...TEST_CREDENTIALS } };
}

/** A DynamoDB for one test file. */
export interface TestDynamoDb {
  client: DynamoDBClient;
  endpoint: string;
  /** A table name no other call has answered: each test creates its own table. */
  tableName(prefix?: string): string;
  /** Destroys the client and stops the embedded engine if this call started one. */
  close(): Promise<void>;
}

let tableCount = 0;

/**
 * A DynamoDB client for a test: against `process.env.DYNAMODB_ENDPOINT` when it is set (for instance
 * AWS's DynamoDB Local, the stricter check), in which case nothing is started; otherwise against an
 * embedded in-memory engine started for this call.
 */
export async function testDynamoDb(): Promise<TestDynamoDb> {
  const external = process.env.DYNAMODB_ENDPOINT;
  const engine = external ? { endpoint: external, close: async () => {} } : await startEmbeddedDynamoDb();
  const endpoint = engine.endpoint;
  const client = new DynamoDBClient(testClientConfig(endpoint));
  // Unique across test files run in parallel against one shared endpoint, too.
  const run = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
  return {
    client,
    endpoint,
    tableName: (prefix = 'test') => `${prefix}-${run}-${++tableCount}`,
    close: async () => {
      client.destroy();
      await engine.close();
    },
  };
}

/** The local AWS endpoint of a test with clients pointed at it. */
export interface TestLocalAws {
  endpoint: string;
  kms: KMSClient;
  secrets: SecretsManagerClient;
  events: EventBridgeClient;
  /** Every entry `PutEvents` received, in order (a live array). */
  recordedEvents: RecordedEvent[];
  /** The key ARN for a key id, key ARN, alias name or alias ARN. */
  keyArn(aliasOrId: string): string;
  /** Destroys the clients and stops the endpoint. */
  close(): Promise<void>;
}

/**
 * Starts the local KMS, Secrets Manager and EventBridge endpoint on 127.0.0.1 and a free port, in
 * memory unless `dataDir` is given, with the key {@link TEST_KEY_ALIAS} unless `keys` says otherwise.
 */
export async function testLocalAws(options: LocalAwsOptions = {}): Promise<TestLocalAws> {
  const localAws = await startLocalAws({
    host: '127.0.0.1',
    port: 0,
    region: TEST_REGION,
    ...options,
    keys: options.keys ?? [TEST_KEY_ALIAS],
  });
  const config = testClientConfig(localAws.endpoint);
  const kms = new KMSClient(config);
  const secrets = new SecretsManagerClient(config);
  const events = new EventBridgeClient(config);
  return {
    endpoint: localAws.endpoint,
    kms,
    secrets,
    events,
    recordedEvents: localAws.events,
    keyArn: (aliasOrId) => localAws.keyArn(aliasOrId),
    close: async () => {
      for (const client of [kms, secrets, events]) client.destroy();
      await localAws.close();
    },
  };
}

/**
 * The `dynamodb` option of `startLocalBroker` for a test: an outside DynamoDB and a table of its own
 * when `DYNAMODB_ENDPOINT` is set, nothing (the embedded engine) otherwise. Call it once per broker whose
 * data must survive a restart, and pass the same value to each start.
 */
export function localBrokerStorage(prefix = 'local'): { dynamodb?: { endpoint: string; tableName: string } } {
  const endpoint = process.env.DYNAMODB_ENDPOINT;
  if (!endpoint) return {};
  const run = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
  return { dynamodb: { endpoint, tableName: `${prefix}-${run}-${++tableCount}` } };
}
