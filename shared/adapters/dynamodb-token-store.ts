import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandOutput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { BrokerError, InvalidRequestError } from '#shared/domain/errors.ts';
import {
  type ClientTokenRecord,
  CONNECTION_ID_PATTERN,
  type ConnectionRecord,
  type ConnectionStatus,
  type ConnectSessionRecord,
  type LastError,
  type RecordKey,
  type RefreshSpending,
  type TokenState,
} from '#shared/domain/records.ts';
import type {
  DueRecord,
  FailureUpdate,
  ListConnectionsOptions,
  ListConnectionsResult,
  ListedConnection,
  NewConnection,
  PendingCompletion,
  TokenStore,
  TokenUpdate,
} from '#shared/ports/token-store.ts';
import { reportUnavailable } from './aws-unavailable.ts';

/** The sparse index of refreshable records: partition `dueShard`, sort `dueAt`, keys only. */
export const REFRESH_DUE_INDEX = 'refresh-due';
/** Connections by status: partition `status`, sort `connectionId`, only the status fields projected. */
export const CONNECTIONS_BY_STATUS_INDEX = 'connections-by-status';
/**
 * The attributes the status index copies besides its keys: what a connection's status view shows, and
 * nothing secret or personal (no token, registration code, e-mail or user id).
 */
export const CONNECTIONS_BY_STATUS_ATTRIBUTES = [
  'grant',
  'profileId',
  'accessTokenExpiresAt',
  'dueAt',
  'lastRefreshAt',
  'lastError',
] as const;
/** The most refresh-due shards a deployment may configure; `listDue` always reads all of them. */
export const MAX_REFRESH_SHARDS = 16;

const CLIENT_PK = 'CLIENT';
const CONNECTION_PREFIX = 'CONNECTION#';
const SESSION_PREFIX = 'SESSION#';
const COMPLETION_PREFIX = 'COMPLETION#';
const WISE_USER_PREFIX = 'WISE_USER#';

/**
 * The partition keys (`pk`) of each kind of item, as patterns for IAM's `dynamodb:LeadingKeys`: the
 * deployment limits each function to the items it reads and writes.
 */
export const ITEM_PARTITION_KEYS = {
  connection: `${CONNECTION_PREFIX}*`,
  client: CLIENT_PK,
  connectSession: `${SESSION_PREFIX}*`,
  pendingCompletion: `${COMPLETION_PREFIX}*`,
  wiseUser: `${WISE_USER_PREFIX}*`,
} as const;
const DAY_SECONDS = 86_400;
const LISTED_STATUSES: readonly string[] = ['active', 'needs_reauth'];

type Item = Record<string, unknown>;
type Key = { pk: string; sk: string };

/** What {@link DynamoDbTokenStore} is built from. */
export interface DynamoDbTokenStoreOptions {
  /** A client built by the composition root (credentials, region or local endpoint already set). */
  client: DynamoDBClient;
  tableName: string;
  /**
   * Partitions of the refresh-due index that writes spread over, 1 to {@link MAX_REFRESH_SHARDS}. It may be
   * raised or lowered: a record keeps the shard it was written with until its next write, and `listDue`
   * reads every possible shard.
   */
  shards?: number;
  /** How long a disconnected connection's tombstone is kept before the table's TTL removes it. */
  tombstoneDays?: number;
}

/**
 * The broker's single DynamoDB table behind the `TokenStore` port. Every write is one conditional write on
 * one item (the embedded engine used locally has no transactions), and a lost condition is a value.
 *
 * Items: connections (`CONNECTION#<id>` / `CONNECTION`), the client token (`CLIENT` / `CLIENT`) and
 * connect sessions (`SESSION#<hash of the state>` / `SESSION`, with `ttl`) and connections waiting for
 * their completion code (`COMPLETION#<hash of the code>` / `COMPLETION`, with `ttl`). A record's next refresh is stored as
 * `dueAt` beside `dueShard` only while it is refreshable, which keeps the `refresh-due` index sparse.
 */
export class DynamoDbTokenStore implements TokenStore {
  readonly #documents: DynamoDBDocumentClient;
  readonly #tableName: string;
  readonly #shards: number;
  readonly #tombstoneSeconds: number;

