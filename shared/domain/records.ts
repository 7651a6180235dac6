/**
 * The records the broker keeps. The store holds them with every secret already encrypted: nothing in
 * this file is ever plaintext token material.
 */

/**
 * Connection ids are chosen by the partner: 1 to 128 of letters, digits, `.`, `_`, `:` and `-`. The ids
 * `.` and `..` are refused: as a path segment (`/connections/{id}`) URLs and SigV4 collapse them.
 */
export const CONNECTION_ID_PATTERN = /^(?!\.{1,2}$)[A-Za-z0-9._:-]{1,128}$/;

export type ConnectionStatus = 'active' | 'needs_reauth' | 'disconnected';

/** The grant that connected the Wise user. */
export type GrantType = 'authorization_code' | 'registration_code';

/** The kinds of secret the broker encrypts; each is part of the ciphertext's encryption context. */
export type SecretKind = 'access_token' | 'refresh_token' | 'registration_code';

/** Which record a token belongs to: a connection of a Wise user, or the application's own client token. */
export type RecordKey = { kind: 'connection'; connectionId: string } | { kind: 'client' };

/**
 * What else the broker encrypts: the admin listing's cursor (`nextToken`), sealed so it reveals no
 * connection id and cannot be forged.
 */
export type CipherKind = SecretKind | 'list_cursor';

/**
 * What a ciphertext is bound to: a record, or the admin listing of one IAM principal (its canonical ARN),
 * so a cursor handed to one admin does not decrypt for another.
 */
export type CipherRecord = RecordKey | { kind: 'listing'; principal: string };

/** KMS ciphertext as stored. */
export type Ciphertext = Uint8Array;

/** A lease on a record's refresh: only its owner may write the refresh's outcome until it expires. */
export interface Lease {
  owner: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** What went wrong last, without any secret: shown to admins and kept for operators. */
export interface LastError {
  code: string;
  message: string;
  /** Epoch ms. */
  at: number;
}

/** The token state shared by connections and the client token; every time is epoch ms. */
export interface TokenState {
  accessToken?: Ciphertext;
  accessTokenExpiresAt?: number;
  scope?: string;
  /** Grows by one with every new access token, across refreshes and re-connections. */
  generation: number;
  /** Grows by one with every write; conditional writes compare it. */
  version: number;
  /** When the next proactive refresh is due. Present (and indexed) only while the record is refreshable. */
  nextRefreshAt?: number;
  lastRefreshAt?: number;
  lastError?: LastError;
  /** Consecutive transient failures, for backoff; zero after a success. */
  failureCount: number;
  lease?: Lease;
  /** When a caller's report that the token was rejected was last checked (epoch ms); see the vend. */
  rejectionCheckedAt?: number;
  createdAt: number;
  updatedAt: number;
}

export interface ConnectionRecord extends TokenState {
  connectionId: string;
  status: ConnectionStatus;
  grant: GrantType;
  refreshToken?: Ciphertext;
  refreshTokenExpiresAt?: number;
  /** Only for the registration-code grant: kept so the broker can grant again after invalid_grant. */
  registrationCode?: Ciphertext;
  email?: string;
  profileId?: number;
  userId?: number;
}

/** The application's client-credentials token: minted, stored and refreshed like a connection. */
export interface ClientTokenRecord extends TokenState {}

/**
 * A one-time connect session, consumed by the OAuth callback. Only hashes of its secrets are kept: the
 * state (the key) and, once a browser opened the start URL, that browser's secret.
 */
export interface ConnectSessionRecord {
  /** `hashSecret('state', state)`. */
  stateHash: string;
  connectionId: string;
  returnUrl?: string;
  /** The principal that created the session, for the audit trail. */
  createdBy: string;
  /** Epoch ms. */
  expiresAt: number;
  createdAt: number;
  /** `hashSecret('browser', secret)` of the browser that opened the start URL; set once. */
  browserHash?: string;
}
