import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateTableCommand,
  DynamoDBClient,
  PutItemCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedDynamoDb } from '#local/aws/dynamodb.ts';
import { startLocalAws } from '#local/aws/local-aws.ts';
import { testClientConfig } from '../../support/aws.ts';

const folders: string[] = [];

afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function newFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'private-files-'));
  folders.push(folder);
  return folder;
}

/** Every path under `root` (itself included) with its permission bits, as `path: 0oNNN`. */
function modes(root: string): Record<string, string> {
  const found: Record<string, string> = {};
  const walk = (path: string) => {
    const stats = statSync(path);
    found[path.slice(root.length) || '/'] =
      `${stats.isDirectory() ? 'dir' : 'file'} ${(stats.mode & 0o777).toString(8)}`;
    if (stats.isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry));
  };
  walk(root);
  return found;
}

function onlyOwner(found: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.keys(found).map((path) => [path, found[path]?.startsWith('dir') ? 'dir 700' : 'file 600']),
  );
}

describe('the local data files', () => {
  it("keeps the embedded DynamoDB's folder private while it runs and every file 0600 once it closed", async () => {
    const dataDir = join(newFolder(), 'dynamodb');
    const dynamo = await startEmbeddedDynamoDb({ dataDir });
    const client = new DynamoDBClient(testClientConfig(dynamo.endpoint));
    try {
      await client.send(
        new CreateTableCommand({
          TableName: 'private',
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        }),
      );
      await waitUntilTableExists({ client, maxWaitTime: 30, minDelay: 1 }, { TableName: 'private' });
      await client.send(
        new PutItemCommand({ TableName: 'private', Item: { pk: { S: 'CONNECTION#acme-1' } } }),
      );
      const running = statSync(dataDir).mode & 0o777;

      await dynamo.close();

      expect(running.toString(8)).toBe('700');
      const found = modes(dataDir);
      expect(Object.keys(found).length).toBeGreaterThan(2);
      expect(found).toEqual(onlyOwner(found));
    } finally {
      client.destroy();
      await dynamo.close();
    }
  });

  it('tightens a data folder an earlier version left readable to others, and writes the key and secret 0600', async () => {
    const dataDir = join(newFolder(), 'aws');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, 'left-behind.json'), '{}', { mode: 0o644 });
    chmodSync(join(dataDir, 'left-behind.json'), 0o644);

    const aws = await startLocalAws({
      dataDir,
      keys: ['alias/private-test'],
      secrets: { 'private/test': '{"clientSecret":"local"}' },
    });
    await aws.close();

    const found = modes(dataDir);
    expect(Object.keys(found)).toEqual(
      expect.arrayContaining(['/', '/left-behind.json', '/kms-keys.json', '/secrets.json']),
    );
    expect(found).toEqual(onlyOwner(found));
  });
});
