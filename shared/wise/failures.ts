import {
  type WiseError,
  type WiseErrorDetails,
  WiseInvalidClientError,
  WiseInvalidGrantError,
  WiseInvalidRequestError,
  WiseInvalidTokenError,
  WiseRateLimitedError,
  WiseTlsError,
  WiseUnavailableError,
} from './errors.ts';

/** A classified failure: the error to throw, and whether another attempt may succeed. */
export interface Failure {
  error: WiseError;
  retryable: boolean;
  /** How long Wise asked us to wait (`Retry-After`), in ms. */
  retryAfterMs?: number;
}

/** The headers of an answer, by name (any case); `null` when absent. */
export interface AnswerHeaders {
  get(name: string): string | null;
}

/** What Wise answered, read in full. */
export interface WiseAnswer {
  status: number;
  headers: AnswerHeaders;
  body: string;
  traceId?: string;
}

/** Where the request went and what it must never reveal. */
export interface FailureContext {
  /** A short phrase for messages, such as "refresh token grant" or "GET /v1/me". */
  operation: string;
  /** The token endpoint authenticates the client; API calls authenticate a bearer token. */
  endpoint: 'token' | 'api';
  correlationId: string;
  /** Every credential the request carried; scrubbed from anything Wise echoes back. */
  secrets: readonly string[];
  nowMs: number;
  /** Used as `retryAfterSeconds` of a 429 that came without `Retry-After`. */
  fallbackRetryAfterSeconds: number;
  /** An earlier attempt of the same call got no answer or a 5xx: Wise may have acted on it. */
  afterUncertainAttempt?: boolean;
}

/** Seconds from a `Retry-After` header (delta-seconds or an HTTP date), or undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value);
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - nowMs) / 1000));
}

/** The OAuth `error` and `error_description` of a body, or Wise's `errors[0].code` form. */
export function readOAuthError(body: string): { error?: string; description?: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return {};
  }
  if (typeof json !== 'object' || json === null) return {};
  const record = json as Record<string, unknown>;
  const result: { error?: string; description?: string } = {};
  if (typeof record.error === 'string' && record.error !== '') result.error = record.error;
  else if (Array.isArray(record.errors)) {
    const first: unknown = record.errors[0];
    if (
      typeof first === 'object' &&
      first !== null &&
      typeof (first as { code?: unknown }).code === 'string'
    ) {
      result.error = (first as { code: string }).code;
    }
  }
  if (typeof record.error_description === 'string') result.description = record.error_description;
  return result;
}

// Anything token-shaped (a long run of token characters with a digit in it, or any very long run) is
// hidden even when it is not one of the secrets we sent; plain words such as unsupported_grant_type stay.
const TOKEN_RUN = /[A-Za-z0-9._~+/=-]{16,}/g;

function tokenShaped(run: string): boolean {
  return run.length >= 32 || /\d/.test(run);
}

/**
 * Makes text from Wise safe for a message: the request's credentials and anything token-shaped become
 * `[redacted]`, control characters go, and the length is capped.
 */
export function redact(text: string, secrets: readonly string[]): string {
  let safe = text;
  for (const secret of secrets) {
    if (secret.length > 0) safe = safe.split(secret).join('[redacted]');
  }
  safe = safe.replace(TOKEN_RUN, (run) => (tokenShaped(run) ? '[redacted]' : run));
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  safe = safe.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return safe.length > 200 ? `${safe.slice(0, 200)}…` : safe;
}

function details(answer: WiseAnswer, context: FailureContext, wiseError?: string): WiseErrorDetails {
  const result: WiseErrorDetails = { status: answer.status, correlationId: context.correlationId };
  if (answer.traceId !== undefined) result.traceId = answer.traceId;
  if (wiseError !== undefined) result.wiseError = wiseError;
  return result;
}