  constructor(options: DynamoDbTokenStoreOptions) {
    const shards = options.shards ?? 4;
    if (!Number.isInteger(shards) || shards < 1 || shards > MAX_REFRESH_SHARDS) {
      throw new BrokerError(
        `The refresh-due index needs a whole number of shards of at least 1 and at most ${MAX_REFRESH_SHARDS}, not ${shards}.`,
      );
    }
    reportUnavailable(options.client, 'DynamoDB');
    this.#documents = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.#tableName = options.tableName;
    this.#shards = shards;
    this.#tombstoneSeconds = Math.round((options.tombstoneDays ?? 30) * DAY_SECONDS);
  }

  async putConnectSession(session: ConnectSessionRecord): Promise<void> {
    const item: Item = {
      ...sessionKey(session.stateHash),
      connectionId: session.connectionId,
      createdBy: session.createdBy,
      expiresAt: session.expiresAt,
      createdAt: session.createdAt,
      ttl: Math.ceil(session.expiresAt / 1000),
    };
    if (session.returnUrl !== undefined) item.returnUrl = session.returnUrl;
    if (session.browserHash !== undefined) item.browserHash = session.browserHash;
    const written = await this.#conditional(
      this.#documents.send(
        new PutCommand({
          TableName: this.#tableName,
          Item: item,
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    if (!written) {
      // A state is random and single-use; never overwrite one that is already waiting for its callback.
      throw new BrokerError(
        'A connect session with the same state already exists; create the session again.',
      );
    }
  }

  async startConnectSession(
    stateHash: string,
    options: { browserHash: string; now: number },
  ): Promise<ConnectSessionRecord | undefined> {
    const output = await this.#conditional(
      this.#documents.send(
        new UpdateCommand({
          TableName: this.#tableName,
          Key: sessionKey(stateHash),
          UpdateExpression: 'SET browserHash = :browserHash',
          ConditionExpression:
            'attribute_exists(pk) AND attribute_not_exists(browserHash) AND expiresAt > :now',
          ExpressionAttributeValues: { ':browserHash': options.browserHash, ':now': options.now },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return output?.Attributes ? toSession(output.Attributes) : undefined;
  }

  async consumeConnectSession(
    stateHash: string,
    options: { browserHash: string },
  ): Promise<ConnectSessionRecord | undefined> {
    const output = await this.#conditional(
      this.#documents.send(
        new DeleteCommand({
          TableName: this.#tableName,
          Key: sessionKey(stateHash),
          ConditionExpression: 'attribute_exists(pk) AND browserHash = :browserHash',
          ExpressionAttributeValues: { ':browserHash': options.browserHash },
          ReturnValues: 'ALL_OLD',
        }),
      ),
    );
    return output?.Attributes ? toSession(output.Attributes) : undefined;
  }

  async putPendingCompletion(pending: PendingCompletion): Promise<void> {
    const written = await this.#conditional(
      this.#documents.send(
        new PutCommand({
          TableName: this.#tableName,
          Item: {
            ...completionKey(pending.codeHash),
            connectionId: pending.connection.connectionId,
            // Kept as one map: no top-level status or due time, so neither index ever lists it.
            connection: pending.connection,
            expiresAt: pending.expiresAt,
            createdAt: pending.createdAt,
            ttl: Math.ceil(pending.expiresAt / 1000),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    if (!written) {
      throw new BrokerError('A completion code collided with a waiting one; connect the account again.');
    }
  }

  async consumePendingCompletion(codeHash: string): Promise<PendingCompletion | undefined> {
    const output = await this.#conditional(
      this.#documents.send(
        new DeleteCommand({
          TableName: this.#tableName,
          Key: completionKey(codeHash),
          ConditionExpression: 'attribute_exists(pk)',
          ReturnValues: 'ALL_OLD',
        }),
      ),
    );
    const item = output?.Attributes;
    if (!item) return undefined;
    return {
      codeHash,
      connection: item.connection as NewConnection,
      expiresAt: item.expiresAt as number,
      createdAt: item.createdAt as number,
    };
  }

  /**
   * A tombstone is returned until DynamoDB's TTL actually deletes it (which may lag its `ttl` by days), so
   * a new grant can always name the version it replaces.
   */
  async getConnection(connectionId: string): Promise<ConnectionRecord | undefined> {
    const { item, fence } = await this.#readWithFence(connectionKey(connectionId));
    return item ? withFence(toConnection(item), fence) : undefined;
  }

  async getFence(key: RecordKey): Promise<number | undefined> {
    const output = await this.#documents.send(
      new GetCommand({ TableName: this.#tableName, Key: fenceKey(key), ConsistentRead: true }),
    );
    return fenceOf(output.Item);
  }

  async raiseFence(key: RecordKey, generation: number): Promise<void> {
    const update = new ItemUpdate();
    update.set('generation', generation);
    update.condition(
      `attribute_not_exists(${update.name('generation')}) OR ${update.name('generation')} < :generation`,
    );
    // A lost condition: the fence is already as high or higher.
    await this.#update(fenceKey(key), update);
  }

  /** The record's item and its fence in one consistent read (both share the partition key). */
  async #readWithFence(key: Key): Promise<{ item?: Item; fence?: number }> {
    const output = await this.#documents.send(
      new QueryCommand({
        TableName: this.#tableName,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': 'pk' },
        ExpressionAttributeValues: { ':pk': key.pk },
        ConsistentRead: true,
      }),
    );
    const items = output.Items ?? [];
    const found: { item?: Item; fence?: number } = {};
    const item = items.find((candidate) => candidate.sk === key.sk);
    if (item) found.item = item;
    const fence = fenceOf(items.find((candidate) => candidate.sk === FENCE_SK));
    if (fence !== undefined) found.fence = fence;
    return found;
  }

  async listConnections(options: ListConnectionsOptions): Promise<ListConnectionsResult> {
    const { status, prefix, limit, startAfter } = options;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new InvalidRequestError('The page size (limit) must be a whole number of at least 1.', {
        field: 'limit',
      });
    }
    if (!LISTED_STATUSES.includes(status)) {
      throw new InvalidRequestError('Only active and needs_reauth connections are listed.', {
        field: 'status',
      });
    }
    if (
      startAfter !== undefined &&
      (!CONNECTION_ID_PATTERN.test(startAfter) || !startAfter.startsWith(prefix))
    ) {
      throw invalidListPosition();
    }
    const names: Record<string, string> = { '#status': 'status' };
    const values: Record<string, unknown> = { ':status': status };
    let condition = '#status = :status';
    // DynamoDB refuses begins_with on an empty string: no prefix means the whole status.
    if (prefix !== '') {
      condition += ' AND begins_with(#connectionId, :prefix)';
      names['#connectionId'] = 'connectionId';
      values[':prefix'] = prefix;
    }
    let output: QueryCommandOutput;
    try {
      output = await this.#documents.send(
        new QueryCommand({
          TableName: this.#tableName,
          IndexName: CONNECTIONS_BY_STATUS_INDEX,
          KeyConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          Limit: limit,
          // The index key of the connection `startAfter`, rebuilt here: callers never hand in a raw key.
          ...(startAfter === undefined
            ? {}
            : { ExclusiveStartKey: { ...connectionKey(startAfter), status, connectionId: startAfter } }),
        }),
      );
    } catch (error) {
      if (error instanceof Error && error.name === 'ValidationException') {
        throw invalidListPosition(error);
      }
      throw error;
    }
    const connections = (output.Items ?? []).map(toListedConnection);
    const lastEvaluatedId = output.LastEvaluatedKey?.connectionId;
    return typeof lastEvaluatedId === 'string' ? { connections, lastEvaluatedId } : { connections };
  }

