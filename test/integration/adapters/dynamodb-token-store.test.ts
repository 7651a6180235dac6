import { DynamoDBDocumentClient, GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createBrokerTable,
  DynamoDbTokenStore,
  dueShardOf,
  ITEM_PARTITION_KEYS,
} from '#shared/adapters/dynamodb-token-store.ts';
import type { NewConnection } from '#shared/ports/token-store.ts';
import { type TestDynamoDb, testDynamoDb } from '../../support/aws.ts';
import { grant as contractGrant } from './token-store-contract.ts';

// What every store promises is the contract suite (token-store.test.ts); this is what only the DynamoDB
// adapter has: shards of the due index, the status index's projection, the tombstone's TTL.

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const MINUTE = 60_000;

let dynamo: TestDynamoDb;

beforeAll(async () => {
  dynamo = await testDynamoDb();
});

afterAll(async () => {
  await dynamo?.close();
});

async function newTable(): Promise<string> {
  const tableName = dynamo.tableName('broker');
  await createBrokerTable(dynamo.client, tableName);
  return tableName;
}

/** A grant's connection with personal data and a registration code, as the status index must not copy. */
function grant(connectionId: string, overrides: Partial<NewConnection> = {}): NewConnection {
  return contractGrant(connectionId, {
    registrationCode: new TextEncoder().encode(`code-of-${connectionId}`),
    email: `${connectionId}@example.com`,
    userId: 7,
    ...overrides,
  });
}

describe('DynamoDbTokenStore on the embedded DynamoDB, beyond the token store contract', () => {
  it('still finds records written under more shards after the shard count is lowered', async () => {
    const tableName = await newTable();
    const wide = new DynamoDbTokenStore({ client: dynamo.client, tableName, shards: 16 });
    const ids = Array.from({ length: 12 }, (_, index) => `acme-${index}`);
    for (const connectionId of ids) {
      await wide.saveConnection(grant(connectionId, { nextRefreshAt: NOW - MINUTE }), {
        expectedVersion: undefined,
        now: NOW,
      });
    }
    const narrow = new DynamoDbTokenStore({ client: dynamo.client, tableName, shards: 1 });

    const due = await narrow.listDue({ now: NOW, limit: 50 });

    expect(ids.filter((id) => dueShardOf(`CONNECTION#${id}`, 16) !== '0').length).toBeGreaterThan(6);
    expect(
      new Set(due.map((record) => (record.key.kind === 'connection' ? record.key.connectionId : ''))),
    ).toEqual(new Set(ids));
  });

  it('copies no token, data key, registration code or personal data into the status index', async () => {
    const tableName = await newTable();
    const store = new DynamoDbTokenStore({ client: dynamo.client, tableName });
    for (const connectionId of ['a-1', 'a-2']) {
      await store.saveConnection(grant(connectionId), { expectedVersion: undefined, now: NOW });
      await store.raiseFence({ kind: 'connection', connectionId }, 1);
    }

    const output = await DynamoDBDocumentClient.from(dynamo.client).send(
      new QueryCommand({
        TableName: tableName,
        IndexName: 'connections-by-status',
        KeyConditionExpression: '#status = :status',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':status': 'active' },
      }),
    );

    expect(output.Items).toHaveLength(2);
    for (const item of output.Items ?? []) {
      expect(Object.keys(item).sort()).toEqual(
        [
          'pk',
          'sk',
          'status',
          'connectionId',
          'grant',
          'profileId',
          'accessTokenExpiresAt',
          'dueAt',
          'lastRefreshAt',
        ].sort(),
      );
    }
  });

  it('gives a tombstone a TTL of the tombstone days, and its fence none', async () => {
    const tableName = await newTable();
    const store = new DynamoDbTokenStore({ client: dynamo.client, tableName, tombstoneDays: 2 });
    await store.saveConnection(grant('acme-1'), { expectedVersion: undefined, now: NOW });

    await store.disconnect('acme-1', { now: NOW });

    const documents = DynamoDBDocumentClient.from(dynamo.client);
    const read = (sk: string) =>
      documents.send(new GetCommand({ TableName: tableName, Key: { pk: 'CONNECTION#acme-1', sk } }));
    expect((await read('CONNECTION')).Item?.ttl).toBe(NOW / 1000 + 2 * 86_400);
    expect((await read('FENCE')).Item).toEqual({ pk: 'CONNECTION#acme-1', sk: 'FENCE', generation: 2 });
  });

  describe('partition keys', () => {
    /** Whether a `dynamodb:LeadingKeys` pattern (IAM's `*`, any run of characters) matches a key. */
    const matches = (pattern: string, key: string) =>
      new RegExp(
        `^${pattern
          .split('*')
          .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
          .join('.*')}$`,
      ).test(key);

    it('writes each kind of item, fences and Wise user links included, under the partition key pattern the deployment grants for it', async () => {
      const tableName = await newTable();
      const store = new DynamoDbTokenStore({ client: dynamo.client, tableName });
      await store.putConnectSession({
        stateHash: 'state-hash-for-keys',
        connectionId: 'acme:eu-1',
        createdBy: 'arn:aws:iam::123456789012:role/app',
        expiresAt: NOW + MINUTE,
        createdAt: NOW,
      });
      await store.putPendingCompletion({
        codeHash: 'code-hash-for-keys',
        connection: grant('acme:eu-1'),
        expiresAt: NOW + MINUTE,
        createdAt: NOW,
      });
      await store.saveConnection(grant('acme:eu-1'), { expectedVersion: undefined, now: NOW });
      await store.raiseFence({ kind: 'connection', connectionId: 'acme:eu-1' }, 1);
      await store.acquireLease({ kind: 'client' }, { owner: 'worker-1', now: NOW, leaseMs: 30_000 });
      await store.raiseFence({ kind: 'client' }, 1);
      await store.linkWiseUser(5550001, 'acme:eu-1');

      const { Items = [] } = await DynamoDBDocumentClient.from(dynamo.client).send(
        new ScanCommand({ TableName: tableName }),
      );
      const keys = Items.map((item) => String(item.pk));

      expect(keys).toHaveLength(7);
      expect(keys.filter((key) => matches(ITEM_PARTITION_KEYS.connectSession, key))).toHaveLength(1);
      expect(keys.filter((key) => matches(ITEM_PARTITION_KEYS.pendingCompletion, key))).toHaveLength(1);
      // Fences live beside their records, under the same partition key.
      expect(keys.filter((key) => matches(ITEM_PARTITION_KEYS.connection, key))).toEqual([
        'CONNECTION#acme:eu-1',
        'CONNECTION#acme:eu-1',
      ]);
      expect(keys.filter((key) => matches(ITEM_PARTITION_KEYS.client, key))).toEqual(['CLIENT', 'CLIENT']);
      expect(keys.filter((key) => matches(ITEM_PARTITION_KEYS.wiseUser, key))).toEqual(['WISE_USER#5550001']);
    });
  });
});
