/**
 * The port through which the broker talks to Wise's OAuth 2.0 API. Use cases depend on this interface;
 * `WiseOAuthClient` in `#shared/wise/wise-oauth-client.ts` is the adapter behind it.
 */

/** The partner's Wise client credentials, and the mutual-TLS material when Wise requires it. */
export interface WiseCredentials {
  clientId: string;
  clientSecret: string;
  /** The secret being rotated out, tried once when Wise rejects the current one. */
  previousClientSecret?: string;
  /** PEM-encoded client certificate and key, and Wise's CA when it must be trusted explicitly. */
  mtls?: { certificate: string; privateKey: string; ca?: string };
}

/** Supplies credentials; forceFresh bypasses any cache (used once after invalid_client). */
export interface WiseCredentialsProvider {
  get(options?: { forceFresh?: boolean }): Promise<WiseCredentials>;
}

/** A token Wise granted, with its expiry already computed. */
export interface TokenGrant {
  accessToken: string;
  tokenType: 'bearer';
  /** Epoch ms: the earlier of now + expires_in and expires_at. */
  expiresAt: number;
  /** Absent when Wise returned none (a refresh may not rotate it): keep the one you have. */
  refreshToken?: string;
  /** Epoch ms, when Wise said. */
  refreshTokenExpiresAt?: number;
  scope?: string;
  /** Wise's `x-trace-id` for the call that granted this token, for logs and Wise support. */
  traceId?: string;
}

/** The Wise user an access token belongs to (`GET /v1/me`). */
export interface WiseUser {
  id: number;
  email?: string;
  name?: string;
}

/** A personal or business profile of the Wise user (`GET /v2/profiles`). */
export interface WiseProfile {
  id: number;
  type: string;
  name?: string;
}

/** Everything the broker asks of Wise. Failures are thrown as `WiseError` subclasses. */
export interface WiseOAuth {
  /** Wise's authorization page for a state; with `codeChallenge`, a PKCE S256 challenge (RFC 7636). */
  authorizationUrl(params: { state: string; codeChallenge?: string }): Promise<string>;
  clientCredentials(options?: WiseCallOptions): Promise<TokenGrant>;
  /** Exchanges an authorization code; `codeVerifier` when the authorization carried a PKCE challenge. */
  exchangeCode(
    params: { code: string; codeVerifier?: string },
    options?: WiseCallOptions,
  ): Promise<TokenGrant>;
  refresh(params: { refreshToken: string }, options?: WiseCallOptions): Promise<TokenGrant>;
  registrationCodeGrant(
    params: { email: string; registrationCode: string },
    options?: WiseCallOptions,
  ): Promise<TokenGrant>;
  signUpWithRegistrationCode(
    params: { email: string; registrationCode: string; language?: string; clientAccessToken: string },
    options?: WiseCallOptions,
  ): Promise<void>;
  getCurrentUser(accessToken: string, options?: WiseCallOptions): Promise<WiseUser>;
  listProfiles(accessToken: string, options?: WiseCallOptions): Promise<WiseProfile[]>;
}

/** Per-call options. */
export interface WiseCallOptions {
  /** Sent as `X-External-Correlation-Id` (at most 36 characters); a random UUID when absent. */
  correlationId?: string;
  /** Epoch ms by which to give up, retries included. */
  deadlineMs?: number;
  /**
   * Whether a 429 is retried (after its `Retry-After`, within the deadline and the attempts). Default
   * `true`. With `false` the first 429 ends the call with `WiseRateLimitedError`: for callers, such as the
   * refresh sweep, that would rather come back later than spend more calls against the limit.
   */
  retryRateLimited?: boolean;
  /**
   * Called, synchronously, as each 429 arrives, before the call retries or gives up: lets a caller stop
   * starting other calls at once, not only when this one ends. `retryAfterSeconds` is Wise's `Retry-After`
   * when it sent one. A throw from it is logged and ignored.
   */
  onRateLimited?: (answer: { retryAfterSeconds?: number }) => void;
}
