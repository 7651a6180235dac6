import { InvalidRequestError } from '#shared/domain/errors.ts';
import type { ConnectSessionRecord } from '#shared/domain/records.ts';
import { hashSecret, newSecret } from '#shared/domain/secret-hash.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import * as z from '#shared/validation.ts';
import { ConnectionIdSchema, requestBodySchema } from './connection-status.ts';

/** How long a connect session's state waits for its callback. */
export const CONNECT_SESSION_TTL_MS = 10 * 60 * 1000;

/** The longest return URL accepted. */
export const MAX_RETURN_URL_LENGTH = 2048;

/** The body of `POST /connect-sessions`. */
export const ConnectSessionRequest = requestBodySchema({
  connectionId: ConnectionIdSchema,
  returnUrl: z.optional(
    z
      .string({ error: 'must be a URL string' })
      .check(
        z.minLength(1, { error: 'must not be empty; leave it out for no return URL' }),
        z.maxLength(MAX_RETURN_URL_LENGTH, { error: `must be at most ${MAX_RETURN_URL_LENGTH} characters` }),
      ),
  ),
});

export type ConnectSessionInput = z.output<typeof ConnectSessionRequest> & { callerArn: string };

/** Where the partner sends the Wise user's browser, and until when. */
export interface ConnectSession {
  /**
   * The broker's start URL: it binds the flow to the browser that opens it (once) and redirects that
   * browser to Wise's authorization page.
   */
  startUrl: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** The path of the start URL beside the callback: `.../oauth/start` for `.../oauth/callback`. */
export const START_PATH_SEGMENT = 'start';

/**
 * Starts connecting a Wise user: a one-time `state` bound to the connection id and the return URL, valid
 * {@link CONNECT_SESSION_TTL_MS}, and the start URL carrying it. Only the state's hash is stored.
 *
 * A session names a return URL, where the partner's service gets the completion code to confirm the
 * connection from its own authenticated session; only with `connectWithoutConfirmation` may it leave
 * the return URL out, and then the callback connects the account with no confirmation.
 *
 * @throws ForbiddenError when the caller's patterns do not cover the connection
 * @throws InvalidRequestError when the return URL is not allowed by the configuration, or missing
 */
export async function createConnectSession(
  runtime: Pick<Runtime, 'config' | 'store' | 'policy' | 'clock' | 'redirectUri'>,
  input: ConnectSessionInput,
): Promise<ConnectSession> {
  runtime.policy.assertMayUseConnection(input.callerArn, input.connectionId);
  if (input.returnUrl === undefined && !runtime.config.connectWithoutConfirmation) {
    throw new InvalidRequestError(
      'Field "returnUrl": is required: the connection becomes active only when your service exchanges the completion code the broker adds to the return URL. Give one of the configuration\'s returnUrls.',
      { field: 'returnUrl' },
    );
  }
  const returnUrl =
    input.returnUrl === undefined ? undefined : allowedReturnUrl(input.returnUrl, runtime.config.returnUrls);
  const now = runtime.clock.now();
  const state = newSecret();
  const session: ConnectSessionRecord = {
    stateHash: hashSecret('state', state),
    connectionId: input.connectionId,
    createdBy: input.callerArn,
    expiresAt: now + CONNECT_SESSION_TTL_MS,
    createdAt: now,
  };
  if (returnUrl !== undefined) session.returnUrl = returnUrl;
  await runtime.store.putConnectSession(session);
  return { startUrl: startUrlFor(runtime.redirectUri, state), expiresAt: session.expiresAt };
}

/** The start URL of a state: beside the redirect URI (same host, same base path), without its query. */
export function startUrlFor(redirectUri: string, state: string): string {
  const url = new URL(START_PATH_SEGMENT, redirectUri);
  url.search = new URLSearchParams({ state }).toString();
  return url.href;
}

/**
 * Checks a return URL against the allow-list and returns it normalised, exactly as the browser will be
 * sent to it.
 *
 * @throws InvalidRequestError (field `returnUrl`) when it is not allowed
 */
export function allowedReturnUrl(candidate: string, allowList: readonly string[]): string {
  const normalised = matchReturnUrl(candidate, allowList);
  if (normalised === undefined) {
    throw new InvalidRequestError(
      allowList.length === 0
        ? 'Field "returnUrl": this deployment allows no return URLs; leave the field out, or add the URL to the configuration\'s returnUrls.'
        : 'Field "returnUrl": must be one of the configuration\'s returnUrls, or extend an entry that ends with "/" on the same scheme, host and port, without user info.',
      { field: 'returnUrl' },
    );
  }
  return normalised;
}

/**
 * The return-URL rule: a candidate is allowed when it equals an allow-list entry, or when it extends an
 * entry that ends with `/` on the same scheme, host and port (after normalisation, so `..` cannot climb
 * out of the entry's path), carries no user info, and has no encoded `.`, `/`, `\\` or `%` and no `;` in
 * its path (as written or normalised). Returns the normalised URL, or `undefined`.
 */
export function matchReturnUrl(candidate: string, allowList: readonly string[]): string | undefined {
  // Whitespace and control characters are dropped or altered by URL parsers; a clean URL never has them.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: exactly what this rejects
  if (/[\u0000-\u0020\u007f\\]/.test(candidate)) return undefined;
  const url = parseWithoutUserInfo(candidate);
  if (!url) return undefined;
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  const plain = isPlainPath(rawPath(candidate)) && isPlainPath(url.pathname);
  for (const entry of allowList) {
    const allowed = parseWithoutUserInfo(entry);
    if (!allowed) continue;
    if (url.href === allowed.href && (plain || candidate === entry)) return url.href;
    if (
      entry.endsWith('/') &&
      allowed.search === '' &&
      allowed.hash === '' &&
      url.protocol === allowed.protocol &&
      url.host === allowed.host &&
      url.pathname.startsWith(allowed.pathname) &&
      plain
    ) {
      return url.href;
    }
  }
  return undefined;
}

/**
 * Percent-encoded `.`, `/`, `\\` and `%` (double encoding), and `;` (a path parameter that some servers
 * strip, so `..;/` climbs): a server or proxy that decodes once more than the URL parser, or reads `;`
 * differently, would resolve them to a path outside the allowed prefix.
 */
const PATH_ESCAPE = /%(?:2e|2f|5c|25)|;|\\/i;

/** Whether a path is free of anything a later decoder could climb out of an allowed prefix with. */
function isPlainPath(path: string): boolean {
  return !PATH_ESCAPE.test(path);
}

/** The path of a URL as written, before the parser resolves dot segments (`\\` was refused before). */
function rawPath(candidate: string): string {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*([^?#]*)/.exec(candidate)?.[1] ?? '';
}

/** An absolute URL without user info, or `undefined`. */
function parseWithoutUserInfo(value: string): URL | undefined {
  if (!URL.canParse(value)) return undefined;
  const url = new URL(value);
  return url.username === '' && url.password === '' ? url : undefined;
}
