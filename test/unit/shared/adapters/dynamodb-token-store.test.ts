import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  brokerTableDefinition,
  DynamoDbTokenStore,
  dueShardOf,
  MAX_REFRESH_SHARDS,
} from '#shared/adapters/dynamodb-token-store.ts';
import { InvalidRequestError } from '#shared/domain/errors.ts';
import type { NewConnection } from '#shared/ports/token-store.ts';

const TABLE = 'broker-test';
const documents = mockClient(DynamoDBDocumentClient);
const client = new DynamoDBClient({
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIAUNITTEST', secretAccessKey: 'unit-test-only' },
});

/** `{ '#a': 'a', ... }`: the store names every attribute through a placeholder. */
function names(...attributes: string[]): Record<string, string> {
  return Object.fromEntries(attributes.map((attribute) => [`#${attribute}`, attribute]));
}

function lostCondition(): ConditionalCheckFailedException {
  return new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
}

function store(options: { shards?: number; tombstoneDays?: number } = {}): DynamoDbTokenStore {
  return new DynamoDbTokenStore({ client, tableName: TABLE, ...options });
}

const bytes = (...values: number[]) => new Uint8Array(values);

beforeEach(() => {
  documents.reset();
});

afterAll(() => {
  documents.restore();
  client.destroy();
});

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

  describe('putConnectSession', () => {
    it('writes the session once, with a ttl in epoch seconds, never over an existing state', async () => {
      documents.on(PutCommand).resolves({});

      await store().putConnectSession({
        stateHash: 'state-hash-1',
        connectionId: 'acme-1',
        returnUrl: 'https://partner.example/done',
        createdBy: 'arn:aws:iam::123456789012:role/app',
        expiresAt: 1_700_000_600_500,
        createdAt: 1_700_000_000_000,
      });

      const calls = documents.commandCalls(PutCommand);
      expect(calls).toHaveLength(1);
      expect(calls[0]?.args[0].input).toEqual({
        TableName: TABLE,
        Item: {
          pk: 'SESSION#state-hash-1',
          sk: 'SESSION',
          connectionId: 'acme-1',
          returnUrl: 'https://partner.example/done',
          createdBy: 'arn:aws:iam::123456789012:role/app',
          expiresAt: 1_700_000_600_500,
          createdAt: 1_700_000_000_000,
          ttl: 1_700_000_601,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      });
    });

    it('throws without naming the state when the state is already taken', async () => {
      documents.on(PutCommand).rejects(lostCondition());

      const put = store().putConnectSession({
        stateHash: 'state-hash-1',
        connectionId: 'acme-1',
        createdBy: 'arn:aws:iam::123456789012:role/app',
        expiresAt: 2,
        createdAt: 1,
      });

      await expect(put).rejects.toThrow('A connect session with the same state already exists');
      await expect(put).rejects.not.toThrow(/state-hash-1/);
    });
  });

  describe('consumeConnectSession', () => {
    it('deletes the session only if it is bound to the browser and returns what was stored', async () => {
      documents.on(DeleteCommand).resolves({
        Attributes: {
          pk: 'SESSION#state-hash-1',
          sk: 'SESSION',
          connectionId: 'acme-1',
          browserHash: 'browser-hash-1',
          createdBy: 'arn:aws:iam::123456789012:role/app',
          expiresAt: 2_000,
          createdAt: 1_000,
          ttl: 2,
        },
      });

      const session = await store().consumeConnectSession('state-hash-1', { browserHash: 'browser-hash-1' });

      expect(documents.commandCalls(DeleteCommand)[0]?.args[0].input).toEqual({
        TableName: TABLE,
        Key: { pk: 'SESSION#state-hash-1', sk: 'SESSION' },
        ConditionExpression: 'attribute_exists(pk) AND browserHash = :browserHash',
        ExpressionAttributeValues: { ':browserHash': 'browser-hash-1' },
        ReturnValues: 'ALL_OLD',
      });
      expect(session).toEqual({
        stateHash: 'state-hash-1',
        browserHash: 'browser-hash-1',
        connectionId: 'acme-1',
        createdBy: 'arn:aws:iam::123456789012:role/app',
        expiresAt: 2_000,
        createdAt: 1_000,
      });
    });

    it('returns undefined when the session is unknown or was already consumed', async () => {
      documents.on(DeleteCommand).rejects(lostCondition());

      await expect(
        store().consumeConnectSession('state-hash-1', { browserHash: 'b' }),
      ).resolves.toBeUndefined();
    });

    it('passes on any error other than a lost condition', async () => {
      documents.on(DeleteCommand).rejects(new Error('throttled'));

      await expect(store().consumeConnectSession('state-hash-1', { browserHash: 'b' })).rejects.toThrow(
        'throttled',
      );
    });
  });

  describe('getConnection', () => {
    it('reads the item consistently and maps dueAt and the lease back onto the record', async () => {
      documents.on(GetCommand).resolves({
        Item: {
          pk: 'CONNECTION#acme-1',
          sk: 'CONNECTION',
          connectionId: 'acme-1',
          status: 'active',
          grant: 'registration_code',
          accessToken: bytes(1),
          accessTokenExpiresAt: 5_000,
          refreshToken: bytes(2),
          registrationCode: bytes(3),
          email: 'user@example.com',
          profileId: 42,
          userId: 7,
          scope: 'transfers',
          generation: 3,
          version: 9,
          dueShard: '2',
          dueAt: 4_000,
          lastRefreshAt: 1_000,
          lastError: { code: 'server_error', message: 'Wise answered 503.', at: 900 },
          failureCount: 1,
          leaseOwner: 'worker-1',
          leaseExpiresAt: 1_500,
          createdAt: 100,
          updatedAt: 1_000,
        },
      });

      const connection = await store().getConnection('acme-1');

      expect(documents.commandCalls(GetCommand)[0]?.args[0].input).toEqual({
        TableName: TABLE,
        Key: { pk: 'CONNECTION#acme-1', sk: 'CONNECTION' },
        ConsistentRead: true,
      });
      expect(connection).toEqual({
        connectionId: 'acme-1',
        status: 'active',
        grant: 'registration_code',
        accessToken: bytes(1),
        accessTokenExpiresAt: 5_000,
        refreshToken: bytes(2),
        registrationCode: bytes(3),
        email: 'user@example.com',
        profileId: 42,
        userId: 7,
        scope: 'transfers',
        generation: 3,
        version: 9,
        nextRefreshAt: 4_000,
        lastRefreshAt: 1_000,
        lastError: { code: 'server_error', message: 'Wise answered 503.', at: 900 },
        failureCount: 1,
        lease: { owner: 'worker-1', expiresAt: 1_500 },
        createdAt: 100,
        updatedAt: 1_000,
      });
    });

    it('returns undefined for an unknown connection', async () => {
      documents.on(GetCommand).resolves({});

      await expect(store().getConnection('nobody')).resolves.toBeUndefined();
    });
  });

  describe('getClientToken', () => {
    it('reads the client item', async () => {
      documents.on(GetCommand).resolves({
        Item: {
          pk: 'CLIENT',
          sk: 'CLIENT',
          generation: 1,
          version: 2,
          failureCount: 0,
          createdAt: 1,
          updatedAt: 2,
        },
      });

      const token = await store().getClientToken();

      expect(documents.commandCalls(GetCommand)[0]?.args[0].input).toEqual({
        TableName: TABLE,
        Key: { pk: 'CLIENT', sk: 'CLIENT' },
        ConsistentRead: true,
      });
      expect(token).toEqual({ generation: 1, version: 2, failureCount: 0, createdAt: 1, updatedAt: 2 });
    });
  });

  describe('saveConnection', () => {
    const connection: NewConnection = {
      connectionId: 'acme-1',
      status: 'active',
      grant: 'authorization_code',
      accessToken: bytes(1),
      accessTokenExpiresAt: 2_000,
      scope: 'transfers',
      nextRefreshAt: 1_800,
      lastRefreshAt: 1_000,
      refreshToken: bytes(2),
      refreshTokenExpiresAt: 9_000,
      profileId: 42,
      userId: 7,
    };
    const expectedUpdate =
      'SET #connectionId = :connectionId, #status = :status, #grant = :grant, #accessToken = :accessToken, ' +
      '#accessTokenExpiresAt = :accessTokenExpiresAt, #scope = :scope, #lastRefreshAt = :lastRefreshAt, ' +
      '#refreshToken = :refreshToken, #refreshTokenExpiresAt = :refreshTokenExpiresAt, ' +
      '#profileId = :profileId, #userId = :userId, #dueShard = :dueShard, #dueAt = :dueAt, ' +
      '#generation = if_not_exists(#generation, :zero) + :one, #version = if_not_exists(#version, :zero) + :one, ' +
      '#failureCount = :failureCount, #createdAt = if_not_exists(#createdAt, :now), #updatedAt = :now ' +
      'REMOVE #registrationCode, #email, #leaseOwner, #leaseExpiresAt, #lastError, #ttl';
    const expectedNames = names(
      'connectionId',
      'status',
      'grant',
      'accessToken',
      'accessTokenExpiresAt',
      'scope',
      'lastRefreshAt',
      'refreshToken',
      'refreshTokenExpiresAt',
      'registrationCode',
      'email',
      'profileId',
      'userId',
      'dueShard',
      'dueAt',
      'generation',
      'version',
      'failureCount',
      'createdAt',
      'updatedAt',
      'leaseOwner',
      'leaseExpiresAt',
      'lastError',
      'ttl',
    );
    const expectedValues = {
      ':connectionId': 'acme-1',
      ':status': 'active',
      ':grant': 'authorization_code',
      ':accessToken': bytes(1),
      ':accessTokenExpiresAt': 2_000,
      ':scope': 'transfers',
      ':lastRefreshAt': 1_000,
      ':refreshToken': bytes(2),
      ':refreshTokenExpiresAt': 9_000,
      ':profileId': 42,
      ':userId': 7,
      ':dueShard': '2',
      ':dueAt': 1_800,
      ':failureCount': 0,
      ':zero': 0,
      ':one': 1,
      ':now': 1_000,
    };

    it('creates a new connection only where none exists, growing generation and version from zero', async () => {
      documents.on(UpdateCommand).resolves({
        Attributes: {
          pk: 'CONNECTION#acme-1',
          sk: 'CONNECTION',
          ...connection,
          dueShard: '2',
          dueAt: 1_800,
          generation: 1,
          version: 1,
          failureCount: 0,
          createdAt: 1_000,
          updatedAt: 1_000,
        },
      });

      const saved = await store().saveConnection(connection, { expectedVersion: undefined, now: 1_000 });

      expect(documents.commandCalls(UpdateCommand)[0]?.args[0].input).toEqual({
        TableName: TABLE,
        Key: { pk: 'CONNECTION#acme-1', sk: 'CONNECTION' },
        UpdateExpression: expectedUpdate,
        ConditionExpression: 'attribute_not_exists(pk)',
        ExpressionAttributeNames: expectedNames,
        ExpressionAttributeValues: expectedValues,
        ReturnValues: 'ALL_NEW',
      });
      const { nextRefreshAt: _, ...stored } = connection;
      expect(saved).toEqual({
        ...stored,
        nextRefreshAt: 1_800,
        generation: 1,
        version: 1,
        failureCount: 0,
        createdAt: 1_000,
        updatedAt: 1_000,
      });
    });

    it('replaces an existing connection only at the expected version', async () => {
      documents.on(UpdateCommand).resolves({ Attributes: { connectionId: 'acme-1', status: 'active' } });

      await store().saveConnection(connection, { expectedVersion: 4, now: 1_000 });

      expect(documents.commandCalls(UpdateCommand)[0]?.args[0].input).toEqual({
        TableName: TABLE,
        Key: { pk: 'CONNECTION#acme-1', sk: 'CONNECTION' },
        UpdateExpression: expectedUpdate,
        ConditionExpression: '#version = :expectedVersion',
        ExpressionAttributeNames: expectedNames,
        ExpressionAttributeValues: { ...expectedValues, ':expectedVersion': 4 },
        ReturnValues: 'ALL_NEW',
      });
    });

    it('leaves the due index when the grant gives no next refresh', async () => {
      documents.on(UpdateCommand).resolves({ Attributes: { connectionId: 'acme-1', status: 'active' } });
      const { nextRefreshAt: _, ...withoutRefresh } = connection;

      await store().saveConnection(withoutRefresh, { expectedVersion: undefined, now: 1_000 });

      const input = documents.commandCalls(UpdateCommand)[0]?.args[0].input;
      expect(input?.UpdateExpression).toContain('REMOVE #registrationCode, #email, #dueShard, #dueAt,');
      expect(input?.ExpressionAttributeValues).not.toHaveProperty(':dueShard');
      expect(input?.ExpressionAttributeValues).not.toHaveProperty(':dueAt');
    });

    it('returns undefined when the version moved on (a concurrent grant won)', async () => {
      documents.on(UpdateCommand).rejects(lostCondition());

      await expect(
        store().saveConnection(connection, { expectedVersion: 4, now: 1_000 }),
      ).resolves.toBeUndefined();
    });
  });

  describe('disconnect', () => {
    it('destroys the tokens and the personal data and leaves a tombstone that expires after the tombstone days', async () => {
      documents
        .on(UpdateCommand)
        .resolves({ Attributes: { connectionId: 'acme-1', status: 'disconnected' } });

      const disconnected = await store({ tombstoneDays: 2 }).disconnect('acme-1', { now: 1_700_000_000_900 });

      expect(disconnected).toBe(true);
      expect(documents.commandCalls(UpdateCommand)[0]?.args[0].input).toEqual({
        TableName: TABLE,
        Key: { pk: 'CONNECTION#acme-1', sk: 'CONNECTION' },
        UpdateExpression:
          'SET #status = :status, #version = #version + :one, #updatedAt = :updatedAt, #ttl = :ttl ' +
          'REMOVE #accessToken, #refreshToken, #registrationCode, #email, #userId, #profileId, ' +
          '#dueShard, #dueAt, #leaseOwner, #leaseExpiresAt',
        ConditionExpression: 'attribute_exists(pk) AND #status <> :disconnected',
        ExpressionAttributeNames: names(
          'status',
          'version',
          'updatedAt',
          'ttl',
          'accessToken',
          'refreshToken',
          'registrationCode',
          'email',
          'userId',
          'profileId',
          'dueShard',
          'dueAt',
          'leaseOwner',
          'leaseExpiresAt',
        ),
        ExpressionAttributeValues: {
          ':status': 'disconnected',
          ':updatedAt': 1_700_000_000_900,
          ':ttl': 1_700_000_000 + 2 * 86_400,
          ':one': 1,
          ':disconnected': 'disconnected',
        },
        ReturnValues: 'ALL_OLD',
      });
    });

    it('returns false when there is no live connection', async () => {
      documents.on(UpdateCommand).rejects(lostCondition());

      await expect(store().disconnect('acme-1', { now: 1 })).resolves.toBe(false);
    });
  });

  describe('listConnections', () => {
    const item = (connectionId: string, status: string) => ({
      pk: `CONNECTION#${connectionId}`,
      sk: 'CONNECTION',
      connectionId,
      status,
      grant: 'authorization_code',
      profileId: 42,
      accessTokenExpiresAt: 5_000,
      dueAt: 4_000,
      lastRefreshAt: 1_000,
    });
    const indexKey = (connectionId: string, status: string) => ({
      pk: `CONNECTION#${connectionId}`,
      sk: 'CONNECTION',
      status,
      connectionId,
    });
    const validation = () =>
      Object.assign(new Error('The provided starting key is invalid'), { name: 'ValidationException' });

    it('queries the status index for one status and prefix and says where it stopped', async () => {
      documents.on(QueryCommand).resolves({
        Items: [item('acme-a', 'needs_reauth'), item('acme-b', 'needs_reauth')],
        LastEvaluatedKey: indexKey('acme-b', 'needs_reauth'),
      });

      const page = await store().listConnections({ status: 'needs_reauth', prefix: 'acme-', limit: 2 });

      expect(documents.commandCalls(QueryCommand).map((call) => call.args[0].input)).toEqual([
        {
          TableName: TABLE,
          IndexName: 'connections-by-status',
          KeyConditionExpression: '#status = :status AND begins_with(#connectionId, :prefix)',
          ExpressionAttributeNames: { '#status': 'status', '#connectionId': 'connectionId' },
          ExpressionAttributeValues: { ':status': 'needs_reauth', ':prefix': 'acme-' },
          Limit: 2,
        },
      ]);
      expect(page).toEqual({
        connections: [
          {
            connectionId: 'acme-a',
            status: 'needs_reauth',
            grant: 'authorization_code',
            profileId: 42,
            accessTokenExpiresAt: 5_000,
            nextRefreshAt: 4_000,
            lastRefreshAt: 1_000,
          },
          expect.objectContaining({ connectionId: 'acme-b' }),
        ],
        lastEvaluatedId: 'acme-b',
      });
    });

    it('reads the whole status without a key condition on the id when the prefix is empty', async () => {
      documents.on(QueryCommand).resolves({ Items: [item('a', 'active')] });

      const page = await store().listConnections({ status: 'active', prefix: '', limit: 5 });

      expect(documents.commandCalls(QueryCommand)[0]?.args[0].input).toMatchObject({
        KeyConditionExpression: '#status = :status',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':status': 'active' },
      });
      expect(page).toEqual({ connections: [expect.objectContaining({ connectionId: 'a' })] });
    });

    it('continues after a connection id with the index key it builds itself', async () => {
      documents.on(QueryCommand).resolves({ Items: [item('acme-c', 'active')] });

      await store().listConnections({ status: 'active', prefix: 'acme-', limit: 1, startAfter: 'acme-b' });

      expect(documents.commandCalls(QueryCommand)[0]?.args[0].input.ExclusiveStartKey).toEqual(
        indexKey('acme-b', 'active'),
      );
    });

    it.each([
      ['empty', ''],
      ['outside the prefix', 'beta-1'],
      ['no connection id', 'acme-1 x'],
    ])(
      'refuses a start position that is %s with InvalidRequestError before any query',
      async (_, startAfter) => {
        const listing = store().listConnections({ status: 'active', prefix: 'acme-', limit: 1, startAfter });

        await expect(listing).rejects.toBeInstanceOf(InvalidRequestError);
        await expect(listing).rejects.toMatchObject({ field: 'nextToken' });
        expect(documents.commandCalls(QueryCommand)).toHaveLength(0);
      },
    );

    it('turns a ValidationException of the listing into InvalidRequestError', async () => {
      documents.on(QueryCommand).rejects(validation());

      const listing = store().listConnections({ status: 'active', prefix: '', limit: 1, startAfter: 'a' });

      await expect(listing).rejects.toBeInstanceOf(InvalidRequestError);
      await expect(listing).rejects.toThrow(/nextToken/);
    });

    it('passes on any other error', async () => {
      documents.on(QueryCommand).rejects(new Error('throttled'));

      await expect(store().listConnections({ status: 'active', prefix: '', limit: 1 })).rejects.toThrow(
        'throttled',
      );
    });

    it('rejects a page size below 1 and a status that is not listed', async () => {
      await expect(store().listConnections({ status: 'active', prefix: '', limit: 0 })).rejects.toMatchObject(
        {
          field: 'limit',
        },
      );
      await expect(
        store().listConnections({ status: 'disconnected' as 'active', prefix: '', limit: 1 }),
      ).rejects.toMatchObject({ field: 'status' });
    });
  });

  describe('listDue', () => {
    it('queries every possible shard of the due index, whatever the configured count', async () => {
      documents.on(QueryCommand).resolves({ Items: [] });

      await store({ shards: 1 }).listDue({ now: 5_000, limit: 3 });

      const shards = documents
        .commandCalls(QueryCommand)
        .map((call) => call.args[0].input.ExpressionAttributeValues?.[':shard']);
      expect(shards).toEqual(Array.from({ length: MAX_REFRESH_SHARDS }, (_, shard) => String(shard)));
    });

    it('returns the most overdue first, at most limit', async () => {
      documents
        .on(QueryCommand)
        .resolves({ Items: [] })
        .on(QueryCommand, { ExpressionAttributeValues: { ':shard': '0', ':now': 5_000 } })
        .resolves({ Items: [{ pk: 'CONNECTION#c', sk: 'CONNECTION', dueShard: '0', dueAt: 3_000 }] })
        .on(QueryCommand, { ExpressionAttributeValues: { ':shard': '1', ':now': 5_000 } })
        .resolves({
          Items: [
            { pk: 'CLIENT', sk: 'CLIENT', dueShard: '1', dueAt: 1_000 },
            { pk: 'CONNECTION#b', sk: 'CONNECTION', dueShard: '1', dueAt: 4_000 },
          ],
        })
        .on(QueryCommand, { ExpressionAttributeValues: { ':shard': '2', ':now': 5_000 } })
        .resolves({ Items: [{ pk: 'CONNECTION#a', sk: 'CONNECTION', dueShard: '2', dueAt: 2_000 }] });

      const due = await store({ shards: 3 }).listDue({ now: 5_000, limit: 3 });

      expect(
        documents
          .commandCalls(QueryCommand)
          .map((call) => call.args[0].input)
          .slice(0, 3),
      ).toEqual(
        ['0', '1', '2'].map((shard) => ({
          TableName: TABLE,
          IndexName: 'refresh-due',
          KeyConditionExpression: '#dueShard = :shard AND #dueAt <= :now',
          ExpressionAttributeNames: { '#dueShard': 'dueShard', '#dueAt': 'dueAt' },
          ExpressionAttributeValues: { ':shard': shard, ':now': 5_000 },
          Limit: 3,
        })),
      );
      expect(due).toEqual([
        { key: { kind: 'client' }, nextRefreshAt: 1_000 },
        { key: { kind: 'connection', connectionId: 'a' }, nextRefreshAt: 2_000 },
        { key: { kind: 'connection', connectionId: 'c' }, nextRefreshAt: 3_000 },
      ]);
    });

    it('asks nothing for a limit below 1', async () => {
      await expect(store().listDue({ now: 1, limit: 0 })).resolves.toEqual([]);
      expect(documents.commandCalls(QueryCommand)).toHaveLength(0);
    });
  });

  describe('acquireLease', () => {
    it('takes a free or expired lease on an active connection', async () => {
      documents.on(UpdateCommand).resolves({
        Attributes: {
          connectionId: 'acme-1',
          status: 'active',
          grant: 'authorization_code',
          generation: 2,
          version: 5,
          failureCount: 0,
          leaseOwner: 'worker-1',
          leaseExpiresAt: 31_000,
          createdAt: 1,
          updatedAt: 2,
        },
      });

      const leased = await store().acquireLease(
        { kind: 'connection', connectionId: 'acme-1' },
        { owner: 'worker-1', now: 1_000, leaseMs: 30_000 },
      );

      expect(documents.commandCalls(UpdateCommand)[0]?.args[0].input).toEqual({
        TableName: TABLE,
        Key: { pk: 'CONNECTION#acme-1', sk: 'CONNECTION' },
        UpdateExpression: 'SET #leaseOwner = :leaseOwner, #leaseExpiresAt = :leaseExpiresAt',
        ConditionExpression:
          '#status = :active AND (attribute_not_exists(#leaseExpiresAt) OR #leaseExpiresAt < :now)',
        ExpressionAttributeNames: names('leaseOwner', 'leaseExpiresAt', 'status'),
        ExpressionAttributeValues: {
          ':leaseOwner': 'worker-1',
          ':leaseExpiresAt': 31_000,
          ':now': 1_000,
          ':active': 'active',
        },
        ReturnValues: 'ALL_NEW',
      });
      expect(leased).toMatchObject({
        connectionId: 'acme-1',
        lease: { owner: 'worker-1', expiresAt: 31_000 },
      });
    });

    it('creates the client token item on its first lease with zero generation, version and failures', async () => {
      documents.on(UpdateCommand).resolves({
        Attributes: {
          pk: 'CLIENT',
          sk: 'CLIENT',
          leaseOwner: 'worker-1',
          leaseExpiresAt: 31_000,
          generation: 0,
          version: 0,
          failureCount: 0,
          createdAt: 1_000,
          updatedAt: 1_000,
        },
      });

      const leased = await store().acquireLease(
        { kind: 'client' },
        { owner: 'worker-1', now: 1_000, leaseMs: 30_000 },
      );

      expect(documents.commandCalls(UpdateCommand)[0]?.args[0].input).toEqual({
        TableName: TABLE,
        Key: { pk: 'CLIENT', sk: 'CLIENT' },
        UpdateExpression:
          'SET #leaseOwner = :leaseOwner, #leaseExpiresAt = :leaseExpiresAt, ' +
          '#generation = if_not_exists(#generation, :zero), #version = if_not_exists(#version, :zero), ' +
          '#failureCount = if_not_exists(#failureCount, :zero), #createdAt = if_not_exists(#createdAt, :now), ' +
          '#updatedAt = if_not_exists(#updatedAt, :now)',
        ConditionExpression: '(attribute_not_exists(#leaseExpiresAt) OR #leaseExpiresAt < :now)',
        ExpressionAttributeNames: names(
          'leaseOwner',
          'leaseExpiresAt',
          'generation',
          'version',
          'failureCount',
          'createdAt',
          'updatedAt',
        ),
        ExpressionAttributeValues: {
          ':leaseOwner': 'worker-1',
          ':leaseExpiresAt': 31_000,
          ':now': 1_000,
          ':zero': 0,
        },
        ReturnValues: 'ALL_NEW',
      });
      expect(leased).toEqual({
        generation: 0,
        version: 0,
        failureCount: 0,
        lease: { owner: 'worker-1', expiresAt: 31_000 },
        createdAt: 1_000,
        updatedAt: 1_000,
      });
    });

    it('returns undefined when another owner holds the lease or the connection is not active', async () => {
      documents.on(UpdateCommand).rejects(lostCondition());

      await expect(
        store().acquireLease(
          { kind: 'connection', connectionId: 'acme-1' },
          { owner: 'w', now: 1, leaseMs: 1 },
        ),
      ).resolves.toBeUndefined();
    });
  });

  describe('completeRefresh', () => {
    it('writes the new tokens, grows generation and version, re-indexes the due time and frees the lease', async () => {
      documents.on(UpdateCommand).resolves({
        Attributes: { connectionId: 'acme-1', status: 'active', grant: 'authorization_code', generation: 3 },
      });

      const refreshed = await store().completeRefresh(
        { kind: 'connection', connectionId: 'acme-1' },
        {
          owner: 'worker-1',
          now: 1_000,
          update: {
            accessToken: bytes(4),
            accessTokenExpiresAt: 44_000,
            scope: 'transfers',
            nextRefreshAt: 35_000,
            lastRefreshAt: 1_000,
            refreshToken: bytes(5),
          },
        },
      );

      expect(documents.commandCalls(UpdateCommand)[0]?.args[0].input).toEqual({
        TableName: TABLE,
        Key: { pk: 'CONNECTION#acme-1', sk: 'CONNECTION' },
        UpdateExpression:
          'SET #accessToken = :accessToken, #accessTokenExpiresAt = :accessTokenExpiresAt, #scope = :scope, ' +
          '#lastRefreshAt = :lastRefreshAt, #refreshToken = :refreshToken, #generation = #generation + :one, ' +
          '#version = #version + :one, #dueShard = :dueShard, #dueAt = :dueAt, #failureCount = :failureCount, ' +
          '#updatedAt = :updatedAt REMOVE #refreshTokenExpiresAt, #leaseOwner, #leaseExpiresAt, #lastError',
        ConditionExpression: '#leaseOwner = :owner AND #status = :active',
        ExpressionAttributeNames: names(
          'accessToken',
          'accessTokenExpiresAt',
          'scope',
          'lastRefreshAt',
          'refreshToken',
          'refreshTokenExpiresAt',
          'generation',
          'version',
          'dueShard',
          'dueAt',
          'failureCount',
          'updatedAt',
          'leaseOwner',
          'leaseExpiresAt',
          'lastError',
          'status',
        ),
        ExpressionAttributeValues: {
          ':accessToken': bytes(4),
          ':accessTokenExpiresAt': 44_000,
          ':scope': 'transfers',
          ':lastRefreshAt': 1_000,
          ':refreshToken': bytes(5),
          ':dueShard': '2',
          ':dueAt': 35_000,
          ':failureCount': 0,
          ':updatedAt': 1_000,
          ':one': 1,
          ':owner': 'worker-1',
          ':active': 'active',
        },
        ReturnValues: 'ALL_NEW',
      });
      expect(refreshed).toMatchObject({ connectionId: 'acme-1', generation: 3 });
    });

    it('keeps the stored refresh token and scope when Wise returned none', async () => {
      documents.on(UpdateCommand).resolves({ Attributes: { generation: 2 } });

      await store().completeRefresh(
        { kind: 'connection', connectionId: 'acme-1' },
        {
          owner: 'worker-1',
          now: 1_000,
          update: {
            accessToken: bytes(4),
            accessTokenExpiresAt: 44_000,
            nextRefreshAt: 35_000,
            lastRefreshAt: 1_000,
          },
        },
      );

      const expression = documents.commandCalls(UpdateCommand)[0]?.args[0].input.UpdateExpression ?? '';
      expect(expression).not.toMatch(/#refreshToken|#refreshTokenExpiresAt|#scope/);
    });

    it('conditions the client token on the lease owner alone and never writes a refresh token there', async () => {
      documents.on(UpdateCommand).resolves({ Attributes: { generation: 2 } });

      await store().completeRefresh(
        { kind: 'client' },
        {
          owner: 'worker-1',
          now: 1_000,
          update: {
            accessToken: bytes(4),
            accessTokenExpiresAt: 44_000,
            nextRefreshAt: 35_000,
            lastRefreshAt: 1_000,
            refreshToken: bytes(5),
          },
        },
      );

      const input = documents.commandCalls(UpdateCommand)[0]?.args[0].input;
      expect(input?.Key).toEqual({ pk: 'CLIENT', sk: 'CLIENT' });
      expect(input?.ConditionExpression).toBe('#leaseOwner = :owner');
      expect(input?.ExpressionAttributeValues).toMatchObject({ ':dueShard': '2', ':owner': 'worker-1' });
      expect(input?.UpdateExpression).not.toContain('#refreshToken');
    });

    it('returns undefined when the caller no longer holds the lease', async () => {
      documents.on(UpdateCommand).rejects(lostCondition());

      const refreshed = await store().completeRefresh(
        { kind: 'client' },
        {
          owner: 'worker-1',
          now: 1,
          update: { accessToken: bytes(1), accessTokenExpiresAt: 2, nextRefreshAt: 2, lastRefreshAt: 1 },
        },
      );

      expect(refreshed).toBeUndefined();
    });
  });

  describe('releaseLease', () => {
    it('removes only the lease, and only the owner may', async () => {
      documents.on(UpdateCommand).resolves({ Attributes: {} });

      const released = await store().releaseLease(
        { kind: 'connection', connectionId: 'acme-1' },
        { owner: 'worker-1' },
      );

      expect(released).toBe(true);
      expect(documents.commandCalls(UpdateCommand)[0]?.args[0].input).toEqual({
        TableName: TABLE,
        Key: { pk: 'CONNECTION#acme-1', sk: 'CONNECTION' },
        UpdateExpression: 'REMOVE #leaseOwner, #leaseExpiresAt',
        ConditionExpression: '#leaseOwner = :owner',
        ExpressionAttributeNames: names('leaseOwner', 'leaseExpiresAt'),
        ExpressionAttributeValues: { ':owner': 'worker-1' },
        ReturnValues: 'ALL_NEW',
      });
    });

    it('returns false for anyone but the owner', async () => {
      documents.on(UpdateCommand).rejects(lostCondition());

      await expect(store().releaseLease({ kind: 'client' }, { owner: 'worker-2' })).resolves.toBe(false);
    });
  });

  describe('failRefresh', () => {
    const lastError = { code: 'server_error', message: 'Wise answered 503.', at: 1_000 };

    it('records a transient failure, schedules the retry in the due index and frees the lease', async () => {
      documents.on(UpdateCommand).resolves({ Attributes: {} });

      const recorded = await store().failRefresh(
        { kind: 'connection', connectionId: 'acme-1' },
        { owner: 'worker-1', now: 1_000, update: { lastError, failureCount: 2, nextRefreshAt: 61_000 } },
      );

      expect(recorded).toBe(true);
      expect(documents.commandCalls(UpdateCommand)[0]?.args[0].input).toEqual({
        TableName: TABLE,
        Key: { pk: 'CONNECTION#acme-1', sk: 'CONNECTION' },
        UpdateExpression:
          'SET #lastError = :lastError, #failureCount = :failureCount, #version = #version + :one, ' +
          '#updatedAt = :updatedAt, #dueShard = :dueShard, #dueAt = :dueAt REMOVE #leaseOwner, #leaseExpiresAt',
        ConditionExpression: '#leaseOwner = :owner AND #status = :active',
        ExpressionAttributeNames: names(
          'lastError',
          'failureCount',
          'version',
          'updatedAt',
          'dueShard',
          'dueAt',
          'leaseOwner',
          'leaseExpiresAt',
          'status',
        ),
        ExpressionAttributeValues: {
          ':lastError': lastError,
          ':failureCount': 2,
          ':updatedAt': 1_000,
          ':dueShard': '2',
          ':dueAt': 61_000,
          ':one': 1,
          ':owner': 'worker-1',
          ':active': 'active',
        },
        ReturnValues: 'ALL_NEW',
      });
    });

    it('marks needs_reauth and takes the connection out of the due index', async () => {
      documents.on(UpdateCommand).resolves({ Attributes: {} });

      await store().failRefresh(
        { kind: 'connection', connectionId: 'acme-1' },
        {
          owner: 'worker-1',
          now: 1_000,
          update: {
            lastError: { ...lastError, code: 'invalid_grant' },
            failureCount: 0,
            status: 'needs_reauth',
          },
        },
      );

      const input = documents.commandCalls(UpdateCommand)[0]?.args[0].input;
      expect(input?.UpdateExpression).toBe(
        'SET #lastError = :lastError, #failureCount = :failureCount, #version = #version + :one, ' +
          '#updatedAt = :updatedAt, #status = :status REMOVE #dueShard, #dueAt, #leaseOwner, #leaseExpiresAt',
      );
      expect(input?.ExpressionAttributeValues).toMatchObject({
        ':status': 'needs_reauth',
        ':active': 'active',
      });
    });

    it('refuses to mark the client token needs_reauth', async () => {
      await expect(
        store().failRefresh(
          { kind: 'client' },
          { owner: 'worker-1', now: 1, update: { lastError, failureCount: 0, status: 'needs_reauth' } },
        ),
      ).rejects.toThrow(/client token has no status/);
      expect(documents.commandCalls(UpdateCommand)).toHaveLength(0);
    });

    it('returns false when the caller no longer holds the lease', async () => {
      documents.on(UpdateCommand).rejects(lostCondition());

      await expect(
        store().failRefresh(
          { kind: 'client' },
          { owner: 'worker-1', now: 1, update: { lastError, failureCount: 1, nextRefreshAt: 2 } },
        ),
      ).resolves.toBe(false);
    });
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
