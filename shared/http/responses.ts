import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import {
  ConnectionExistsError,
  ConnectionNotFoundError,
  DependencyUnavailableError,
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

/** What a page may load: the hashes of its inline styles and the sources of its images. */
export interface PageSources {
  styleHashes?: readonly string[];
  images?: readonly string[];
}

/**
 * The Content-Security-Policy of a page for people: nothing may load or run but the page's own inline
 * style (by its hash) and its images (by source); no script at all, no `<base>`, no form posts, and no
 * framing by any site (`frame-ancestors`, with `X-Frame-Options` for older browsers beside it).
 */
export function pageContentSecurityPolicy(sources: PageSources = {}): string {
  const directives = ["default-src 'none'"];
  if (sources.styleHashes?.length) {
    directives.push(`style-src ${sources.styleHashes.map((hash) => `'${hash}'`).join(' ')}`);
  }
  if (sources.images?.length) directives.push(`img-src ${sources.images.join(' ')}`);
  directives.push("base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'");
  return directives.join('; ');
}

/**
 * What every page and redirect for people carries: a CSP that allows nothing (a page adds its own style and
 * images, see {@link htmlResponse}), no framing by any site, and no `Referer`, so neither a logo's host nor
 * the next site learns the callback's address with its code and state.
 */
export const pageSecurityHeaders = {
  'content-security-policy': pageContentSecurityPolicy(),
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  ...securityHeaders,
};

/**
 * An HTML page for people (the OAuth callback), with the page's own Content-Security-Policy (from
 * {@link pageContentSecurityPolicy}), or one that allows nothing.
 */
export function htmlResponse(
  statusCode: number,
  body: string,
  contentSecurityPolicy: string = pageSecurityHeaders['content-security-policy'],
): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      ...pageSecurityHeaders,
      'content-security-policy': contentSecurityPolicy,
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
 * The one place where errors become HTTP responses. An AWS dependency that is throttling, timing out or
 * failing beyond the SDK's retries is a 503 `service_unavailable` with `Retry-After`; anything unexpected
 * is a 500 that says nothing of its cause. The caller logs the error.
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
  if (error instanceof DependencyUnavailableError) {
    return errorBody(503, 'service_unavailable', error.message, {
      'retry-after': String(error.retryAfterSeconds),
    });
  }
  return errorBody(
    500,
    'internal_error',
    'The broker failed unexpectedly; try again, and tell the operator if it persists.',
  );
}