  async saveConnection(
    connection: NewConnection,
    options: { expectedVersion: number | undefined; now: number },
  ): Promise<ConnectionRecord | undefined> {
    const key = connectionKey(connection.connectionId);
    const update = new ItemUpdate();
    update.set('connectionId', connection.connectionId);
    update.set('status', 'active');
    update.set('grant', connection.grant);
    for (const attribute of CONNECTION_OPTIONAL_FIELDS) {
      update.setOrRemove(attribute, connection[attribute]);
    }
    this.#setDue(update, key, connection.nextRefreshAt);
    update.set('generation', connection.generation);
    update.setTo('version', `if_not_exists(${update.name('version')}, :zero) + :one`);
    update.set('failureCount', 0);
    update.setTo('createdAt', `if_not_exists(${update.name('createdAt')}, :now)`);
    update.setTo('updatedAt', ':now');
    update.remove('leaseOwner', 'leaseExpiresAt', 'lastError', 'spending', 'ttl');
    update.value('zero', 0);
    update.value('one', 1);
    update.value('now', options.now);
    if (options.expectedVersion === undefined) {
      update.condition('attribute_not_exists(pk)');
    } else {
      // The generation only ever grows: ciphertexts are bound to it.
      update.condition(
        `${update.name('version')} = ${update.value('expectedVersion', options.expectedVersion)} AND ${update.name('generation')} < :generation`,
      );
    }
    const attributes = await this.#update(key, update);
    return attributes ? toConnection(attributes) : undefined;
  }

