import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import type { BrokerHarness } from '../../support/broker.ts';
import { brokerPerTest, TOKEN_LIFETIME_MS, type VendBody, wiseAccepts } from './refresh-support.ts';

// An operator with write access to the table (or a restored backup) puts a saved copy of a connection's
// item back: after a disconnect, to undo it; after a refresh, to go back to older tokens. The fence kept
// beside the record refuses the copy, though its ciphertexts are intact and bound to its own generation.

const connected = brokerPerTest();

const CONNECTION_ITEM = { pk: 'CONNECTION#acme-1', sk: 'CONNECTION' };

/** The raw item of `acme-1`, as an operator would read it with GetItem. */
async function saveItem(broker: BrokerHarness): Promise<Record<string, unknown>> {
  const documents = DynamoDBDocumentClient.from(broker.dynamo.client);
  const { Item } = await documents.send(
    new GetCommand({ TableName: broker.tableName, Key: CONNECTION_ITEM, ConsistentRead: true }),
  );
  if (!Item) throw new Error('acme-1 has no item.');
  return Item;
}

/** Writes a saved item back over whatever is stored, with no condition, as an operator could. */
async function writeBack(broker: BrokerHarness, item: Record<string, unknown>): Promise<void> {
  const documents = DynamoDBDocumentClient.from(broker.dynamo.client);
  await documents.send(new PutCommand({ TableName: broker.tableName, Item: item }));
}

describe('a connection written back from a saved copy', () => {
  it('is refused after a disconnect: no token is vended and no refresh is made', async () => {
    const { broker, routes } = await connected();
    const saved = await saveItem(broker);
    await broker.runtime.store.disconnect('acme-1', { now: broker.clock.now() });

    await writeBack(broker, saved);
    const vended = await routes.vend({ connectionId: 'acme-1' });
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
    const sweep = await routes.sweep();

    expect(vended.statusCode).toBe(500);
    expect(vended.body).not.toMatch(/accessToken/);
    expect(sweep).toMatchObject({ due: 1, refreshed: 0 });
    expect(broker.simulator.stats().grants.refresh_token).toBe(0);
  });

  it('is refused after a refresh, though its refresh token still works at Wise', async () => {
    const { broker, routes } = await connected();
    const saved = await saveItem(broker);
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
    expect(await routes.sweep()).toMatchObject({ refreshed: 1 });

    await writeBack(broker, saved);
    const vended = await routes.vend({ connectionId: 'acme-1' });

    expect(vended.statusCode).toBe(500);
    expect(vended.body).not.toMatch(/accessToken/);
  });

  it('does not decrypt when only its data key and ciphertexts are copied onto the current record', async () => {
    const { broker, routes } = await connected();
    const saved = await saveItem(broker);
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
    expect(await routes.sweep()).toMatchObject({ refreshed: 1 });

    const current = await saveItem(broker);
    const { dataKey, accessToken, refreshToken } = saved;
    await writeBack(broker, { ...current, dataKey, accessToken, refreshToken });
    const vended = await routes.vend({ connectionId: 'acme-1' });

    expect(vended.statusCode).toBe(500);
    expect(vended.body).not.toMatch(/accessToken/);
  });

  it('is current again only through a new connection, whose generation is above the fence', async () => {
    const { broker, routes } = await connected();
    const saved = await saveItem(broker);
    await broker.runtime.store.disconnect('acme-1', { now: broker.clock.now() });
    await writeBack(broker, saved);

    await broker.connect('acme-1');
    const vended = await routes.vendOk({ connectionId: 'acme-1' });

    await expect(wiseAccepts(broker, vended.accessToken)).resolves.toBe(true);
  });

  it('leaves a connection made after its tombstone expired current: the new generation starts above the fence', async () => {
    const { broker, routes } = await connected();
    await broker.runtime.store.disconnect('acme-1', { now: broker.clock.now() });
    // The table's TTL removes the tombstone; the fence stays.
    const documents = DynamoDBDocumentClient.from(broker.dynamo.client);
    await documents.send(new DeleteCommand({ TableName: broker.tableName, Key: CONNECTION_ITEM }));

    const reconnected = await broker.connect('acme-1');
    const vended: VendBody = await routes.vendOk({ connectionId: 'acme-1' });

    expect(reconnected.generation).toBeGreaterThan(1);
    await expect(wiseAccepts(broker, vended.accessToken)).resolves.toBe(true);
  });
});
