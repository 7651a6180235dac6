/**
 * The root of every error the broker raises on purpose. Expected outcomes are values; these are
 * for what a use case cannot complete. Messages are sentences a person can act on and never carry a
 * token, a code or a secret.
 */
export class BrokerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The request itself is wrong: a 400 with this message. */
export class InvalidRequestError extends BrokerError {
  readonly field: string | undefined;

  constructor(message: string, options?: { field?: string; cause?: unknown }) {
    super(message, options);
    this.field = options?.field;
  }
}

/** The caller's principal is not allowed to do this: a 403. */
export class ForbiddenError extends BrokerError {}

/** No live connection has this id: a 404. */
export class ConnectionNotFoundError extends BrokerError {
  readonly connectionId: string;

  constructor(connectionId: string, options?: { cause?: unknown }) {
    super(`No connection "${connectionId}" exists; create one with POST /connect-sessions.`, options);
    this.connectionId = connectionId;
  }
}

/** The connection exists but the Wise user must authorize the partner again: a 409. */
export class ReauthorizationRequiredError extends BrokerError {
  readonly connectionId: string;

  constructor(connectionId: string, message?: string, options?: { cause?: unknown }) {
    super(
      message ??
        `Connection "${connectionId}" needs the Wise user to authorize again; start a new connect session.`,
      options,
    );
    this.connectionId = connectionId;
  }
}

/** A connection already holds this id and the request did not ask to replace it: a 409. */
export class ConnectionExistsError extends BrokerError {
  readonly connectionId: string;

  constructor(connectionId: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.connectionId = connectionId;
  }
}

/** Wise refused a refresh token the caller brought (expired, revoked or already used): a 422. */
export class RefreshTokenRejectedError extends BrokerError {}

/** Wise cannot be reached or is rate limiting, and no still-valid token can be vended: a 503. */
export class ProviderUnavailableError extends BrokerError {
  readonly retryAfterSeconds: number;

  constructor(message: string, options: { retryAfterSeconds: number; cause?: unknown }) {
    super(message, options);
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** A stored ciphertext did not decrypt under its record's encryption context: tampering or a bug, a 500. */
export class TokenDecryptionError extends BrokerError {}

/**
 * A stored record is older than its fence: a copy of an earlier write (before a refresh or a disconnect)
 * was written back over it. Its secrets are refused as not current; a 500, like any tampering.
 */
export class RolledBackRecordError extends TokenDecryptionError {}
