import { resolve } from 'node:path';

/** How to start a Wise simulator; every field has a default that matches Wise. */
export interface SimulatorOptions {
  /** Interface to bind; default `127.0.0.1`. */
  host?: string;
  /** Port of the plain HTTP listener; default 0 (ephemeral). */
  port?: number;
  /** The one registered OAuth client; default `broker-local-client`. */
  clientId?: string;
  /** Its secret; default `broker-local-secret`. Rotatable through `POST /__control/client-secret`. */
  clientSecret?: string;
  /** The one registered redirect URI, compared byte for byte; default `http://127.0.0.1:3000/oauth/callback`. */
  redirectUri?: string;
  /** Access token lifetime; default 43199. */
  accessTokenSeconds?: number;
  /** Refresh token lifetime; default 628639555 (about 20 years). */
  refreshTokenSeconds?: number;
  /** Authorization code lifetime; default 1800. */
  codeSeconds?: number;
  /** Status of `invalid_grant` answers (Wise's pages disagree); default 400. */
  invalidGrantStatus?: 400 | 401;
  /** false (default): a refresh returns the same refresh token; true: a new one, and the old one dies. */
  rotateRefreshTokens?: boolean;
  /** Leave out `expires_at` and `refresh_token_expires_*`, as Wise did before 2025; default false. */
  omitExpiresAt?: boolean;
  /**
   * Honour PKCE (RFC 7636, S256 only), which Wise does not document: a code issued for a `code_challenge`
   * is redeemed only with its `code_verifier`, and a `code_verifier` for a code issued without a challenge
   * is refused (RFC 9700, section 2.1.1). Default false: both parameters are ignored.
   */
  pkce?: boolean;
  /** Token endpoint limits per client; default 100 a second and 1000 a minute. */
  rateLimit?: { perSecond?: number; perMinute?: number };
  /** An extra HTTPS listener (same routes) that requires a client certificate signed by `ca` (PEM strings). */
  mtls?: { port?: number; ca: string; cert: string; key: string };
  /** Clock in epoch milliseconds; default `Date.now`. `POST /__control/clock` adds an offset to it. */
  now?: () => number;
  /**
   * A JSON file that keeps users, registrations, live access and refresh tokens, the client secret and
   * the clock offset across restarts: read at start when it exists, saved soon after every change and on
   * `close()`. Default: none, everything lives in memory.
   */
  stateFile?: string;
}

/** The four grants Wise's token endpoint serves. */
export const GRANT_TYPES = [
  'client_credentials',
  'authorization_code',
  'refresh_token',
  'registration_code',
] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

/** Counters of the token endpoint and the API, as `GET /__control/stats` answers them. */
export interface SimulatorStats {
  /** Tokens issued, per grant. */
  grants: Record<GrantType, number>;
  /** Token requests of a grant that got no token (errors, injected faults, rate limits, dropped sockets). */
  failedGrants: Record<GrantType, number>;
  /** Token requests the per-client rate limit answered with 429 (injected 429s are not counted). */
  rateLimited: number;
  /** Token requests acted on whose answer was then dropped by an injected `drop: 'after-grant'` fault. */
  answersLost: number;
  /** Requests to the API routes (`/v1/me`, `/v2/profiles`, `/v1/user/signup/registration_code`). */
  apiCalls: number;
}

/** A simulator that is listening. */
export interface RunningSimulator {
  /** Base URL of the API host, which also serves the authorization page, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Base URL of the mutual-TLS listener when `mtls` was given. */
  mtlsUrl?: string;
  /** `${url}/oauth/authorize/` */
  authorizeUrl: string;
  /** The same JSON as `GET /__control/stats`. */
  stats(): SimulatorStats;
  /** Stops every listener and drops open connections, then saves the state file if there is one. */
  close(): Promise<void>;
}

/** Options with every default filled in. */
export interface SimulatorConfig {
  host: string;
  port: number;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  accessTokenSeconds: number;
  refreshTokenSeconds: number;
  codeSeconds: number;
  invalidGrantStatus: 400 | 401;
  rotateRefreshTokens: boolean;
  omitExpiresAt: boolean;
  pkce: boolean;
  rateLimit: { perSecond: number; perMinute: number };
  mtls: { port: number; ca: string; cert: string; key: string } | undefined;
  now: () => number;
  /** An absolute path. */
  stateFile: string | undefined;
}

/** Fills in the defaults and rejects values no Wise could have. */
export function resolveOptions(options: SimulatorOptions = {}): SimulatorConfig {
  const config: SimulatorConfig = {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    clientId: options.clientId ?? 'broker-local-client',
    clientSecret: options.clientSecret ?? 'broker-local-secret',
    redirectUri: options.redirectUri ?? 'http://127.0.0.1:3000/oauth/callback',
    accessTokenSeconds: options.accessTokenSeconds ?? 43199,
    refreshTokenSeconds: options.refreshTokenSeconds ?? 628639555,
    codeSeconds: options.codeSeconds ?? 1800,
    invalidGrantStatus: options.invalidGrantStatus ?? 400,
    rotateRefreshTokens: options.rotateRefreshTokens ?? false,
    omitExpiresAt: options.omitExpiresAt ?? false,
    pkce: options.pkce ?? false,
    rateLimit: {
      perSecond: options.rateLimit?.perSecond ?? 100,
      perMinute: options.rateLimit?.perMinute ?? 1000,
    },
    mtls: options.mtls && { ...options.mtls, port: options.mtls.port ?? 0 },
    now: options.now ?? Date.now,
    stateFile: options.stateFile === undefined ? undefined : resolve(options.stateFile),
  };
  for (const key of [
    'accessTokenSeconds',
    'refreshTokenSeconds',
    'codeSeconds',
  ] as const satisfies (keyof SimulatorConfig)[]) {
    if (!Number.isInteger(config[key]) || config[key] <= 0) {
      throw new RangeError(`Simulator option ${key} must be a positive whole number of seconds.`);
    }
  }
  const { perSecond, perMinute } = config.rateLimit;
  if (!Number.isInteger(perSecond) || perSecond <= 0 || !Number.isInteger(perMinute) || perMinute <= 0) {
    throw new RangeError('Simulator rate limits must be positive whole numbers of requests.');
  }
  if (config.invalidGrantStatus !== 400 && config.invalidGrantStatus !== 401) {
    throw new RangeError('Simulator option invalidGrantStatus must be 400 or 401.');
  }
  if (options.stateFile === '') throw new RangeError('Simulator option stateFile must not be empty.');
  if (config.clientId === '' || config.clientSecret === '' || config.redirectUri === '') {
    throw new RangeError('Simulator options clientId, clientSecret and redirectUri must not be empty.');
  }
  return config;
}