  async linkWiseUser(userId: number, connectionId: string): Promise<string | undefined> {
    const output = await this.#documents.send(
      new PutCommand({
        TableName: this.#tableName,
        Item: { ...wiseUserKey(userId), connectionId },
        ReturnValues: 'ALL_OLD',
      }),
    );
    const previous = output.Attributes?.connectionId;
    return typeof previous === 'string' && previous !== connectionId ? previous : undefined;
  }

  async markReplaced(
    connectionId: string,
    options: { userId: number; lastError: LastError; now: number },
  ): Promise<boolean> {
    const update = new ItemUpdate();
    update.set('status', 'needs_reauth');
    update.set('lastError', { ...options.lastError });
    update.setTo('version', `${update.name('version')} + :one`);
    update.set('updatedAt', options.now);
    update.remove('dueShard', 'dueAt');
    update.value('one', 1);
    update.condition(
      `${update.name('status')} = ${update.value('active', 'active')} AND ${update.name('userId')} = ${update.value('userId', options.userId)}`,
    );
    return (await this.#update(connectionKey(connectionId), update)) !== undefined;
  }

  async disconnect(connectionId: string, options: { now: number }): Promise<boolean> {
    const before = await this.#tombstone(connectionId, options);
    const userId = before?.userId;
    if (typeof userId === 'number') {
      // The user's link goes with the connection, unless it already points to a newer one.
      await this.#conditional(
        this.#documents.send(
          new DeleteCommand({
            TableName: this.#tableName,
            Key: wiseUserKey(userId),
            ConditionExpression: 'connectionId = :connectionId',
            ExpressionAttributeValues: { ':connectionId': connectionId },
          }),
        ),
      );
    }
    // Above the tombstone's generation: no copy of the live connection is current again. Also when it was
    // a tombstone already, so a disconnect that failed halfway is completed by asking again.
    const generation = before
      ? toConnection(before).generation
      : (await this.getConnection(connectionId))?.generation;
    if (generation !== undefined) await this.raiseFence({ kind: 'connection', connectionId }, generation + 1);
    return before !== undefined;
  }

  /** Turns a live connection into a tombstone; the item as it was before, `undefined` when none was live. */
  async #tombstone(connectionId: string, options: { now: number }): Promise<Item | undefined> {
    const update = new ItemUpdate();
    update.set('status', 'disconnected');
    update.setTo('version', `${update.name('version')} + :one`);
    update.set('updatedAt', options.now);
    update.set('ttl', Math.floor(options.now / 1000) + this.#tombstoneSeconds);
    update.remove(
      'dataKey',
      'accessToken',
      'refreshToken',
      'registrationCode',
      // Personal data has no use once the connection is gone; the tombstone keeps only counters and times.
      'email',
      'userId',
      'profileId',
      'dueShard',
      'dueAt',
      'leaseOwner',
      'leaseExpiresAt',
      'spending',
    );
    update.value('one', 1);
    update.condition(`attribute_exists(pk) AND ${update.name('status')} <> :disconnected`);
    update.value('disconnected', 'disconnected');
    const output = await this.#conditional(
      this.#documents.send(
        new UpdateCommand({
          TableName: this.#tableName,
          Key: connectionKey(connectionId),
          ...update.input(),
          ReturnValues: 'ALL_OLD',
        }),
      ),
    );
    return output === undefined ? undefined : (output.Attributes ?? {});
  }

  async getClientToken(): Promise<ClientTokenRecord | undefined> {
    const { item, fence } = await this.#readWithFence(clientKey());
    return item ? withFence(toTokenState(item), fence) : undefined;
  }

  async listDue(options: { now: number; limit: number }): Promise<DueRecord[]> {
    if (options.limit < 1) return [];
    // Every possible shard, not only `0 .. shards - 1`: records written under a larger shard count stay there.
    const pages = await Promise.all(
      Array.from({ length: MAX_REFRESH_SHARDS }, (_, shard) =>
        this.#documents.send(
          new QueryCommand({
            TableName: this.#tableName,
            IndexName: REFRESH_DUE_INDEX,
            KeyConditionExpression: '#dueShard = :shard AND #dueAt <= :now',
            ExpressionAttributeNames: { '#dueShard': 'dueShard', '#dueAt': 'dueAt' },
            ExpressionAttributeValues: { ':shard': String(shard), ':now': options.now },
            Limit: options.limit,
          }),
        ),
      ),
    );
    const due: DueRecord[] = [];
    for (const page of pages) {
      for (const item of page.Items ?? []) {
        const key = recordKeyOf(String(item.pk));
        if (key && typeof item.dueAt === 'number') due.push({ key, nextRefreshAt: item.dueAt });
      }
    }
    // The most overdue first, so a full sweep never starves the oldest records.
    return due.sort((a, b) => a.nextRefreshAt - b.nextRefreshAt).slice(0, options.limit);
  }

  async acquireLease(
    key: RecordKey,
    options: { owner: string; now: number; leaseMs: number },
  ): Promise<(TokenState & Partial<ConnectionRecord>) | undefined> {
    const update = new ItemUpdate();
    update.set('leaseOwner', options.owner);
    update.set('leaseExpiresAt', options.now + options.leaseMs);
    const leaseFree = `(attribute_not_exists(${update.name('leaseExpiresAt')}) OR ${update.name('leaseExpiresAt')} < :now)`;
    update.value('now', options.now);
    if (key.kind === 'connection') {
      update.condition(`${update.name('status')} = :active AND ${leaseFree}`);
      update.value('active', 'active');
    } else {
      // The client token's item is created by its first lease.
      for (const attribute of ['generation', 'version', 'failureCount'] as const) {
        update.setTo(attribute, `if_not_exists(${update.name(attribute)}, :zero)`);
      }
      for (const attribute of ['createdAt', 'updatedAt'] as const) {
        update.setTo(attribute, `if_not_exists(${update.name(attribute)}, :now)`);
      }
      update.value('zero', 0);
      update.condition(leaseFree);
    }
    const attributes = await this.#update(itemKey(key), update);
    return attributes ? withFence(toLeasedRecord(key, attributes), await this.getFence(key)) : undefined;
  }

  async completeRefresh(
    key: RecordKey,
    options: { owner: string; now: number; update: TokenUpdate },
  ): Promise<(TokenState & Partial<ConnectionRecord>) | undefined> {
    const tokens = options.update;
    const update = new ItemUpdate();
    update.set('dataKey', tokens.dataKey);
    update.set('accessToken', tokens.accessToken);
    update.set('accessTokenExpiresAt', tokens.accessTokenExpiresAt);
    // Wise may leave out what did not change: keep the stored scope and refresh token then.
    if (tokens.scope !== undefined) update.set('scope', tokens.scope);
    update.set('lastRefreshAt', tokens.lastRefreshAt);
    if (key.kind === 'connection' && tokens.refreshToken !== undefined) {
      update.set('refreshToken', tokens.refreshToken);
      update.setOrRemove('refreshTokenExpiresAt', tokens.refreshTokenExpiresAt);
    }
    // Sealed under the old data key, a registration code left behind would no longer open.
    if (key.kind === 'connection') update.setOrRemove('registrationCode', tokens.registrationCode);
    update.set('generation', tokens.generation);
    update.setTo('version', `${update.name('version')} + :one`);
    this.#setDue(update, itemKey(key), tokens.nextRefreshAt);
    update.set('failureCount', 0);
    update.set('updatedAt', options.now);
    update.remove('leaseOwner', 'leaseExpiresAt', 'lastError', 'spending');
    update.value('one', 1);
    this.#leaseHeldBy(update, key, options.owner);
    update.condition(
      `${update.name('generation')} = ${update.value('leasedGeneration', tokens.generation - 1)}`,
    );
    const attributes = await this.#update(itemKey(key), update);
    return attributes ? toLeasedRecord(key, attributes) : undefined;
  }

  async markSpending(
    key: RecordKey,
    options: { owner: string; now: number; spending: RefreshSpending },
  ): Promise<boolean> {
    const update = new ItemUpdate();
    update.set('spending', { ...options.spending });
    update.set('updatedAt', options.now);
    this.#leaseHeldBy(update, key, options.owner);
    return (await this.#update(itemKey(key), update)) !== undefined;
  }

  async claimRejectionCheck(
    key: RecordKey,
    options: { generation: number; now: number; windowMs: number },
  ): Promise<boolean> {
    const update = new ItemUpdate();
    update.set('rejectionCheckedAt', options.now);
    const checkedAt = update.name('rejectionCheckedAt');
    update.condition(
      `${update.name('generation')} = ${update.value('expectedGeneration', options.generation)} AND (attribute_not_exists(${checkedAt}) OR ${checkedAt} <= ${update.value('since', options.now - options.windowMs)})`,
    );
    if (key.kind === 'connection') {
      update.condition(`${update.name('status')} = ${update.value('active', 'active')}`);
    }
    return (await this.#update(itemKey(key), update)) !== undefined;
  }

  async releaseLease(key: RecordKey, options: { owner: string }): Promise<boolean> {
    const update = new ItemUpdate();
    update.remove('leaseOwner', 'leaseExpiresAt');
    update.condition(`${update.name('leaseOwner')} = ${update.value('owner', options.owner)}`);
    return (await this.#update(itemKey(key), update)) !== undefined;
  }

  async failRefresh(
    key: RecordKey,
    options: { owner: string; now: number; update: FailureUpdate },
  ): Promise<boolean> {
    const failure = options.update;
    const update = new ItemUpdate();
    update.set('lastError', { ...failure.lastError });
    update.set('failureCount', failure.failureCount);
    update.setTo('version', `${update.name('version')} + :one`);
    update.set('updatedAt', options.now);
    if (failure.status === 'needs_reauth') {
      if (key.kind !== 'connection') {
        throw new BrokerError(
          'The client token has no status: a failed client-credentials grant cannot need reauthorization.',
        );
      }
      update.set('status', 'needs_reauth');
      update.remove('dueShard', 'dueAt');
    } else if (failure.nextRefreshAt !== undefined) {
      this.#setDue(update, itemKey(key), failure.nextRefreshAt);
    }
    update.remove('leaseOwner', 'leaseExpiresAt');
    if (!failure.keepSpending) update.remove('spending');
    update.value('one', 1);
    this.#leaseHeldBy(update, key, options.owner);
    return (await this.#update(itemKey(key), update)) !== undefined;
  }

  /** `dueAt` and `dueShard` while the record is refreshable; neither otherwise (the index is sparse). */
  #setDue(update: ItemUpdate, key: Key, nextRefreshAt: number | undefined): void {
    if (nextRefreshAt === undefined) {
      update.remove('dueShard', 'dueAt');
    } else {
      update.set('dueShard', dueShardOf(key.pk, this.#shards));
      update.set('dueAt', nextRefreshAt);
    }
  }

  #leaseHeldBy(update: ItemUpdate, key: RecordKey, owner: string): void {
    update.value('owner', owner);
    if (key.kind === 'connection') {
      update.condition(`${update.name('leaseOwner')} = :owner AND ${update.name('status')} = :active`);
      update.value('active', 'active');
    } else {
      update.condition(`${update.name('leaseOwner')} = :owner`);
    }
  }

  async #update(key: Key, update: ItemUpdate): Promise<Item | undefined> {
    const output = await this.#conditional(
      this.#documents.send(new UpdateCommand({ TableName: this.#tableName, Key: key, ...update.input() })),
    );
    return output?.Attributes;
  }

  /** Resolves to `undefined` when the write's condition failed. */
  async #conditional<T>(write: Promise<T>): Promise<T | undefined> {
    try {
      return await write;
    } catch (error) {
      if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return undefined;
      throw error;
    }
  }
}

