import { DynamoDBDocumentClient, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createBrokerTable,
  DynamoDbTokenStore,
  type DynamoDbTokenStoreOptions,
  dueShardOf,
  ITEM_PARTITION_KEYS,
} from '#shared/adapters/dynamodb-token-store.ts';
import { InvalidRequestError } from '#shared/domain/errors.ts';
import type { RecordKey } from '#shared/domain/records.ts';
import type { FailureUpdate, NewConnection, TokenUpdate } from '#shared/ports/token-store.ts';
import { type TestDynamoDb, testDynamoDb } from '../../support/aws.ts';

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const MINUTE = 60_000;
const LEASE_MS = 30_000;

let dynamo: TestDynamoDb;

beforeAll(async () => {
  dynamo = await testDynamoDb();
});

afterAll(async () => {
  await dynamo?.close();
});

/** A store on a table of its own. */
async function newStore(
  options: Partial<Omit<DynamoDbTokenStoreOptions, 'client' | 'tableName'>> = {},
): Promise<DynamoDbTokenStore> {
  const tableName = dynamo.tableName('broker');
  await createBrokerTable(dynamo.client, tableName);
  return new DynamoDbTokenStore({ client: dynamo.client, tableName, ...options });
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined) => (value ? new TextDecoder().decode(value) : undefined);

function grant(connectionId: string, overrides: Partial<NewConnection> = {}): NewConnection {
  return {
    connectionId,
    status: 'active',
    grant: 'authorization_code',
    accessToken: bytes(`access-of-${connectionId}`),
    accessTokenExpiresAt: NOW + 12 * 60 * MINUTE,
    refreshToken: bytes(`refresh-of-${connectionId}`),
    scope: 'transfers',
    nextRefreshAt: NOW + 10 * 60 * MINUTE,
    lastRefreshAt: NOW,
    profileId: 42,
    ...overrides,
  };
}

function refreshed(label: string, nextRefreshAt = NOW + 10 * 60 * MINUTE): TokenUpdate {
  return {
    accessToken: bytes(`access-${label}`),
    accessTokenExpiresAt: nextRefreshAt + 2 * 60 * MINUTE,
    nextRefreshAt,
    lastRefreshAt: NOW,
  };
}

const connectionKey = (connectionId: string): RecordKey => ({ kind: 'connection', connectionId });

const INVALID_GRANT: FailureUpdate = {
  lastError: { code: 'invalid_grant', message: 'Wise rejected the refresh token.', at: NOW },
  failureCount: 0,
  status: 'needs_reauth',
};

/** Writes a first grant of the connection. */
async function connect(
  store: DynamoDbTokenStore,
  connectionId: string,
  overrides: Partial<NewConnection> = {},
) {
  return store.saveConnection(grant(connectionId, overrides), { expectedVersion: undefined, now: NOW });
}

/** Marks the connection needs_reauth the way a refresh that met invalid_grant does. */
async function markNeedsReauth(store: DynamoDbTokenStore, connectionId: string): Promise<void> {
  const key = connectionKey(connectionId);
  await store.acquireLease(key, { owner: 'reauth-worker', now: NOW, leaseMs: LEASE_MS });
  expect(await store.failRefresh(key, { owner: 'reauth-worker', now: NOW, update: INVALID_GRANT })).toBe(
    true,
  );
}

