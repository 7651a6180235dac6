import type {
  ClientTokenRecord,
  ConnectionRecord,
  ConnectionStatus,
  ConnectSessionRecord,
  LastError,
  RecordKey,
  TokenState,
} from '#shared/domain/records.ts';

/** The fields a successful grant or refresh writes. */
export interface TokenUpdate {
  accessToken: Uint8Array;
  accessTokenExpiresAt: number;
  scope?: string;
  nextRefreshAt: number;
  lastRefreshAt: number;
  /** Connections only. Absent: keep the stored refresh token (Wise returned none). */
  refreshToken?: Uint8Array;
  refreshTokenExpiresAt?: number;
}

/** The fields a failed refresh writes when it gives its lease back. */
export interface FailureUpdate {
  lastError: LastError;
  failureCount: number;
  /** When to try again; absent with `status: 'needs_reauth'` (the record leaves the due index). */
  nextRefreshAt?: number;
  status?: Extract<ConnectionStatus, 'needs_reauth'>;
}

/** A new or replacing connection written by a grant (authorization code or registration code). */
export type NewConnection = Omit<
  ConnectionRecord,
  'version' | 'generation' | 'failureCount' | 'lease' | 'lastError' | 'createdAt' | 'updatedAt'
> & { status: 'active' };

/**
 * A connection Wise granted that waits for the partner's confirmation: it becomes the connection only
 * when the partner's service exchanges the completion code, once, before `expiresAt`.
 */
export interface PendingCompletion {
  /** `hashSecret('completion', code)`: the code itself is never stored. */
  codeHash: string;
  connection: NewConnection;
  /** Epoch ms. */
  expiresAt: number;
  createdAt: number;
}

export interface DueRecord {
  key: RecordKey;
  nextRefreshAt: number;
}

/** The statuses a listing can ask for: tombstones are never listed. */
export type ListedStatus = Exclude<ConnectionStatus, 'disconnected'>;

/**
 * What the status index holds of a connection: the fields of its status view, never a token, a
 * registration code or personal data (the index projects nothing else).
 */
export type ListedConnection = Pick<
  ConnectionRecord,
  | 'connectionId'
  | 'status'
  | 'grant'
  | 'profileId'
  | 'accessTokenExpiresAt'
  | 'nextRefreshAt'
  | 'lastRefreshAt'
  | 'lastError'
>;

/** One range of one status, in connection-id order. */
export interface ListConnectionsOptions {
  status: ListedStatus;
  /** Only connection ids that begin with it; `''` for every id. */
  prefix: string;
  limit: number;
  /** Start after this connection id, which must begin with `prefix`. */
  startAfter?: string;
}

export interface ListConnectionsResult {
  connections: ListedConnection[];
  /** Where the store stopped reading: pass it as `startAfter` for the rest; absent when the range is done. */
  lastEvaluatedId?: string;
}

/**
 * The broker's storage. Every write is a single-item conditional write, so two writers can never both
 * win; a lost condition is reported as a value (`undefined` or `false`), never as an exception.
 */
export interface TokenStore {
  putConnectSession(session: ConnectSessionRecord): Promise<void>;
  /**
   * Binds the session to the browser that opened its start URL: sets `browserHash` once, while the session
   * exists and is unexpired at `now`. Returns the bound session, or `undefined` (unknown, expired, or
   * already opened by a browser).
   */
  startConnectSession(
    stateHash: string,
    options: { browserHash: string; now: number },
  ): Promise<ConnectSessionRecord | undefined>;
  /**
   * Deletes the session and returns it, exactly once, when it is bound to `browserHash`; `undefined` when
   * unknown, already used, or bound to another browser (then it is left as it was). Expiry is the caller's
   * check.
   */
  consumeConnectSession(
    stateHash: string,
    options: { browserHash: string },
  ): Promise<ConnectSessionRecord | undefined>;

