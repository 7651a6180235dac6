import { hashSecret, newSecret, pkceChallenge } from '#shared/domain/secret-hash.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';

/** The prefix of the browser-binding cookies: `__Host-` makes the browser keep them Secure, host-only, on `/`. */
export const BROWSER_COOKIE_PREFIX = '__Host-wise-connect-';

/**
 * The name of the cookie that binds one state's flow to a browser. Each state has its own, so two
 * connections started in two tabs of one browser do not overwrite each other's binding.
 */
export function browserCookieName(state: string): string {
  return `${BROWSER_COOKIE_PREFIX}${hashSecret('cookie-name', state).slice(0, 16)}`;
}

/** The PKCE verifier of a flow: derived from the browser's secret, so it is stored nowhere. */
export function pkceVerifier(browserSecret: string): string {
  return hashSecret('pkce-verifier', browserSecret);
}

/** What the start URL answers. */
export type StartResult =
  | {
      kind: 'started';
      /** Wise's authorization page, to redirect the browser to. */
      authorizeUrl: string;
      /** The cookie that binds the flow to this browser: a random secret whose hash the session keeps. */
      cookie: { name: string; value: string; maxAgeSeconds: number };
    }
  /** Unknown, expired, or already opened by a browser: each start URL works once. */
  | { kind: 'refused' };

/**
 * Opens a connect session in the browser that followed its start URL (RFC 9700, section 4.7.1): a new
 * random secret goes into a cookie and only its hash into the session, once. The callback then accepts the
 * state only with that cookie, so neither a forwarded Wise link nor a code delivered with a stolen state
 * completes in another browser. With `wise.pkce`, Wise's page gets an S256 challenge derived from the
 * same secret (RFC 9700, section 2.1.1).
 */
export async function startAuthorization(
  runtime: Pick<Runtime, 'config' | 'store' | 'wise' | 'clock'>,
  state: string,
): Promise<StartResult> {
  const browserSecret = newSecret();
  // Built before the binding, so a failure here leaves the start URL usable.
  const authorizeUrl = await runtime.wise.authorizationUrl({
    state,
    ...(runtime.config.wise.pkce ? { codeChallenge: pkceChallenge(pkceVerifier(browserSecret)) } : {}),
  });
  const now = runtime.clock.now();
  const session = await runtime.store.startConnectSession(hashSecret('state', state), {
    browserHash: hashSecret('browser', browserSecret),
    now,
  });
  if (!session) return { kind: 'refused' };
  return {
    kind: 'started',
    authorizeUrl,
    cookie: {
      name: browserCookieName(state),
      value: browserSecret,
      maxAgeSeconds: Math.max(1, Math.ceil((session.expiresAt - now) / 1000)),
    },
  };
}