/** Classifies a non-2xx answer into one `WiseError` subclass. */
export function classifyAnswer(answer: WiseAnswer, context: FailureContext): Failure {
  const { status } = answer;
  const { operation } = context;
  const oauth = readOAuthError(answer.body);
  const base = details(answer, context, oauth.error);
  // Wise's error_description is shown only for the token endpoint, scrubbed; on API calls it echoes the token.
  const said =
    context.endpoint === 'token' && oauth.description
      ? ` Wise said: "${redact(oauth.description, context.secrets)}".`
      : '';
  const retryAfterSeconds = parseRetryAfter(answer.headers.get('retry-after'), context.nowMs);
  const retryAfter = retryAfterSeconds === undefined ? {} : { retryAfterMs: retryAfterSeconds * 1000 };

  if (status === 429) {
    const seconds = retryAfterSeconds ?? context.fallbackRetryAfterSeconds;
    return {
      error: new WiseRateLimitedError(
        `Wise is rate limiting the ${operation} (429); try again in ${seconds} s and lower the request rate.`,
        { ...base, retryAfterSeconds: seconds },
      ),
      retryable: true,
      ...retryAfter,
    };
  }
  if (status >= 500 || status === 408) {
    return {
      error: new WiseUnavailableError(
        `Wise answered ${status} to the ${operation}; it is unavailable, try again later.`,
        retryAfterSeconds === undefined ? base : { ...base, retryAfterSeconds },
      ),
      retryable: true,
      ...retryAfter,
    };
  }
  if (context.endpoint === 'api' && status === 401) {
    return {
      error: new WiseInvalidTokenError(
        `Wise refused the access token on ${operation} (401): it is expired or was replaced by a newer one.`,
        base,
      ),
      retryable: false,
    };
  }
  if (oauth.error === 'invalid_grant' && (status === 400 || status === 401)) {
    const uncertain = context.afterUncertainAttempt === true;
    return {
      error: new WiseInvalidGrantError(
        `Wise refused the ${operation} with invalid_grant: the code, refresh token or registration code is ` +
          `expired, used or revoked, so the user must authorize again.${
            uncertain ? ' An earlier attempt of this call got no answer and may have spent it.' : ''
          }${said}`,
        uncertain ? { ...base, afterUncertainAttempt: true } : base,
      ),
      retryable: false,
    };
  }
  if (context.endpoint === 'token' && (status === 401 || oauth.error === 'invalid_client')) {
    return {
      error: new WiseInvalidClientError(
        `Wise rejected the client id or secret on the ${operation} (${status} ` +
          `${oauth.error ?? 'without an OAuth error'}); check the Wise client credentials in Secrets Manager.${said}`,
        base,
      ),
      retryable: false,
    };
  }
  const what =
    status >= 400 && status < 500 ? (oauth.error ?? `status ${status}`) : `an unexpected ${status}`;
  return {
    error: new WiseInvalidRequestError(
      `Wise refused the ${operation} as a bad request (${what}); check the configuration and the request.${said}`,
      base,
    ),
    retryable: false,
  };
}

/** Classifies a 2xx whose body could not be read; not retried, since Wise may already have acted on it. */
export function unreadableAnswer(answer: WiseAnswer, context: FailureContext, reason: string): Failure {
  return {
    error: new WiseUnavailableError(
      `Wise answered ${answer.status} to the ${context.operation} but ${reason}.`,
      details(answer, context),
    ),
    retryable: false,
  };
}

const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function isTlsCode(code: string): boolean {
  return TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_OSSL_');
}

/** The error codes along a cause chain, outermost first. */
function causeCodes(error: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

/** Classifies a request that got no answer: a timeout, a refused or dropped connection, a TLS failure. */
export function classifyNoAnswer(error: unknown, context: FailureContext, timeoutMs: number): Failure {
  const base: WiseErrorDetails = { correlationId: context.correlationId, cause: error };
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return {
      error: new WiseUnavailableError(
        `Wise did not answer the ${context.operation} within ${timeoutMs} ms; try again later.`,
        base,
      ),
      retryable: true,
    };
  }
  const codes = causeCodes(error);
  const tls = codes.find(isTlsCode);
  if (tls !== undefined) {
    return {
      error: new WiseTlsError(
        `The TLS handshake for the ${context.operation} failed (${tls}); check the mutual-TLS certificate, ` +
          'key and CA configured for Wise.',
        base,
      ),
      retryable: false,
    };
  }
  const code = codes.find((candidate) => candidate !== 'UND_ERR' && candidate !== 'ABORT_ERR') ?? 'no code';
  return {
    error: new WiseUnavailableError(
      `Wise could not be reached for the ${context.operation} (${code}); try again later.`,
      base,
    ),
    retryable: true,
  };
}
