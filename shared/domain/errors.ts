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

/** An AWS service the broker depends on: the `dependency` of a {@link DependencyUnavailableError}. */
export type AwsDependency = 'DynamoDB' | 'KMS' | 'Secrets Manager' | 'EventBridge';

/** What a caller is told failed, for each dependency: the part of the broker, never the service behind it. */
const DEPENDENCY_ROLE: Record<AwsDependency, string> = {
  DynamoDB: 'storage',
  KMS: 'encryption service',
  'Secrets Manager': 'credentials store',
  EventBridge: 'event delivery',
};

/**
 * Seconds a caller should wait before trying again when an AWS dependency is unavailable. The SDK has
 * already retried with back-off (four attempts for DynamoDB, three for the others) within the request, so
 * what is left is an outage or a throttle that lasts beyond a second or two: throttling clears as the
 * service's token bucket refills (seconds), and a timed-out or failing endpoint is usually replaced as
 * fast. 5 s lets that happen without holding a caller back long enough to miss its own deadlines.
 */
export const DEPENDENCY_RETRY_AFTER_SECONDS = 5;

/**
 * An AWS dependency throttled, timed out, could not be reached or failed on its side beyond the SDK's own
 * retries: the request may succeed shortly, a 503 with `Retry-After`. The message names the part of the
 * broker that is unavailable (its storage, encryption service, credentials store), never the service, a
 * table or an ARN; `dependency` and the SDK's error (the `cause`) are for the logs.
 */
export class DependencyUnavailableError extends BrokerError {
  readonly dependency: AwsDependency;
  readonly retryAfterSeconds: number;

  constructor(dependency: AwsDependency, options?: { retryAfterSeconds?: number; cause?: unknown }) {
    const retryAfterSeconds = options?.retryAfterSeconds ?? DEPENDENCY_RETRY_AFTER_SECONDS;
    super(
      `The broker's ${DEPENDENCY_ROLE[dependency]} is unavailable just now; try again in ${retryAfterSeconds} s, and tell the operator if it persists.`,
      { cause: options?.cause },
    );
    this.dependency = dependency;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
