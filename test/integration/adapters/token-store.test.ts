import { afterAll, beforeAll } from 'vitest';
import { createBrokerTable, DynamoDbTokenStore } from '#shared/adapters/dynamodb-token-store.ts';
import { type TestDynamoDb, testDynamoDb } from '../../support/aws.ts';
import { InMemoryTokenStore } from '../../support/in-memory-store.ts';
import { describeTokenStoreContract } from './token-store-contract.ts';

let dynamo: TestDynamoDb;

beforeAll(async () => {
  dynamo = await testDynamoDb();
});

afterAll(async () => {
  await dynamo?.close();
});

describeTokenStoreContract('the in-memory store of the unit tests', async () => new InMemoryTokenStore());

describeTokenStoreContract(
  process.env.DYNAMODB_ENDPOINT
    ? `DynamoDbTokenStore on ${process.env.DYNAMODB_ENDPOINT}`
    : 'DynamoDbTokenStore on the embedded DynamoDB',
  async () => {
    const tableName = dynamo.tableName('broker');
    await createBrokerTable(dynamo.client, tableName);
    return new DynamoDbTokenStore({ client: dynamo.client, tableName, shards: 4 });
  },
);