/** The optional connection fields a new grant writes, or removes when the grant has none. */
const CONNECTION_OPTIONAL_FIELDS = [
  'dataKey',
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
] as const satisfies readonly (keyof NewConnection)[];

/**
 * Builds one UpdateItem's expressions. Every attribute goes through a `#name` placeholder (`status`, `ttl`
 * and others are reserved words), and only the placeholders used are sent, as DynamoDB requires.
 */
class ItemUpdate {
  readonly #sets: string[] = [];
  readonly #removes: string[] = [];
  readonly #conditions: string[] = [];
  readonly #names: Record<string, string> = {};
  readonly #values: Record<string, unknown> = {};

  name(attribute: string): string {
    const placeholder = `#${attribute}`;
    this.#names[placeholder] = attribute;
    return placeholder;
  }

  value(label: string, value: unknown): string {
    const placeholder = `:${label}`;
    this.#values[placeholder] = value;
    return placeholder;
  }

  set(attribute: string, value: unknown): void {
    this.#sets.push(`${this.name(attribute)} = ${this.value(attribute, value)}`);
  }

  /** SET with an expression whose value placeholders the caller adds. */
  setTo(attribute: string, expression: string): void {
    this.#sets.push(`${this.name(attribute)} = ${expression}`);
  }

  setOrRemove(attribute: string, value: unknown): void {
    if (value === undefined) this.remove(attribute);
    else this.set(attribute, value);
  }

