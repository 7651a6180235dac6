import { describe, expect, it } from 'vitest';
import { BrokerError } from '#shared/domain/errors.ts';
import {
  WiseError,
  WiseInvalidClientError,
  WiseInvalidGrantError,
  WiseInvalidRequestError,
  WiseInvalidTokenError,
  WiseRateLimitedError,
  WiseTlsError,
  WiseUnavailableError,
} from '#shared/wise/errors.ts';
import {
  classifyAnswer,
  classifyNoAnswer,
  type FailureContext,
  parseRetryAfter,
  readOAuthError,
  redact,
} from '#shared/wise/failures.ts';

const NOW = Date.parse('2026-11-26T10:00:00.000Z');
const SECRET = 'client-secret-value-0123456789';

function context(endpoint: 'token' | 'api', secrets: string[] = [SECRET]): FailureContext {
  return {
    operation: 'refresh token grant',
    endpoint,
    correlationId: 'corr-1',
    secrets,
    nowMs: NOW,
    fallbackRetryAfterSeconds: 1,
  };
}

function answer(status: number, body: unknown, headers: Record<string, string> = {}) {
  return {
    status,
    headers: new Headers(headers),
    body: typeof body === 'string' ? body : JSON.stringify(body),
    traceId: 'trace-9',
  };
}

describe('classifyAnswer on the token endpoint', () => {
  it.each([
    [400, { error: 'invalid_grant', error_description: 'Invalid user credentials.' }, WiseInvalidGrantError],
    [401, { error: 'invalid_grant', error_description: 'Invalid user credentials.' }, WiseInvalidGrantError],
    [401, { error: 'invalid_client' }, WiseInvalidClientError],
    [400, { error: 'invalid_client' }, WiseInvalidClientError],
    [401, '', WiseInvalidClientError],
    [401, '<html>Unauthorized</html>', WiseInvalidClientError],
    [400, { error: 'invalid_request', error_description: 'Missing grant type' }, WiseInvalidRequestError],
    [400, { error: 'unsupported_grant_type' }, WiseInvalidRequestError],
    [403, '', WiseInvalidRequestError],
    [404, '', WiseInvalidRequestError],
    [302, '', WiseInvalidRequestError],
    [429, '', WiseRateLimitedError],
    [500, '', WiseUnavailableError],
    [502, '<html>Bad gateway</html>', WiseUnavailableError],
    [503, { error: 'server_error' }, WiseUnavailableError],
  ])('classifies %i %j as %o', (status, body, errorClass) => {
    const failure = classifyAnswer(answer(status, body), context('token'));

    expect(failure.error).toBeInstanceOf(errorClass);
    expect(failure.error).toBeInstanceOf(WiseError);
    expect(failure.error).toBeInstanceOf(BrokerError);
    expect(failure.error.status).toBe(status);
    expect(failure.error.traceId).toBe('trace-9');
    expect(failure.error.correlationId).toBe('corr-1');
  });

  it('keeps the OAuth error code', () => {
    const failure = classifyAnswer(answer(400, { error: 'invalid_grant' }), context('token'));

    expect(failure.error.wiseError).toBe('invalid_grant');
  });

  it('retries only 429 and 5xx', () => {
    const retryable = (status: number, body: unknown = '') =>
      classifyAnswer(answer(status, body), context('token')).retryable;

    expect(retryable(429)).toBe(true);
    expect(retryable(503)).toBe(true);
    expect(retryable(400, { error: 'invalid_grant' })).toBe(false);
    expect(retryable(400, { error: 'invalid_request' })).toBe(false);
    expect(retryable(401, { error: 'invalid_client' })).toBe(false);
  });

  it('carries Retry-After on a 429', () => {
    const failure = classifyAnswer(answer(429, '', { 'retry-after': '7' }), context('token'));

    expect(failure.retryAfterMs).toBe(7000);
    expect((failure.error as WiseRateLimitedError).retryAfterSeconds).toBe(7);
  });

  it('falls back to the client back-off on a 429 without Retry-After', () => {
    const failure = classifyAnswer(answer(429, ''), { ...context('token'), fallbackRetryAfterSeconds: 3 });

    expect(failure.retryAfterMs).toBeUndefined();
    expect((failure.error as WiseRateLimitedError).retryAfterSeconds).toBe(3);
  });

  it('carries Retry-After on a 503', () => {
    const failure = classifyAnswer(answer(503, '', { 'retry-after': '2' }), context('token'));

    expect((failure.error as WiseUnavailableError).retryAfterSeconds).toBe(2);
  });

  it('shows a helpful error_description with the sent secrets scrubbed', () => {
    const failure = classifyAnswer(
      answer(400, { error: 'invalid_request', error_description: `Missing grant type near ${SECRET}` }),
      context('token'),
    );

    expect(failure.error.message).toContain('Missing grant type');
    expect(failure.error.message).not.toContain(SECRET);
  });
});

