import { CreateTableCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EmbeddedDynamoDb, startEmbeddedDynamoDb } from '#local/aws/dynamodb.ts';
import {
  TEST_CREDENTIALS,
  TEST_KEY_ALIAS,
  testClientConfig,
  testDynamoDb,
  testLocalAws,
} from '../../support/aws.ts';

async function createTable(client: DynamoDBClient, tableName: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    }),
  );
}

describe('testDynamoDb', () => {
  const savedEndpoint = process.env.DYNAMODB_ENDPOINT;

  beforeEach(() => {
    delete process.env.DYNAMODB_ENDPOINT;
  });

  afterEach(() => {
    if (savedEndpoint === undefined) delete process.env.DYNAMODB_ENDPOINT;
    else process.env.DYNAMODB_ENDPOINT = savedEndpoint;
  });

  it('uses DYNAMODB_ENDPOINT when it is set, starts nothing, and leaves that engine running', async () => {
    const external: EmbeddedDynamoDb = await startEmbeddedDynamoDb();
    const observer = new DynamoDBClient(testClientConfig(external.endpoint));
    try {
      process.env.DYNAMODB_ENDPOINT = external.endpoint;
      const dynamoDb = await testDynamoDb();
      const tableName = dynamoDb.tableName();
      await createTable(dynamoDb.client, tableName);
      await dynamoDb.close();

      const tables = await observer.send(new ListTablesCommand({}));

      expect(dynamoDb.endpoint).toBe(external.endpoint);
      expect(tables.TableNames).toContain(tableName);
    } finally {
      observer.destroy();
      await external.close();
    }
  });

  it('starts its own in-memory engine when DYNAMODB_ENDPOINT is not set and stops it on close', async () => {
    const dynamoDb = await testDynamoDb();
    const tables = await dynamoDb.client.send(new ListTablesCommand({}));
    await dynamoDb.close();

    expect(dynamoDb.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(tables.TableNames).toEqual([]);
    await expect(fetch(dynamoDb.endpoint)).rejects.toThrow();
  });

  it('makes a new valid table name on every call, with the prefix asked for', async () => {
    const dynamoDb = await testDynamoDb();
    try {
      const names = [dynamoDb.tableName('tokens'), dynamoDb.tableName('tokens'), dynamoDb.tableName()];

      expect(new Set(names).size).toBe(3);
      expect(names[0]).toMatch(/^tokens-[A-Za-z0-9_.-]+$/);
      expect(names[2]).toMatch(/^test-[A-Za-z0-9_.-]+$/);
    } finally {
      await dynamoDb.close();
    }
  });

  it('configures its client with us-east-1 and the dummy static credentials', async () => {
    const dynamoDb = await testDynamoDb();
    try {
      expect(await dynamoDb.client.config.region()).toBe('us-east-1');
      expect(await dynamoDb.client.config.credentials()).toMatchObject(TEST_CREDENTIALS);
    } finally {
      await dynamoDb.close();
    }
  });
});

describe('testLocalAws', () => {
  it('points every client at the local endpoint with us-east-1 and the dummy static credentials', async () => {
    const aws = await testLocalAws();
    try {
      for (const client of [aws.kms, aws.secrets, aws.events]) {
        expect(await client.config.region()).toBe('us-east-1');
        expect(await client.config.credentials()).toMatchObject(TEST_CREDENTIALS);
        const endpoint = await client.config.endpoint?.();
        expect(`${endpoint?.protocol}//${endpoint?.hostname}:${endpoint?.port}`).toBe(aws.endpoint);
      }
    } finally {
      await aws.close();
    }
  });

  it('creates the test key alias unless other keys are asked for', async () => {
    const withDefault = await testLocalAws();
    const withOwnKeys = await testLocalAws({ keys: ['alias/other'] });
    try {
      expect(withDefault.keyArn(TEST_KEY_ALIAS)).toMatch(/^arn:aws:kms:us-east-1:000000000000:key\//);
      expect(() => withOwnKeys.keyArn(TEST_KEY_ALIAS)).toThrow(/is not found/);
    } finally {
      await withDefault.close();
      await withOwnKeys.close();
    }
  });
});
