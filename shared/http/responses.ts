import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import {
  ConnectionExistsError,
  ConnectionNotFoundError,
  ForbiddenError,
  InvalidRequestError,
  ProviderUnavailableError,
  ReauthorizationRequiredError,
  RefreshTokenRejectedError,
} from '#shared/domain/errors.ts';

const securityHeaders = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

/** A JSON response. Every response is `no-store`: some carry tokens. */
export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', ...securityHeaders, ...headers },
    body: JSON.stringify(body),
  };
}

/**
 * What every page and redirect for people carries: no framing by any site (`frame-ancestors` for current
 * browsers, `X-Frame-Options` for older ones), so no page can overlay or click through the broker's.
 */
export const pageSecurityHeaders = {
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  ...securityHeaders,
};

/** An HTML page for people (the OAuth callback). */
export function htmlResponse(statusCode: number, body: string): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      ...pageSecurityHeaders,
    },
    body,
  };
}

/** An empty response, such as the 204 of a delete. */
export function emptyResponse(statusCode: number, headers: Record<string, string> = {}) {
  return {
    statusCode,
    headers: { ...securityHeaders, ...headers },
  } satisfies APIGatewayProxyStructuredResultV2;
}

/** The broker's error body: `{"error": code, "message": sentence}`. */
export function errorBody(
  statusCode: number,
  error: string,
  message: string,
  headers?: Record<string, string>,
) {
  return jsonResponse(statusCode, { error, message }, headers);
}

/**
 * The one place where errors become HTTP responses. Anything unexpected is a 500 that says nothing of
 * its cause; the caller logs the error.
 */
export function errorToResponse(error: unknown): APIGatewayProxyStructuredResultV2 {
  if (error instanceof InvalidRequestError) return errorBody(400, 'invalid_request', error.message);
  if (error instanceof ForbiddenError) return errorBody(403, 'forbidden', error.message);
  if (error instanceof ConnectionNotFoundError) return errorBody(404, 'connection_not_found', error.message);
  if (error instanceof ReauthorizationRequiredError) {
    return errorBody(409, 'reauthorization_required', error.message);
  }
  if (error instanceof ConnectionExistsError) return errorBody(409, 'connection_exists', error.message);
  if (error instanceof RefreshTokenRejectedError) {
    return errorBody(422, 'refresh_token_rejected', error.message);
  }
  if (error instanceof ProviderUnavailableError) {
    return errorBody(503, 'provider_unavailable', error.message, {
      'retry-after': String(error.retryAfterSeconds),
    });
  }
  return errorBody(
    500,
    'internal_error',
    'The broker failed unexpectedly; try again, and tell the operator if it persists.',
  );
}