describe('classifyAnswer on API calls', () => {
  it('classifies a 401 as an invalid token without echoing the description', () => {
    const token = 'eyJ.a-user-access-token';
    const failure = classifyAnswer(
      answer(401, { error: 'invalid_token', error_description: token }),
      context('api', [token]),
    );

    expect(failure.error).toBeInstanceOf(WiseInvalidTokenError);
    expect(failure.error.wiseError).toBe('invalid_token');
    expect(failure.error.message).not.toContain(token);
    expect(failure.error.message).not.toContain('eyJ');
    expect(failure.retryable).toBe(false);
  });

  it('never shows an API error_description even when it is not the token', () => {
    const failure = classifyAnswer(
      answer(400, { error: 'invalid_request', error_description: 'unknown-description' }),
      context('api'),
    );

    expect(failure.error).toBeInstanceOf(WiseInvalidRequestError);
    expect(failure.error.message).not.toContain('unknown-description');
  });

  it('classifies a 403 for strong customer authentication as a request error, not a token failure', () => {
    const failure = classifyAnswer(answer(403, '', { 'x-2fa-approval': 'abc' }), context('api'));

    expect(failure.error).toBeInstanceOf(WiseInvalidRequestError);
    expect(failure.error.status).toBe(403);
  });
});

describe('classifyNoAnswer', () => {
  it('classifies a timeout as unavailable and retryable', () => {
    const failure = classifyNoAnswer(new DOMException('timed out', 'TimeoutError'), context('token'), 500);

    expect(failure.error).toBeInstanceOf(WiseUnavailableError);
    expect(failure.error.message).toContain('500 ms');
    expect(failure.retryable).toBe(true);
  });

  it('classifies a refused connection as unavailable and retryable', () => {
    const refused = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    });

    const failure = classifyNoAnswer(refused, context('token'), 500);

    expect(failure.error).toBeInstanceOf(WiseUnavailableError);
    expect(failure.error).not.toBeInstanceOf(WiseTlsError);
    expect(failure.error.message).toContain('ECONNREFUSED');
    expect(failure.error.cause).toBe(refused);
    expect(failure.retryable).toBe(true);
  });

  it('classifies a refused client certificate as a TLS error that is not retried', () => {
    const tls = new TypeError('fetch failed', {
      cause: Object.assign(new Error('alert'), { code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' }),
    });

    const failure = classifyNoAnswer(tls, context('token'), 500);

    expect(failure.error).toBeInstanceOf(WiseTlsError);
    expect(failure.error).toBeInstanceOf(WiseUnavailableError);
    expect(failure.retryable).toBe(false);
  });

  it('classifies an untrusted server certificate as a TLS error', () => {
    const tls = new TypeError('fetch failed', {
      cause: Object.assign(new Error('self-signed'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }),
    });

    expect(classifyNoAnswer(tls, context('token'), 500).error).toBeInstanceOf(WiseTlsError);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('12', NOW)).toBe(12);
  });

  it('reads an HTTP date relative to now', () => {
    expect(parseRetryAfter(new Date(NOW + 30_000).toUTCString(), NOW)).toBe(30);
  });

  it('reads a past HTTP date as zero', () => {
    expect(parseRetryAfter(new Date(NOW - 30_000).toUTCString(), NOW)).toBe(0);
  });

  it('ignores an absent or unreadable header', () => {
    expect(parseRetryAfter(null, NOW)).toBeUndefined();
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
  });
});

describe('readOAuthError', () => {
  it('reads the OAuth error and description', () => {
    expect(readOAuthError('{"error":"invalid_grant","error_description":"x"}')).toEqual({
      error: 'invalid_grant',
      description: 'x',
    });
  });

  it("reads Wise's errors list form", () => {
    expect(readOAuthError('{"errors":[{"code":"NOT_FOUND","message":"x"}]}')).toEqual({ error: 'NOT_FOUND' });
  });

  it('returns nothing for a body that is not JSON', () => {
    expect(readOAuthError('<html>')).toEqual({});
  });
});

describe('redact', () => {
  it('scrubs the given secrets and anything token-shaped, and keeps plain words', () => {
    const text = `bad code abc, tokens ${'Z'.repeat(40)} and 5b0c1e2f-8d3a-4c6b for unsupported_grant_type`;

    expect(redact(text, ['abc'])).toBe(
      'bad code [redacted], tokens [redacted] and [redacted] for unsupported_grant_type',
    );
  });

  it('caps the length', () => {
    expect(redact('word '.repeat(100), []).length).toBeLessThanOrEqual(201);
  });
});
