import { InvalidRequestError } from '#shared/domain/errors.ts';
import {
  type ClientTokenRecord,
  CONNECTION_ID_PATTERN,
  type ConnectionRecord,
  type ConnectSessionRecord,
  type LastError,
  type RecordKey,
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

type Stored = TokenState & Partial<ConnectionRecord>;

/**
 * A `TokenStore` in memory for unit tests, with the conditional semantics of the DynamoDB store: a lease
 * is taken only when free or expired (and, for a connection, only while it is active), a refresh's result
 * or failure is written only while its owner holds the lease on an active record, a tombstone is never
 * revived by a late write, and every record handed out is a copy. A listing hands out only the status
 * fields, as the DynamoDB status index does, in the same (code unit) order.
 */
export class InMemoryTokenStore implements TokenStore {
  readonly #connections = new Map<string, ConnectionRecord>();
  readonly #sessions = new Map<string, ConnectSessionRecord>();
  readonly #completions = new Map<string, PendingCompletion>();
  #client: ClientTokenRecord | undefined;
  /** Which connection each Wise user is connected as. */
  readonly #wiseUsers = new Map<number, string>();

  /** Puts a record as it is, bypassing every condition: the arrange step of a test. */
  seedConnection(record: ConnectionRecord): void {
    this.#connections.set(record.connectionId, structuredClone(record));
  }

  seedClientToken(record: ClientTokenRecord): void {
    this.#client = structuredClone(record);
  }

  async putConnectSession(session: ConnectSessionRecord): Promise<void> {
    if (this.#sessions.has(session.stateHash)) throw new Error('A connect session with this state exists.');
    this.#sessions.set(session.stateHash, structuredClone(session));
  }

  async startConnectSession(
    stateHash: string,
    options: { browserHash: string; now: number },
  ): Promise<ConnectSessionRecord | undefined> {
    const session = this.#sessions.get(stateHash);
    if (!session || session.browserHash !== undefined || session.expiresAt <= options.now) return undefined;
    session.browserHash = options.browserHash;
    return structuredClone(session);
  }

  async consumeConnectSession(
    stateHash: string,
    options: { browserHash: string },
  ): Promise<ConnectSessionRecord | undefined> {
    const session = this.#sessions.get(stateHash);
    if (!session || session.browserHash !== options.browserHash) return undefined;
    this.#sessions.delete(stateHash);
    return session;
  }

  async putPendingCompletion(pending: PendingCompletion): Promise<void> {
    if (this.#completions.has(pending.codeHash)) throw new Error('A completion with this code exists.');
    this.#completions.set(pending.codeHash, structuredClone(pending));
  }

  async consumePendingCompletion(codeHash: string): Promise<PendingCompletion | undefined> {
    const pending = this.#completions.get(codeHash);
    this.#completions.delete(codeHash);
    return pending;
  }

  async getConnection(connectionId: string): Promise<ConnectionRecord | undefined> {
    return copy(this.#connections.get(connectionId));
  }

  async listConnections(options: ListConnectionsOptions): Promise<ListConnectionsResult> {
    const { status, prefix, limit, startAfter } = options;
    if (
      startAfter !== undefined &&
      (!CONNECTION_ID_PATTERN.test(startAfter) || !startAfter.startsWith(prefix))
    ) {
      throw new InvalidRequestError('The nextToken does not point into this listing.', {
        field: 'nextToken',
      });
    }
    const range = [...this.#connections.values()]
      .filter((record) => record.status === status && record.connectionId.startsWith(prefix))
      .filter((record) => startAfter === undefined || record.connectionId > startAfter)
      .sort((a, b) => (a.connectionId < b.connectionId ? -1 : 1));
    const page = range.slice(0, limit).map(listed);
    const last = page.at(-1);
    return range.length > limit && last
      ? { connections: page, lastEvaluatedId: last.connectionId }
      : { connections: page };
  }

  async saveConnection(
    connection: NewConnection,
    options: { expectedVersion: number | undefined; now: number },
  ): Promise<ConnectionRecord | undefined> {
    const existing = this.#connections.get(connection.connectionId);
    if ((existing?.version ?? undefined) !== options.expectedVersion) return undefined;
    const record: ConnectionRecord = {
      ...structuredClone(connection),
      status: 'active',
      generation: (existing?.generation ?? 0) + 1,
      version: (existing?.version ?? 0) + 1,
      failureCount: 0,
      createdAt: existing?.createdAt ?? options.now,
      updatedAt: options.now,
    };
    if (existing?.rejectionCheckedAt !== undefined) record.rejectionCheckedAt = existing.rejectionCheckedAt;
    this.#connections.set(record.connectionId, record);
    return structuredClone(record);
  }

  async disconnect(connectionId: string, options: { now: number }): Promise<boolean> {
    const record = this.#connections.get(connectionId);
    if (!record || record.status === 'disconnected') return false;
    if (record.userId !== undefined && this.#wiseUsers.get(record.userId) === connectionId) {
      this.#wiseUsers.delete(record.userId);
    }
    record.status = 'disconnected';
    record.version += 1;
    record.updatedAt = options.now;
    delete record.accessToken;
    delete record.refreshToken;
    delete record.registrationCode;
    delete record.email;
    delete record.userId;
    delete record.profileId;
    delete record.nextRefreshAt;
    delete record.lease;
    return true;
  }

  async linkWiseUser(userId: number, connectionId: string): Promise<string | undefined> {
    const previous = this.#wiseUsers.get(userId);
    this.#wiseUsers.set(userId, connectionId);
    return previous !== undefined && previous !== connectionId ? previous : undefined;
  }

  async markReplaced(
    connectionId: string,
    options: { userId: number; lastError: LastError; now: number },
  ): Promise<boolean> {
    const record = this.#connections.get(connectionId);
    if (record?.status !== 'active' || record.userId !== options.userId) return false;
    record.status = 'needs_reauth';
    record.lastError = { ...options.lastError };
    record.version += 1;
    record.updatedAt = options.now;
    delete record.nextRefreshAt;
    return true;
  }

  async getClientToken(): Promise<ClientTokenRecord | undefined> {
    return copy(this.#client);
  }

  async listDue(options: { now: number; limit: number }): Promise<DueRecord[]> {
    const due: DueRecord[] = [];
    for (const record of this.#connections.values()) {
      if (record.nextRefreshAt !== undefined && record.nextRefreshAt <= options.now) {
        due.push({
          key: { kind: 'connection', connectionId: record.connectionId },
          nextRefreshAt: record.nextRefreshAt,
        });
      }
    }
    const client = this.#client;
    if (client?.nextRefreshAt !== undefined && client.nextRefreshAt <= options.now) {
      due.push({ key: { kind: 'client' }, nextRefreshAt: client.nextRefreshAt });
    }
    return due.sort((a, b) => a.nextRefreshAt - b.nextRefreshAt).slice(0, Math.max(0, options.limit));
  }

  async acquireLease(
    key: RecordKey,
    options: { owner: string; now: number; leaseMs: number },
  ): Promise<Stored | undefined> {
    if (key.kind === 'client' && !this.#client) {
      this.#client = {
        generation: 0,
        version: 0,
        failureCount: 0,
        createdAt: options.now,
        updatedAt: options.now,
      };
    }
    const record = this.#record(key);
    if (!record || (key.kind === 'connection' && record.status !== 'active')) return undefined;
    if (record.lease && record.lease.expiresAt >= options.now) return undefined;
    record.lease = { owner: options.owner, expiresAt: options.now + options.leaseMs };
    return structuredClone(record);
  }

  async completeRefresh(
    key: RecordKey,
    options: { owner: string; now: number; update: TokenUpdate },
  ): Promise<Stored | undefined> {
    const record = this.#leasedBy(key, options.owner);
    if (!record) return undefined;
    const { update } = options;
    record.accessToken = update.accessToken;
    record.accessTokenExpiresAt = update.accessTokenExpiresAt;
    if (update.scope !== undefined) record.scope = update.scope;
    record.lastRefreshAt = update.lastRefreshAt;
    if (key.kind === 'connection' && update.refreshToken !== undefined) {
      record.refreshToken = update.refreshToken;
      if (update.refreshTokenExpiresAt === undefined) delete record.refreshTokenExpiresAt;
      else record.refreshTokenExpiresAt = update.refreshTokenExpiresAt;
    }
    record.generation += 1;
    record.version += 1;
    record.nextRefreshAt = update.nextRefreshAt;
    record.failureCount = 0;
    record.updatedAt = options.now;
    delete record.lease;
    delete record.lastError;
    return structuredClone(record);
  }

  async claimRejectionCheck(
    key: RecordKey,
    options: { generation: number; now: number; windowMs: number },
  ): Promise<boolean> {
    const record = this.#record(key);
    if (!record || record.generation !== options.generation) return false;
    if (key.kind === 'connection' && record.status !== 'active') return false;
    const checkedAt = record.rejectionCheckedAt;
    if (checkedAt !== undefined && checkedAt > options.now - options.windowMs) return false;
    record.rejectionCheckedAt = options.now;
    return true;
  }

  async releaseLease(key: RecordKey, options: { owner: string }): Promise<boolean> {
    const record = this.#record(key);
    if (!record || record.lease?.owner !== options.owner) return false;
    delete record.lease;
    return true;
  }

  async failRefresh(
    key: RecordKey,
    options: { owner: string; now: number; update: FailureUpdate },
  ): Promise<boolean> {
    const { update } = options;
    if (update.status === 'needs_reauth' && key.kind !== 'connection') {
      throw new Error('The client token has no status.');
    }
    const record = this.#leasedBy(key, options.owner);
    if (!record) return false;
    record.lastError = { ...update.lastError };
    record.failureCount = update.failureCount;
    record.version += 1;
    record.updatedAt = options.now;
    if (update.status === 'needs_reauth') {
      record.status = 'needs_reauth';
      delete record.nextRefreshAt;
    } else if (update.nextRefreshAt !== undefined) {
      record.nextRefreshAt = update.nextRefreshAt;
    }
    delete record.lease;
    return true;
  }

  #record(key: RecordKey): Stored | undefined {
    return key.kind === 'connection' ? this.#connections.get(key.connectionId) : this.#client;
  }

  #leasedBy(key: RecordKey, owner: string): Stored | undefined {
    const record = this.#record(key);
    if (!record || record.lease?.owner !== owner) return undefined;
    if (key.kind === 'connection' && record.status !== 'active') return undefined;
    return record;
  }
}

function listed(record: ConnectionRecord): ListedConnection {
  const fields = [
    'connectionId',
    'status',
    'grant',
    'profileId',
    'accessTokenExpiresAt',
    'nextRefreshAt',
    'lastRefreshAt',
    'lastError',
  ] as const;
  return structuredClone(
    Object.fromEntries(fields.filter((field) => record[field] !== undefined).map((f) => [f, record[f]])),
  ) as ListedConnection;
}

function copy<T>(value: T | undefined): T | undefined {
  return value === undefined ? undefined : structuredClone(value);
}
