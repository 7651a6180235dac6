import { BrokerError } from '#shared/domain/errors.ts';

/** What every Wise error carries for logs and for Wise support. None of it is secret. */
export interface WiseErrorDetails {
  /** The HTTP status Wise answered with; absent when no answer came. */
  status?: number;
  /** Wise's `x-trace-id` response header. */
  traceId?: string;
  /** The `X-External-Correlation-Id` the request carried. */
  correlationId?: string;
  /** The OAuth `error` code of the body, such as `invalid_grant`. */
  wiseError?: string;
  cause?: unknown;
}

/**
 * The root of every failure talking to Wise. Messages never carry a token, a code, a secret or the
 * `error_description` of an API call (Wise echoes the token there).
 */
export class WiseError extends BrokerError {
  readonly status: number | undefined;
  readonly traceId: string | undefined;
  readonly correlationId: string | undefined;
  readonly wiseError: string | undefined;

  constructor(message: string, details: WiseErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.status = details.status;
    this.traceId = details.traceId;
    this.correlationId = details.correlationId;
    this.wiseError = details.wiseError;
  }
}

/**
 * `invalid_grant` (Wise answers 400 or 401): the code, refresh token or registration code is expired,
 * used or revoked. The user must authorize again; never retried.
 */
export class WiseInvalidGrantError extends WiseError {
  /**
   * An earlier attempt of the same call got no answer or a 5xx, so Wise may have acted on it: the grant
   * refused now may have been spent by that attempt (a rotated refresh token whose answer was lost), not
   * revoked by the user.
   */
  readonly afterUncertainAttempt: boolean;

  constructor(message: string, details: WiseErrorDetails & { afterUncertainAttempt?: boolean } = {}) {
    super(message, details);
    this.afterUncertainAttempt = details.afterUncertainAttempt ?? false;
  }
}

/**
 * The token endpoint rejected the partner's client id or secret (401 `invalid_client`, or a 401 without a
 * recognisable body). An operator problem: no connection should be marked dead for it.
 */
export class WiseInvalidClientError extends WiseError {}

/** `invalid_request` or another 4xx: the request itself is wrong, which is a bug or a configuration error. */
export class WiseInvalidRequestError extends WiseError {}

/** Wise answered 429. */
export class WiseRateLimitedError extends WiseError {
  /** From `Retry-After`, or the back-off the client would have used when Wise sent none. */
  readonly retryAfterSeconds: number;

  constructor(message: string, details: WiseErrorDetails & { retryAfterSeconds: number }) {
    super(message, details);
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}

/**
 * Wise is in trouble or out of reach: a 5xx, a timeout, a refused, dropped or reset connection, or a 2xx
 * whose body could not be read.
 */
export class WiseUnavailableError extends WiseError {
  readonly retryAfterSeconds: number | undefined;

  constructor(message: string, details: WiseErrorDetails & { retryAfterSeconds?: number } = {}) {
    super(message, details);
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}

/**
 * The TLS handshake with Wise failed: the client certificate was refused or Wise's certificate could not
 * be verified. A configuration problem (certificate, key or CA), so it is not retried; it is still a
 * `WiseUnavailableError`, so callers keep vending still-valid tokens.
 */
export class WiseTlsError extends WiseUnavailableError {}

/**
 * An API call (`/v1/me`, `/v2/profiles`, the signup) was refused with 401: the access token is expired
 * or was replaced. The message never carries Wise's `error_description`, which echoes the token.
 */
export class WiseInvalidTokenError extends WiseError {}
