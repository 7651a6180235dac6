import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  brokerTableDefinition,
  DynamoDbTokenStore,
  dueShardOf,
  MAX_REFRESH_SHARDS,
} from '#shared/adapters/dynamodb-token-store.ts';

// What the store does with the engine is the token-store contract suite (test/integration/adapters):
// these are the pure parts only.

const client = new DynamoDBClient({
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIAUNITTEST', secretAccessKey: 'unit-test-only' },
});

function store(options: { shards?: number } = {}): DynamoDbTokenStore {
  return new DynamoDbTokenStore({ client, tableName: 'broker-test', ...options });
}

describe('dueShardOf', () => {
  it('hashes a partition key to the same shard on every deployment (FNV-1a modulo the shard count)', () => {
    expect(dueShardOf('CLIENT', 4)).toBe('2');
    expect(dueShardOf('CONNECTION#acme-1', 4)).toBe('2');
    expect(dueShardOf('CONNECTION#acme-2', 4)).toBe('3');
    expect(dueShardOf('CONNECTION#acme-3', 4)).toBe('0');
    expect(dueShardOf('CONNECTION#acme-2', 8)).toBe('7');
  });
});

describe('DynamoDbTokenStore', () => {
  it('refuses a shard count that is not a whole number from 1 to the maximum', () => {
    expect(() => store({ shards: 0 })).toThrow(/at least 1/);
    expect(() => store({ shards: 1.5 })).toThrow(/at least 1/);
    expect(() => store({ shards: MAX_REFRESH_SHARDS + 1 })).toThrow(/at most 16/);
    expect(() => store({ shards: MAX_REFRESH_SHARDS })).not.toThrow();
  });
});

describe('brokerTableDefinition', () => {
  it('declares the keys, the sparse keys-only refresh-due index and a status index of status fields only', () => {
    expect(brokerTableDefinition('broker')).toEqual({
      TableName: 'broker',
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
        { AttributeName: 'dueShard', AttributeType: 'S' },
        { AttributeName: 'dueAt', AttributeType: 'N' },
        { AttributeName: 'status', AttributeType: 'S' },
        { AttributeName: 'connectionId', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: 'refresh-due',
          KeySchema: [
            { AttributeName: 'dueShard', KeyType: 'HASH' },
            { AttributeName: 'dueAt', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
        {
          IndexName: 'connections-by-status',
          KeySchema: [
            { AttributeName: 'status', KeyType: 'HASH' },
            { AttributeName: 'connectionId', KeyType: 'RANGE' },
          ],
          Projection: {
            ProjectionType: 'INCLUDE',
            NonKeyAttributes: [
              'grant',
              'profileId',
              'accessTokenExpiresAt',
              'dueAt',
              'lastRefreshAt',
              'lastError',
            ],
          },
        },
      ],
    });
  });

  it('copies no token, registration code or personal data into the status index', () => {
    const index = brokerTableDefinition('broker').GlobalSecondaryIndexes?.find(
      (candidate) => candidate.IndexName === 'connections-by-status',
    );

    expect(index?.Projection?.ProjectionType).toBe('INCLUDE');
    for (const attribute of ['accessToken', 'refreshToken', 'registrationCode', 'email', 'userId']) {
      expect(index?.Projection?.NonKeyAttributes).not.toContain(attribute);
    }
  });
});