  remove(...attributes: string[]): void {
    for (const attribute of attributes) this.#removes.push(this.name(attribute));
  }

  condition(expression: string): void {
    this.#conditions.push(expression);
  }

  input(): Pick<
    UpdateCommandInput,
    | 'UpdateExpression'
    | 'ConditionExpression'
    | 'ExpressionAttributeNames'
    | 'ExpressionAttributeValues'
    | 'ReturnValues'
  > {
    const clauses = [];
    if (this.#sets.length > 0) clauses.push(`SET ${this.#sets.join(', ')}`);
    if (this.#removes.length > 0) clauses.push(`REMOVE ${this.#removes.join(', ')}`);
    return {
      UpdateExpression: clauses.join(' '),
      ConditionExpression: this.#conditions.join(' AND '),
      ExpressionAttributeNames: this.#names,
      ExpressionAttributeValues: this.#values,
      ReturnValues: 'ALL_NEW',
    };
  }
}

/**
 * The refresh-due shard of a record: FNV-1a (32 bit) of its partition key modulo the shard count. Stable
 * across deployments; changing it would strand records in shards nobody reads.
 */
export function dueShardOf(pk: string, shards: number): string {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(pk)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return String(hash % shards);
}

/** The sort key of a record's fence, beside the record under the same partition key. */
const FENCE_SK = 'FENCE';

function fenceKey(key: RecordKey): Key {
  return { pk: itemKey(key).pk, sk: FENCE_SK };
}

function fenceOf(item: Item | undefined): number | undefined {
  return typeof item?.generation === 'number' ? item.generation : undefined;
}

function withFence<T extends TokenState>(record: T, fence: number | undefined): T {
  if (fence !== undefined) record.minimumGeneration = fence;
  return record;
}

function connectionKey(connectionId: string): Key {
  return { pk: `${CONNECTION_PREFIX}${connectionId}`, sk: 'CONNECTION' };
}

function wiseUserKey(userId: number): Key {
  return { pk: `${WISE_USER_PREFIX}${userId}`, sk: 'WISE_USER' };
}

function clientKey(): Key {
  return { pk: CLIENT_PK, sk: 'CLIENT' };
}

function sessionKey(stateHash: string): Key {
  return { pk: `${SESSION_PREFIX}${stateHash}`, sk: 'SESSION' };
}

function completionKey(codeHash: string): Key {
  return { pk: `${COMPLETION_PREFIX}${codeHash}`, sk: 'COMPLETION' };
}

function itemKey(key: RecordKey): Key {
  return key.kind === 'connection' ? connectionKey(key.connectionId) : clientKey();
}

function recordKeyOf(pk: string): RecordKey | undefined {
  if (pk === CLIENT_PK) return { kind: 'client' };
  if (pk.startsWith(CONNECTION_PREFIX)) {
    return { kind: 'connection', connectionId: pk.slice(CONNECTION_PREFIX.length) };
  }
  return undefined;
}

/** A listing position that is no connection id in the range, or one DynamoDB refused. */
function invalidListPosition(cause?: unknown): InvalidRequestError {
  return new InvalidRequestError(
    'The nextToken does not point into this listing; pass the nextToken of the previous page unchanged, or leave it out to start again.',
    { field: 'nextToken', ...(cause === undefined ? {} : { cause }) },
  );
}

function toSession(item: Item): ConnectSessionRecord {
  const session: ConnectSessionRecord = {
    stateHash: (item.pk as string).slice(SESSION_PREFIX.length),
    connectionId: item.connectionId as string,
    createdBy: item.createdBy as string,
    expiresAt: item.expiresAt as number,
    createdAt: item.createdAt as number,
  };
  if (typeof item.returnUrl === 'string') session.returnUrl = item.returnUrl;
  if (typeof item.browserHash === 'string') session.browserHash = item.browserHash;
  return session;
}

function toTokenState(item: Item): TokenState {
  const state: TokenState = {
    generation: (item.generation as number | undefined) ?? 0,
    version: (item.version as number | undefined) ?? 0,
    failureCount: (item.failureCount as number | undefined) ?? 0,
    createdAt: item.createdAt as number,
    updatedAt: item.updatedAt as number,
  };
  if (item.dataKey instanceof Uint8Array) state.dataKey = item.dataKey;
  if (item.accessToken instanceof Uint8Array) state.accessToken = item.accessToken;
  if (typeof item.accessTokenExpiresAt === 'number') state.accessTokenExpiresAt = item.accessTokenExpiresAt;
  if (typeof item.scope === 'string') state.scope = item.scope;
  if (typeof item.dueAt === 'number') state.nextRefreshAt = item.dueAt;
  if (typeof item.lastRefreshAt === 'number') state.lastRefreshAt = item.lastRefreshAt;
  if (isLastError(item.lastError)) state.lastError = { ...item.lastError };
  if (isSpending(item.spending)) state.spending = { ...item.spending };
  if (typeof item.rejectionCheckedAt === 'number') state.rejectionCheckedAt = item.rejectionCheckedAt;
  if (typeof item.leaseOwner === 'string' && typeof item.leaseExpiresAt === 'number') {
    state.lease = { owner: item.leaseOwner, expiresAt: item.leaseExpiresAt };
  }
  return state;
}

function toConnection(item: Item): ConnectionRecord {
  const connection: ConnectionRecord = {
    ...toTokenState(item),
    connectionId: item.connectionId as string,
    status: item.status as ConnectionStatus,
    grant: item.grant as ConnectionRecord['grant'],
  };
  if (item.refreshToken instanceof Uint8Array) connection.refreshToken = item.refreshToken;
  if (typeof item.refreshTokenExpiresAt === 'number') {
    connection.refreshTokenExpiresAt = item.refreshTokenExpiresAt;
  }
  if (item.registrationCode instanceof Uint8Array) connection.registrationCode = item.registrationCode;
  if (typeof item.email === 'string') connection.email = item.email;
  if (typeof item.profileId === 'number') connection.profileId = item.profileId;
  if (typeof item.userId === 'number') connection.userId = item.userId;
  return connection;
}

/** A connection as the status index holds it: its status fields only. */
function toListedConnection(item: Item): ListedConnection {
  const connection: ListedConnection = {
    connectionId: item.connectionId as string,
    status: item.status as ConnectionStatus,
    grant: item.grant as ConnectionRecord['grant'],
  };
  if (typeof item.profileId === 'number') connection.profileId = item.profileId;
  if (typeof item.accessTokenExpiresAt === 'number') {
    connection.accessTokenExpiresAt = item.accessTokenExpiresAt;
  }
  if (typeof item.dueAt === 'number') connection.nextRefreshAt = item.dueAt;
  if (typeof item.lastRefreshAt === 'number') connection.lastRefreshAt = item.lastRefreshAt;
  if (isLastError(item.lastError)) connection.lastError = { ...item.lastError };
  return connection;
}

function toLeasedRecord(key: RecordKey, item: Item): TokenState & Partial<ConnectionRecord> {
  return key.kind === 'connection' ? toConnection(item) : toTokenState(item);
}

function isSpending(value: unknown): value is RefreshSpending {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate.fingerprint === 'string' && typeof candidate.at === 'number';
}

function isLastError(value: unknown): value is { code: string; message: string; at: number } {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return (
    typeof candidate.code === 'string' &&
    typeof candidate.message === 'string' &&
    typeof candidate.at === 'number'
  );
}

/**
 * The table's definition: keys `pk`/`sk`, on-demand billing, the sparse `refresh-due` index and the
 * `connections-by-status` index, which copies only {@link CONNECTIONS_BY_STATUS_ATTRIBUTES}. The CDK stateful stack declares the same keys and indexes; the TTL
 * attribute `ttl` is set there (the embedded engine has no `UpdateTimeToLive`).
 */
export function brokerTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
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
        IndexName: REFRESH_DUE_INDEX,
        KeySchema: [
          { AttributeName: 'dueShard', KeyType: 'HASH' },
          { AttributeName: 'dueAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
      {
        IndexName: CONNECTIONS_BY_STATUS_INDEX,
        KeySchema: [
          { AttributeName: 'status', KeyType: 'HASH' },
          { AttributeName: 'connectionId', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...CONNECTIONS_BY_STATUS_ATTRIBUTES] },
      },
    ],
  };
}

/**
 * Creates the broker's table (tests and the local run) and waits, at most `timeoutMs`, until it and its
 * indexes are active.
 */
export async function createBrokerTable(
  client: DynamoDBClient,
  tableName: string,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  await client.send(new CreateTableCommand(brokerTableDefinition(tableName)));
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let delayMs = 25;
  while (Date.now() < deadline) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const indexesActive = (Table?.GlobalSecondaryIndexes ?? []).every(
      (index) => index.IndexStatus === 'ACTIVE',
    );
    if (Table?.TableStatus === 'ACTIVE' && indexesActive) return;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    delayMs = Math.min(delayMs * 2, 1_000);
  }
  throw new BrokerError(`Table "${tableName}" did not become active in time; check the DynamoDB endpoint.`);
}
