import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { apiHandler, requestEndsAt } from '#shared/http/api-handler.ts';
import {
  type CallbackOutcome,
  callbackResponse,
  type PagePresentation,
  presentationFor,
  UNBRANDED,
} from '#shared/http/pages.ts';
import { pageSecurityHeaders } from '#shared/http/responses.ts';
import { logger } from '#shared/observability.ts';
import { composedAtInit } from '#shared/runtime/function-environment.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import { deployedRuntime } from '#shared/runtime/wise-parts.ts';
import {
  type AuthorizationCallback,
  completeAuthorization,
} from '#shared/use-cases/complete-authorization.ts';
import {
  browserCookieName,
  type StartResult,
  startAuthorization,
} from '#shared/use-cases/start-authorization.ts';

// A state is 32 random bytes in base64url (43 characters); anything far from that is no state of ours.
const STATE = /^[A-Za-z0-9_-]{16,128}$/;
const CODE = /^[\x21-\x7e]{1,2048}$/;
const OAUTH_ERROR = /^[A-Za-z0-9_.-]{1,100}$/;
const PROFILE_ID = /^[1-9]\d{0,15}$/;

/** The route key of the start URL, served by this function beside the callback. */
export const START_ROUTE_KEY = 'GET /oauth/start';

/**
 * The public OAuth routes, both for a person's browser:
 * - `GET /oauth/start?state=` opens a connect session in this browser (once): sets the binding cookie and
 *   redirects to Wise's authorization page.
 * - `GET /oauth/callback` is where Wise sends the user back with `code`, `state` and `profileId`, or with
 *   `error`; accepted only with the cookie of the browser that opened the start URL. Answers with a page
 *   (or a redirect to the session's return URL, with the completion code), never with JSON.
 * A query that is not a usable answer changes nothing stored.
 */
export function createOauthCallbackHandler(runtime: () => Runtime) {
  return apiHandler(
    () => runtime().audit,
    async (event, context, request) => {
      const presentation = pagePresentation(runtime, event);
      if (event.routeKey === START_ROUTE_KEY) {
        request.note({ action: 'connect_start' });
        return start(runtime, event, presentation);
      }
      request.note({ action: 'connect' });
      const callback = readCallback(event);
      if (!callback) {
        request.note({ error: 'malformed' });
        logger.info('Callback refused: the query is not an answer from Wise', { outcome: 'refused' });
        return callbackResponse({ kind: 'malformed' }, presentation);
      }
      const cookieName = browserCookieName(callback.state);
      const browserSecret = readCookie(event, cookieName);
      let outcome: CallbackOutcome;
      try {
        const deps = runtime();
        outcome = await completeAuthorization(deps, callback, {
          endsAt: requestEndsAt(deps.clock.now(), context),
          ...(browserSecret === undefined ? {} : { browserSecret }),
        });
      } catch (error) {
        logger.error('Completing the authorization failed', error as Error);
        outcome = { kind: 'crashed' };
      }
      if ('connectionId' in outcome) request.note({ connectionId: outcome.connectionId });
      if (outcome.kind === 'connected') {
        request.note({ generation: outcome.connection.generation });
      } else if (outcome.kind !== 'approved') {
        const reason = 'reason' in outcome ? outcome.reason : undefined;
        request.note({
          outcome: outcome.kind === 'refused' ? 'refused' : 'failed',
          ...(reason === undefined ? {} : { error: reason }),
        });
        logger.info('Callback refused', { outcome: outcome.kind, reason });
      }
      const response = callbackResponse(outcome, presentation);
      // The binding is spent once the session is consumed; leave it in place when the state was refused
      // before (no cookie at all), so nothing here helps a forged request.
      if (browserSecret !== undefined) response.cookies = [expiredCookie(cookieName)];
      return response;
    },
  );
}

/**
 * The brand and language of this request's pages. A runtime that cannot be built (its configuration
 * broken) still gets a page: the unbranded English one, and the failure is logged where it happens.
 */
function pagePresentation(runtime: () => Runtime, event: APIGatewayProxyEventV2): PagePresentation {
  try {
    return presentationFor(runtime().config.brand, event.headers?.['accept-language']);
  } catch {
    return UNBRANDED;
  }
}

async function start(runtime: () => Runtime, event: APIGatewayProxyEventV2, presentation: PagePresentation) {
  const state = event.queryStringParameters?.state;
  if (state === undefined || !STATE.test(state)) {
    logger.info('Start refused: the query carries no state');
    return callbackResponse({ kind: 'malformed' }, presentation);
  }
  let started: StartResult;
  try {
    started = await startAuthorization(runtime(), state);
  } catch (error) {
    logger.error('Starting the authorization failed', error as Error);
    return callbackResponse({ kind: 'crashed' }, presentation);
  }
  if (started.kind === 'refused') {
    logger.info('Start refused: the state is unknown, expired or already opened');
    return callbackResponse({ kind: 'refused', reason: 'unknown_state' }, presentation);
  }
  const { name, value, maxAgeSeconds } = started.cookie;
  return {
    statusCode: 303,
    headers: { location: started.authorizeUrl, ...pageSecurityHeaders },
    cookies: [`${name}=${value}; Max-Age=${maxAgeSeconds}; ${COOKIE_ATTRIBUTES}`],
  };
}

/**
 * `__Host-` needs Secure and Path=/ and no Domain. SameSite=Lax: Wise's redirect back is a top-level
 * navigation from another site, which Lax lets through and Strict would not.
 */
const COOKIE_ATTRIBUTES = 'Path=/; Secure; HttpOnly; SameSite=Lax';

function expiredCookie(name: string): string {
  return `${name}=; Max-Age=0; ${COOKIE_ATTRIBUTES}`;
}

/** The value of a cookie the browser sent, from the event's `cookies` (payload format 2.0). */
export function readCookie(event: Pick<APIGatewayProxyEventV2, 'cookies'>, name: string): string | undefined {
  for (const cookie of event.cookies ?? []) {
    const separator = cookie.indexOf('=');
    if (separator > 0 && cookie.slice(0, separator).trim() === name) {
      const value = cookie.slice(separator + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}

/** The callback's query, when it has the shape of an answer from Wise; `undefined` otherwise. */
export function readCallback(
  event: Pick<APIGatewayProxyEventV2, 'queryStringParameters'>,
): AuthorizationCallback | undefined {
  const query = event.queryStringParameters ?? {};
  const { state, code, error, profileId } = query;
  if (state === undefined || !STATE.test(state)) return undefined;
  if (error !== undefined) {
    if (code !== undefined || !OAUTH_ERROR.test(error)) return undefined;
    return { state, error };
  }
  if (code === undefined || !CODE.test(code)) return undefined;
  if (profileId === undefined) return { state, code };
  if (!PROFILE_ID.test(profileId)) return undefined;
  return { state, code, profileId: Number(profileId) };
}

/** This function's composition root: the token store, cipher, events and Wise client it uses. */
export const handler = createOauthCallbackHandler(composedAtInit(deployedRuntime));