  /** Stores a granted connection waiting for its completion code. */
  putPendingCompletion(pending: PendingCompletion): Promise<void>;
  /** Deletes the pending completion and returns it, exactly once; `undefined` when unknown or used. Expiry is the caller's check. */
  consumePendingCompletion(codeHash: string): Promise<PendingCompletion | undefined>;

  /** Includes tombstones (`status: 'disconnected'`); callers decide what a tombstone means. */
  getConnection(connectionId: string): Promise<ConnectionRecord | undefined>;
  /**
   * Reads connections of one status whose ids begin with a prefix, from the status index (never a scan).
   *
   * @throws InvalidRequestError when `startAfter` is not a connection id that begins with `prefix`
   */
  listConnections(options: ListConnectionsOptions): Promise<ListConnectionsResult>;
  /**
   * Writes a connection's tokens from a new grant, replacing whatever was there (a tombstone included):
   * generation becomes the old generation + 1, version the old version + 1, lease and errors cleared.
   * Succeeds only if the stored version still equals `expectedVersion` (`undefined`: no record exists).
   */
  saveConnection(
    connection: NewConnection,
    options: { expectedVersion: number | undefined; now: number },
  ): Promise<ConnectionRecord | undefined>;
  /**
   * Destroys the tokens, the registration code and the personal data (e-mail, user and profile ids) and
   * leaves a tombstone that no late write can undo. `false` if there was no live connection.
   */
  disconnect(connectionId: string, options: { now: number }): Promise<boolean>;

  /**
   * Records that the Wise user `userId` is now connected as `connectionId` (one Wise user has one refresh
   * token per partner application, so one connection). Returns the other connection id the user was
   * recorded under before, if any. A disconnect removes the record it points to.
   */
  linkWiseUser(userId: number, connectionId: string): Promise<string | undefined>;
  /**
   * Marks an active connection of the Wise user `userId` `needs_reauth` with `lastError` (the same Wise
   * user was connected again under another id, which ended its refresh token at Wise); it leaves the due
   * index. `false` when it is no longer an active connection of that user.
   */
  markReplaced(
    connectionId: string,
    options: { userId: number; lastError: LastError; now: number },
  ): Promise<boolean>;

  getClientToken(): Promise<ClientTokenRecord | undefined>;

  /** The records whose refresh is due at `now`, read from the sharded due index (never a scan). */
  listDue(options: { now: number; limit: number }): Promise<DueRecord[]>;

  /**
   * Takes the refresh lease when it is free or expired. For a connection the record must exist and be active;
   * the client token record is created on first use. Returns the leased record, or `undefined` when another
   * owner holds the lease or the record cannot be refreshed.
   */
  acquireLease(
    key: RecordKey,
    options: { owner: string; now: number; leaseMs: number },
  ): Promise<(TokenState & Partial<ConnectionRecord>) | undefined>;
  /** Writes a refresh's result and frees the lease; generation + 1. Only while `owner` holds the lease. */
  completeRefresh(
    key: RecordKey,
    options: { owner: string; now: number; update: TokenUpdate },
  ): Promise<(TokenState & Partial<ConnectionRecord>) | undefined>;
  /**
   * Claims the one check of a reported rejection (`rejectedGeneration`) that a record allows within
   * `windowMs`: `true`, and the claim recorded, when the record still holds `generation` (a connection must
   * be active) and no claim was made after `now - windowMs`; `false` otherwise. One conditional write, so
   * the window holds across every instance. Changes no token and not the record's version.
   */
  claimRejectionCheck(
    key: RecordKey,
    options: { generation: number; now: number; windowMs: number },
  ): Promise<boolean>;
  /** Frees the lease without changing anything else (the refresh turned out not to be needed). */
  releaseLease(key: RecordKey, options: { owner: string }): Promise<boolean>;
  /** Records a failed refresh and frees the lease. Only while `owner` holds the lease. */
  failRefresh(
    key: RecordKey,
    options: { owner: string; now: number; update: FailureUpdate },
  ): Promise<boolean>;
}
