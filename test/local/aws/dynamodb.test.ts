import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ResourceNotFoundException,
  UpdateItemCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedDynamoDb, startEmbeddedDynamoDb } from '#local/aws/dynamodb.ts';
import { testClientConfig } from '../../support/aws.ts';

let tableCount = 0;

/** A table keyed by `pk` (string) and `sk` (number), with a GSI on `status` and `dueAt` (number). */
async function createTable(client: DynamoDBClient): Promise<string> {
  const tableName = `embedded-${++tableCount}`;
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'N' },
        { AttributeName: 'status', AttributeType: 'S' },
        { AttributeName: 'dueAt', AttributeType: 'N' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: 'by-due-time',
          KeySchema: [
            { AttributeName: 'status', KeyType: 'HASH' },
            { AttributeName: 'dueAt', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 10, minDelay: 1 }, { TableName: tableName });
  return tableName;
}

describe('startEmbeddedDynamoDb', () => {
  describe('in memory', () => {
    let engine: EmbeddedDynamoDb;
    let client: DynamoDBClient;

    beforeAll(async () => {
      engine = await startEmbeddedDynamoDb();
      client = new DynamoDBClient(testClientConfig(engine.endpoint));
    });

    afterAll(async () => {
      client.destroy();
      await engine.close();
    });

    it('listens on loopback at an ephemeral port by default', () => {
      expect(engine.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    });

    it('creates a table with a global secondary index and answers queries on that index', async () => {
      const tableName = await createTable(client);
      await client.send(
        new PutItemCommand({
          TableName: tableName,
          Item: { pk: { S: 'connection#1' }, sk: { N: '0' }, status: { S: 'active' }, dueAt: { N: '300' } },
        }),
      );
      await client.send(
        new PutItemCommand({
          TableName: tableName,
          Item: { pk: { S: 'connection#2' }, sk: { N: '0' }, status: { S: 'active' }, dueAt: { N: '100' } },
        }),
      );

      const due = await client.send(
        new QueryCommand({
          TableName: tableName,
          IndexName: 'by-due-time',
          KeyConditionExpression: '#status = :active AND dueAt <= :now',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':active': { S: 'active' }, ':now': { N: '200' } },
        }),
      );

      expect(due.Items?.map((item) => item.pk?.S)).toEqual(['connection#2']);
    });

    it('refuses a conditional put on an existing item with ConditionalCheckFailedException', async () => {
      const tableName = await createTable(client);
      const put = () =>
        client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: { pk: { S: 'connection#1' }, sk: { N: '0' } },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
      await put();

      await expect(put()).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    });

    it('refuses an update whose version condition no longer holds and keeps the stored item', async () => {
      const tableName = await createTable(client);
      const key = { pk: { S: 'connection#1' }, sk: { N: '0' } };
      await client.send(new PutItemCommand({ TableName: tableName, Item: { ...key, version: { N: '2' } } }));

      const staleUpdate = client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: key,
          UpdateExpression: 'SET version = :next',
          ConditionExpression: 'version = :expected',
          ExpressionAttributeValues: { ':expected': { N: '1' }, ':next': { N: '2' } },
        }),
      );

      await expect(staleUpdate).rejects.toBeInstanceOf(ConditionalCheckFailedException);
      const stored = await client.send(new GetItemCommand({ TableName: tableName, Key: key }));
      expect(stored.Item?.version?.N).toBe('2');
    });

    it('orders and bounds a numeric range key by number, not by text', async () => {
      const tableName = await createTable(client);
      for (const sk of ['1', '2', '10', '30']) {
        await client.send(
          new PutItemCommand({ TableName: tableName, Item: { pk: { S: 'connection#1' }, sk: { N: sk } } }),
        );
      }

      const result = await client.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :low AND :high',
          ExpressionAttributeValues: {
            ':pk': { S: 'connection#1' },
            ':low': { N: '2' },
            ':high': { N: '10' },
          },
          ScanIndexForward: false,
        }),
      );

      expect(result.Items?.map((item) => item.sk?.N)).toEqual(['10', '2']);
    });
  });

  describe('restarts', () => {
    const folders: string[] = [];
    const engines: EmbeddedDynamoDb[] = [];
    const clients: DynamoDBClient[] = [];

    async function start(dataDir?: string): Promise<DynamoDBClient> {
      const engine = await startEmbeddedDynamoDb({ dataDir: dataDir ?? null });
      engines.push(engine);
      const client = new DynamoDBClient(testClientConfig(engine.endpoint));
      clients.push(client);
      return client;
    }

    async function stopAll(): Promise<void> {
      for (const client of clients.splice(0)) client.destroy();
      for (const engine of engines.splice(0)) await engine.close();
    }

    afterEach(stopAll);

    afterAll(async () => {
      for (const folder of folders) await rm(folder, { recursive: true, force: true });
    });

    it('keeps tables and items in the data folder, which it creates, across a restart', async () => {
      const parent = await mkdtemp(join(tmpdir(), 'embedded-dynamodb-'));
      folders.push(parent);
      const dataDir = join(parent, 'nested', 'dynamodb');
      const first = await start(dataDir);
      const tableName = await createTable(first);
      const key = { pk: { S: 'connection#1' }, sk: { N: '0' } };
      await first.send(new PutItemCommand({ TableName: tableName, Item: { ...key, note: { S: 'kept' } } }));
      await stopAll();

      const second = await start(dataDir);
      const stored = await second.send(new GetItemCommand({ TableName: tableName, Key: key }));

      expect((await stat(dataDir)).isDirectory()).toBe(true);
      expect(stored.Item?.note?.S).toBe('kept');
    });

    it('forgets everything across a restart without a data folder', async () => {
      const first = await start();
      const tableName = await createTable(first);
      await stopAll();

      const second = await start();
      const read = second.send(
        new GetItemCommand({ TableName: tableName, Key: { pk: { S: 'connection#1' }, sk: { N: '0' } } }),
      );

      await expect(read).rejects.toBeInstanceOf(ResourceNotFoundException);
    });
  });
});