describe('DynamoDbTokenStore on the embedded DynamoDB', () => {
  describe('connect sessions', () => {
    const session = {
      stateHash: 'state-hash-abc',
      connectionId: 'acme-1',
      returnUrl: 'https://partner.example/done',
      createdBy: 'arn:aws:iam::123456789012:role/app',
      expiresAt: NOW + 10 * MINUTE,
      createdAt: NOW,
    };

    it('hands a session to exactly one of two concurrent consumers from its browser', async () => {
      const store = await newStore();
      await store.putConnectSession(session);
      await store.startConnectSession('state-hash-abc', { browserHash: 'browser-1', now: NOW });

      const results = await Promise.all([
        store.consumeConnectSession('state-hash-abc', { browserHash: 'browser-1' }),
        store.consumeConnectSession('state-hash-abc', { browserHash: 'browser-1' }),
      ]);

      expect(results.filter((result) => result !== undefined)).toEqual([
        { ...session, browserHash: 'browser-1' },
      ]);
      await expect(
        store.consumeConnectSession('state-hash-abc', { browserHash: 'browser-1' }),
      ).resolves.toBeUndefined();
    });

    it('binds a session to the first browser only, and only before it expires', async () => {
      const store = await newStore();
      await store.putConnectSession(session);
      await store.putConnectSession({ ...session, stateHash: 'state-hash-late' });

      const first = await store.startConnectSession('state-hash-abc', { browserHash: 'browser-1', now: NOW });
      const second = await store.startConnectSession('state-hash-abc', {
        browserHash: 'browser-2',
        now: NOW,
      });
      const late = await store.startConnectSession('state-hash-late', {
        browserHash: 'browser-1',
        now: session.expiresAt,
      });

      expect(first).toMatchObject({ connectionId: 'acme-1', browserHash: 'browser-1' });
      expect(second).toBeUndefined();
      expect(late).toBeUndefined();
    });

    it('leaves a session alone when another browser, or none, tries to consume it', async () => {
      const store = await newStore();
      await store.putConnectSession(session);
      await store.putConnectSession({ ...session, stateHash: 'state-hash-unbound' });
      await store.startConnectSession('state-hash-abc', { browserHash: 'browser-1', now: NOW });

      const stranger = await store.consumeConnectSession('state-hash-abc', { browserHash: 'browser-2' });
      const unbound = await store.consumeConnectSession('state-hash-unbound', { browserHash: 'browser-2' });

      expect(stranger).toBeUndefined();
      expect(unbound).toBeUndefined();
      await expect(
        store.consumeConnectSession('state-hash-abc', { browserHash: 'browser-1' }),
      ).resolves.toMatchObject({ connectionId: 'acme-1' });
    });

    it('refuses to overwrite a session that is still waiting', async () => {
      const store = await newStore();
      await store.putConnectSession(session);
      await store.startConnectSession(session.stateHash, { browserHash: 'b', now: NOW });

      await expect(store.putConnectSession({ ...session, connectionId: 'b' })).rejects.toThrow(
        /already exists/,
      );
      await expect(
        store.consumeConnectSession(session.stateHash, { browserHash: 'b' }),
      ).resolves.toMatchObject({ connectionId: 'acme-1' });
    });
  });

  describe('pending completions', () => {
    it('hands a pending connection out exactly once, with its ciphertexts intact', async () => {
      const store = await newStore();
      const pending = {
        codeHash: 'code-hash-1',
        connection: grant('acme-1', { profileId: 7 }),
        expiresAt: NOW + 10 * MINUTE,
        createdAt: NOW,
      };
      await store.putPendingCompletion(pending);

      const results = await Promise.all([
        store.consumePendingCompletion('code-hash-1'),
        store.consumePendingCompletion('code-hash-1'),
      ]);

      const taken = results.filter((result) => result !== undefined);
      expect(taken).toHaveLength(1);
      expect(taken[0]).toMatchObject({ codeHash: 'code-hash-1', expiresAt: pending.expiresAt });
      expect(text(taken[0]?.connection.accessToken)).toBe(text(pending.connection.accessToken));
      expect(taken[0]?.connection.profileId).toBe(7);
      await expect(store.getConnection('acme-1')).resolves.toBeUndefined();
    });
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

    it('writes each kind of item under the partition key pattern the deployment grants for it', async () => {
      const tableName = dynamo.tableName('broker');
      await createBrokerTable(dynamo.client, tableName);
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
      await connect(store, 'acme:eu-1');
      await store.acquireLease({ kind: 'client' }, { owner: 'worker-1', now: NOW, leaseMs: LEASE_MS });
      await store.linkWiseUser(5550001, 'acme:eu-1');

      const { Items = [] } = await DynamoDBDocumentClient.from(dynamo.client).send(
        new ScanCommand({ TableName: tableName }),
      );
      const keys = Items.map((item) => String(item.pk));

      expect(keys).toHaveLength(5);
      expect(keys.filter((key) => matches(ITEM_PARTITION_KEYS.connectSession, key))).toHaveLength(1);
      expect(keys.filter((key) => matches(ITEM_PARTITION_KEYS.pendingCompletion, key))).toHaveLength(1);
      expect(keys.filter((key) => matches(ITEM_PARTITION_KEYS.connection, key))).toEqual([
        'CONNECTION#acme:eu-1',
      ]);
      expect(keys.filter((key) => matches(ITEM_PARTITION_KEYS.client, key))).toEqual(['CLIENT']);
      expect(keys.filter((key) => matches(ITEM_PARTITION_KEYS.wiseUser, key))).toEqual(['WISE_USER#5550001']);
    });
  });

  describe('saveConnection', () => {
    it('creates a connection at generation 1 and version 1 and reads it back with its ciphertexts', async () => {
      const store = await newStore();

      const saved = await connect(store, 'acme-1');

      expect(saved).toMatchObject({ connectionId: 'acme-1', status: 'active', generation: 1, version: 1 });
      const read = await store.getConnection('acme-1');
      expect(read).toEqual(saved);
      expect(text(read?.accessToken)).toBe('access-of-acme-1');
      expect(text(read?.refreshToken)).toBe('refresh-of-acme-1');
      expect(read?.nextRefreshAt).toBe(NOW + 10 * 60 * MINUTE);
      expect(read).toMatchObject({ failureCount: 0, createdAt: NOW, updatedAt: NOW });
    });

    it('loses when the version is stale or a connection already exists, and wins at the current version', async () => {
      const store = await newStore();
      await connect(store, 'acme-1');
      await store.saveConnection(grant('acme-1'), { expectedVersion: 1, now: NOW + 1 });

      const again = await store.saveConnection(grant('acme-1'), { expectedVersion: undefined, now: NOW + 2 });
      const stale = await store.saveConnection(grant('acme-1'), { expectedVersion: 1, now: NOW + 2 });
      const current = await store.saveConnection(grant('acme-1', { accessToken: bytes('third') }), {
        expectedVersion: 2,
        now: NOW + 3,
      });

      expect(again).toBeUndefined();
      expect(stale).toBeUndefined();
      expect(current).toMatchObject({ generation: 3, version: 3, createdAt: NOW, updatedAt: NOW + 3 });
      expect(text(current?.accessToken)).toBe('third');
    });

    it('lets exactly one of two concurrent first grants win', async () => {
      const store = await newStore();

      const results = await Promise.all([
        store.saveConnection(grant('acme-1', { accessToken: bytes('one') }), {
          expectedVersion: undefined,
          now: NOW,
        }),
        store.saveConnection(grant('acme-1', { accessToken: bytes('two') }), {
          expectedVersion: undefined,
          now: NOW,
        }),
      ]);

      const winners = results.filter((result) => result !== undefined);
      expect(winners).toHaveLength(1);
      expect(text((await store.getConnection('acme-1'))?.accessToken)).toBe(text(winners[0]?.accessToken));
    });
  });

  describe('leases', () => {
    it('gives the lease to exactly one of two concurrent takers', async () => {
      const store = await newStore();
      await connect(store, 'acme-1');

      const results = await Promise.all(
        ['worker-1', 'worker-2'].map((owner) =>
          store.acquireLease(connectionKey('acme-1'), { owner, now: NOW, leaseMs: LEASE_MS }),
        ),
      );

      const winners = results.filter((result) => result !== undefined);
      expect(winners).toHaveLength(1);
      expect((await store.getConnection('acme-1'))?.lease).toEqual(winners[0]?.lease);
    });

    it('lets another owner take over an expired lease, after which the first owner can no longer write', async () => {
      const store = await newStore();
      await connect(store, 'acme-1');
      await store.acquireLease(connectionKey('acme-1'), { owner: 'worker-1', now: NOW, leaseMs: LEASE_MS });

      const whileHeld = await store.acquireLease(connectionKey('acme-1'), {
        owner: 'worker-2',
        now: NOW + LEASE_MS,
        leaseMs: LEASE_MS,
      });
      const afterExpiry = await store.acquireLease(connectionKey('acme-1'), {
        owner: 'worker-2',
        now: NOW + LEASE_MS + 1,
        leaseMs: LEASE_MS,
      });
      const lateWrite = await store.completeRefresh(connectionKey('acme-1'), {
        owner: 'worker-1',
        now: NOW + LEASE_MS + 2,
        update: refreshed('late'),
      });
      const lateFailure = await store.failRefresh(connectionKey('acme-1'), {
        owner: 'worker-1',
        now: NOW + LEASE_MS + 2,
        update: {
          lastError: { code: 'server_error', message: 'Wise answered 503.', at: NOW },
          failureCount: 1,
        },
      });

      expect(whileHeld).toBeUndefined();
      expect(afterExpiry?.lease).toEqual({ owner: 'worker-2', expiresAt: NOW + 2 * LEASE_MS + 1 });
      expect(lateWrite).toBeUndefined();
      expect(lateFailure).toBe(false);
      expect(text((await store.getConnection('acme-1'))?.accessToken)).toBe('access-of-acme-1');
    });

    it('grows the generation with every refresh, keeps the refresh token Wise did not replace, and frees the lease', async () => {
      const store = await newStore();
      await connect(store, 'acme-1');
      const key = connectionKey('acme-1');

      await store.acquireLease(key, { owner: 'worker-1', now: NOW, leaseMs: LEASE_MS });
      const first = await store.completeRefresh(key, {
        owner: 'worker-1',
        now: NOW,
        update: { ...refreshed('2'), refreshToken: bytes('refresh-2') },
      });
      await store.acquireLease(key, { owner: 'worker-2', now: NOW + 1, leaseMs: LEASE_MS });
      const second = await store.completeRefresh(key, {
        owner: 'worker-2',
        now: NOW + 1,
        update: refreshed('3'),
      });

      expect(first).toMatchObject({ generation: 2, version: 2 });
      expect(second).toMatchObject({ generation: 3, version: 3, failureCount: 0 });
      expect(second?.lease).toBeUndefined();
      expect(text(second?.accessToken)).toBe('access-3');
      expect(text(second?.refreshToken)).toBe('refresh-2');
    });

    it('gives the lease back without changing the record', async () => {
      const store = await newStore();
      const saved = await connect(store, 'acme-1');
      await store.acquireLease(connectionKey('acme-1'), { owner: 'worker-1', now: NOW, leaseMs: LEASE_MS });

      const byOther = await store.releaseLease(connectionKey('acme-1'), { owner: 'worker-2' });
      const byOwner = await store.releaseLease(connectionKey('acme-1'), { owner: 'worker-1' });

      expect(byOther).toBe(false);
      expect(byOwner).toBe(true);
      expect(await store.getConnection('acme-1')).toEqual(saved);
    });

    it('records a transient failure with its retry time and clears it on the next success', async () => {
      const store = await newStore();
      await connect(store, 'acme-1');
      const key = connectionKey('acme-1');
      const lastError = { code: 'server_error', message: 'Wise answered 503.', at: NOW };
      await store.acquireLease(key, { owner: 'worker-1', now: NOW, leaseMs: LEASE_MS });

      await store.failRefresh(key, {
        owner: 'worker-1',
        now: NOW,
        update: { lastError, failureCount: 1, nextRefreshAt: NOW + MINUTE },
      });
      const failed = await store.getConnection('acme-1');
      await store.acquireLease(key, { owner: 'worker-2', now: NOW + MINUTE, leaseMs: LEASE_MS });
      const recovered = await store.completeRefresh(key, {
        owner: 'worker-2',
        now: NOW + MINUTE,
        update: refreshed('2'),
      });

      expect(failed).toMatchObject({
        status: 'active',
        lastError,
        failureCount: 1,
        nextRefreshAt: NOW + MINUTE,
      });
      expect(failed?.lease).toBeUndefined();
      expect(recovered?.lastError).toBeUndefined();
      expect(recovered?.failureCount).toBe(0);
    });

    it('creates the client token record on its first lease and refreshes it like a connection', async () => {
      const store = await newStore();

      const leased = await store.acquireLease(
        { kind: 'client' },
        { owner: 'worker-1', now: NOW, leaseMs: LEASE_MS },
      );
      const second = await store.acquireLease(
        { kind: 'client' },
        { owner: 'worker-2', now: NOW, leaseMs: LEASE_MS },
      );
      const minted = await store.completeRefresh(
        { kind: 'client' },
        { owner: 'worker-1', now: NOW, update: refreshed('client') },
      );

      expect(leased).toEqual({
        generation: 0,
        version: 0,
        failureCount: 0,
        createdAt: NOW,
        updatedAt: NOW,
        lease: { owner: 'worker-1', expiresAt: NOW + LEASE_MS },
      });
      expect(second).toBeUndefined();
      expect(minted).toMatchObject({ generation: 1, version: 1 });
      expect(text((await store.getClientToken())?.accessToken)).toBe('access-client');
    });

    it('does not lease a connection that does not exist or needs reauthorization', async () => {
      const store = await newStore();
      await connect(store, 'acme-1');
      const key = connectionKey('acme-1');
      await markNeedsReauth(store, 'acme-1');

      const missing = await store.acquireLease(connectionKey('nobody'), {
        owner: 'worker-2',
        now: NOW + 2 * LEASE_MS,
        leaseMs: LEASE_MS,
      });
      const reauth = await store.acquireLease(key, {
        owner: 'worker-2',
        now: NOW + 2 * LEASE_MS,
        leaseMs: LEASE_MS,
      });

      expect(missing).toBeUndefined();
      expect(await store.getConnection('nobody')).toBeUndefined();
      expect(reauth).toBeUndefined();
      expect(await store.getConnection('acme-1')).toMatchObject({ status: 'needs_reauth' });
    });
  });

  describe('claimRejectionCheck', () => {
    it('grants one claim a window to one of two concurrent claimants, for the current generation of an active record only', async () => {
      const store = await newStore();
      const saved = await store.saveConnection(grant('acme-1'), { expectedVersion: undefined, now: NOW });
      const key: RecordKey = { kind: 'connection', connectionId: 'acme-1' };
      const claim = (now: number, generation = saved?.generation ?? 0) =>
        store.claimRejectionCheck(key, { generation, now, windowMs: MINUTE });

      const concurrent = await Promise.all([claim(NOW), claim(NOW)]);
      const inWindow = await claim(NOW + MINUTE - 1);
      const olderGeneration = await claim(NOW + 2 * MINUTE, (saved?.generation ?? 0) - 1);
      const afterWindow = await claim(NOW + MINUTE);
      const claimed = await store.getConnection('acme-1');
      await store.disconnect('acme-1', { now: NOW + 3 * MINUTE });
      const disconnected = await claim(NOW + 5 * MINUTE);

      expect(concurrent.filter(Boolean)).toHaveLength(1);
      expect([inWindow, olderGeneration, afterWindow, disconnected]).toEqual([false, false, true, false]);
      expect(claimed).toMatchObject({ version: saved?.version, rejectionCheckedAt: NOW + MINUTE });
    });

    it('claims for the client token only once it exists', async () => {
      const store = await newStore();
      const client: RecordKey = { kind: 'client' };

      const before = await store.claimRejectionCheck(client, { generation: 0, now: NOW, windowMs: MINUTE });
      await store.acquireLease(client, { owner: 'a', now: NOW, leaseMs: LEASE_MS });
      const after = await store.claimRejectionCheck(client, { generation: 0, now: NOW, windowMs: MINUTE });

      expect([before, after]).toEqual([false, true]);
      expect((await store.getClientToken())?.rejectionCheckedAt).toBe(NOW);
    });
  });

  describe('the Wise user link', () => {
    it("names the earlier connection of a Wise user, marks it replaced only while it is that user's, and forgets the link on disconnect", async () => {
      const store = await newStore();
      await store.saveConnection(grant('acme-1', { userId: 77 }), { expectedVersion: undefined, now: NOW });
      await store.saveConnection(grant('acme-2', { userId: 77 }), { expectedVersion: undefined, now: NOW });
      const lastError = { code: 'replaced_by_connection', message: 'replaced', at: NOW };

      const first = await store.linkWiseUser(77, 'acme-1');
      const again = await store.linkWiseUser(77, 'acme-1');
      const second = await store.linkWiseUser(77, 'acme-2');
      const otherUser = await store.markReplaced('acme-1', { userId: 78, lastError, now: NOW });
      const marked = await store.markReplaced('acme-1', { userId: 77, lastError, now: NOW });
      const markedTwice = await store.markReplaced('acme-1', { userId: 77, lastError, now: NOW });
      await store.disconnect('acme-2', { now: NOW });
      const afterDisconnect = await store.linkWiseUser(77, 'acme-3');

      expect([first, again, second]).toEqual([undefined, undefined, 'acme-1']);
      expect([otherUser, marked, markedTwice]).toEqual([false, true, false]);
      expect(await store.getConnection('acme-1')).toMatchObject({ status: 'needs_reauth', lastError });
      expect(await store.listDue({ now: NOW + 24 * 60 * MINUTE, limit: 10 })).toEqual([]);
      expect(afterDisconnect).toBeUndefined();
    });
  });

  describe('disconnect', () => {
    it('leaves a tombstone without tokens or personal data that no late lease, refresh or failure can revive', async () => {
      const store = await newStore();
      await store.saveConnection(
        grant('acme-1', { registrationCode: bytes('code'), email: 'jo@example.com', userId: 7 }),
        { expectedVersion: undefined, now: NOW },
      );
      const key = connectionKey('acme-1');
      await store.acquireLease(key, { owner: 'worker-1', now: NOW, leaseMs: LEASE_MS });

      const disconnected = await store.disconnect('acme-1', { now: NOW + 1 });
      const lateRefresh = await store.completeRefresh(key, {
        owner: 'worker-1',
        now: NOW + 2,
        update: refreshed('late'),
      });
      const lateFailure = await store.failRefresh(key, {
        owner: 'worker-1',
        now: NOW + 2,
        update: INVALID_GRANT,
      });
      const lateLease = await store.acquireLease(key, {
        owner: 'worker-2',
        now: NOW + 2 * LEASE_MS,
        leaseMs: LEASE_MS,
      });
      const again = await store.disconnect('acme-1', { now: NOW + 3 });

      expect(disconnected).toBe(true);
      expect([lateRefresh, lateFailure, lateLease, again]).toEqual([undefined, false, undefined, false]);
      const tombstone = await store.getConnection('acme-1');
      expect(tombstone).toMatchObject({ connectionId: 'acme-1', status: 'disconnected', version: 2 });
      expect(tombstone).not.toHaveProperty('accessToken');
      expect(tombstone).not.toHaveProperty('refreshToken');
      expect(tombstone).not.toHaveProperty('registrationCode');
      expect(tombstone).not.toHaveProperty('email');
      expect(tombstone).not.toHaveProperty('userId');
      expect(tombstone).not.toHaveProperty('profileId');
      expect(tombstone).not.toHaveProperty('nextRefreshAt');
      expect(tombstone).not.toHaveProperty('lease');
      expect(await store.listDue({ now: NOW + 100 * 60 * MINUTE, limit: 10 })).toEqual([]);
    });

    it('returns false for a connection that never existed', async () => {
      const store = await newStore();

      await expect(store.disconnect('nobody', { now: NOW })).resolves.toBe(false);
      expect(await store.getConnection('nobody')).toBeUndefined();
    });

    it('lets a new grant replace the tombstone at its version, with a higher generation', async () => {
      const store = await newStore();
      await connect(store, 'acme-1');
      await store.disconnect('acme-1', { now: NOW + 1 });

      const reconnected = await store.saveConnection(grant('acme-1'), { expectedVersion: 2, now: NOW + 2 });

      expect(reconnected).toMatchObject({ status: 'active', generation: 2, version: 3 });
      expect(await store.listDue({ now: NOW + 100 * 60 * MINUTE, limit: 10 })).toEqual([
        { key: connectionKey('acme-1'), nextRefreshAt: NOW + 10 * 60 * MINUTE },
      ]);
    });
  });

  describe('listDue', () => {
    it('returns only due records across every shard, the client token included, and never a needs_reauth one', async () => {
      const store = await newStore({ shards: 4 });
      const dueIds = ['acme-1', 'acme-2', 'acme-3', 'acme-4'];
      for (const [index, connectionId] of dueIds.entries()) {
        await connect(store, connectionId, { nextRefreshAt: NOW - (index + 1) * MINUTE });
      }
      await connect(store, 'later', { nextRefreshAt: NOW + MINUTE });
      await connect(store, 'reauth', { nextRefreshAt: NOW - MINUTE });
      await markNeedsReauth(store, 'reauth');
      await store.acquireLease({ kind: 'client' }, { owner: 'worker-1', now: NOW, leaseMs: LEASE_MS });
      await store.completeRefresh(
        { kind: 'client' },
        { owner: 'worker-1', now: NOW, update: refreshed('c', NOW) },
      );

      const due = await store.listDue({ now: NOW, limit: 10 });

      expect(new Set(dueIds.map((id) => dueShardOf(`CONNECTION#${id}`, 4))).size).toBe(4);
      expect(due).toEqual([
        { key: connectionKey('acme-4'), nextRefreshAt: NOW - 4 * MINUTE },
        { key: connectionKey('acme-3'), nextRefreshAt: NOW - 3 * MINUTE },
        { key: connectionKey('acme-2'), nextRefreshAt: NOW - 2 * MINUTE },
        { key: connectionKey('acme-1'), nextRefreshAt: NOW - MINUTE },
        { key: { kind: 'client' }, nextRefreshAt: NOW },
      ]);
    });

    it('still finds records written under more shards after the shard count is lowered', async () => {
      const tableName = dynamo.tableName('broker');
      await createBrokerTable(dynamo.client, tableName);
      const wide = new DynamoDbTokenStore({ client: dynamo.client, tableName, shards: 16 });
      const ids = Array.from({ length: 12 }, (_, index) => `acme-${index}`);
      for (const connectionId of ids) await connect(wide, connectionId, { nextRefreshAt: NOW - MINUTE });
      const narrow = new DynamoDbTokenStore({ client: dynamo.client, tableName, shards: 1 });

      const due = await narrow.listDue({ now: NOW, limit: 50 });

      expect(ids.filter((id) => dueShardOf(`CONNECTION#${id}`, 16) !== '0').length).toBeGreaterThan(6);
      expect(due.map((record) => record.key)).toHaveLength(ids.length);
      expect(
        new Set(due.map((record) => (record.key.kind === 'connection' ? record.key.connectionId : ''))),
      ).toEqual(new Set(ids));
    });

    it('returns at most limit records in total, the most overdue first', async () => {
      const store = await newStore({ shards: 4 });
      for (const [index, connectionId] of ['acme-1', 'acme-2', 'acme-3', 'acme-4'].entries()) {
        await connect(store, connectionId, { nextRefreshAt: NOW - (index + 1) * MINUTE });
      }

      const due = await store.listDue({ now: NOW, limit: 2 });

      expect(due.map((record) => record.key)).toEqual([connectionKey('acme-4'), connectionKey('acme-3')]);
    });
  });

  describe('listConnections', () => {
    let tableName: string;

    async function storeWithConnections(): Promise<DynamoDbTokenStore> {
      tableName = dynamo.tableName('broker');
      await createBrokerTable(dynamo.client, tableName);
      const store = new DynamoDbTokenStore({ client: dynamo.client, tableName });
      for (const connectionId of ['a-1', 'a-2', 'a-3', 'a-4', 'a-5', 'b-1', 'r-1', 'r-2', 'gone']) {
        await connect(store, connectionId, { email: `${connectionId}@example.com`, userId: 7 });
      }
      for (const connectionId of ['r-1', 'r-2']) await markNeedsReauth(store, connectionId);
      await store.disconnect('gone', { now: NOW });
      return store;
    }

    async function allPages(
      store: DynamoDbTokenStore,
      options: { status: 'active' | 'needs_reauth'; prefix: string; limit: number },
    ): Promise<string[][]> {
      const pages: string[][] = [];
      let startAfter: string | undefined;
      for (let page = 0; page < 20; page++) {
        const result = await store.listConnections({ ...options, ...(startAfter ? { startAfter } : {}) });
        pages.push(result.connections.map((connection) => connection.connectionId));
        startAfter = result.lastEvaluatedId;
        if (startAfter === undefined) return pages;
      }
      throw new Error('listConnections kept returning a position');
    }

    it('pages through the connections of one status and prefix in order', async () => {
      const store = await storeWithConnections();

      const pages = await allPages(store, { status: 'active', prefix: 'a-', limit: 2 });

      expect(pages.flat()).toEqual(['a-1', 'a-2', 'a-3', 'a-4', 'a-5']);
      expect(pages.slice(0, 2)).toEqual([
        ['a-1', 'a-2'],
        ['a-3', 'a-4'],
      ]);
    });

    it('reads every id of the status with an empty prefix, never a tombstone', async () => {
      const store = await storeWithConnections();

      const pages = await allPages(store, { status: 'active', prefix: '', limit: 4 });

      expect(pages.flat()).toEqual(['a-1', 'a-2', 'a-3', 'a-4', 'a-5', 'b-1']);
    });

    it('returns only the status fields of needs_reauth connections when asked for them', async () => {
      const store = await storeWithConnections();

      const page = await store.listConnections({ status: 'needs_reauth', prefix: 'r-', limit: 10 });

      expect(page).toEqual({
        connections: [
          {
            connectionId: 'r-1',
            status: 'needs_reauth',
            grant: 'authorization_code',
            profileId: 42,
            accessTokenExpiresAt: NOW + 12 * 60 * MINUTE,
            lastRefreshAt: NOW,
            lastError: INVALID_GRANT.lastError,
          },
          expect.objectContaining({ connectionId: 'r-2' }),
        ],
      });
    });

    it('copies no token, registration code or personal data into the status index', async () => {
      const store = await storeWithConnections();
      const documents = DynamoDBDocumentClient.from(dynamo.client);
      const [connection] = (await store.listConnections({ status: 'active', prefix: 'a-1', limit: 1 }))
        .connections;

      const output = await documents.send(
        new QueryCommand({
          TableName: tableName,
          IndexName: 'connections-by-status',
          KeyConditionExpression: '#status = :status',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':status': 'active' },
        }),
      );

      expect(connection?.nextRefreshAt).toBe(NOW + 10 * 60 * MINUTE);
      expect(output.Items?.length).toBe(6);
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

    it('refuses a position outside the prefix with InvalidRequestError', async () => {
      const store = await storeWithConnections();

      await expect(
        store.listConnections({ status: 'active', prefix: 'a-', limit: 2, startAfter: 'b-1' }),
      ).rejects.toBeInstanceOf(InvalidRequestError);
    });
  });
});
