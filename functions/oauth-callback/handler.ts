import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { apiHandler, requestEndsAt } from '#shared/http/api-handler.ts';
import { type CallbackOutcome, callbackResponse } from '#shared/http/pages.ts';
import { logger } from '#shared/observability.ts';
import { lazyRuntime, type RuntimeSource } from '#shared/runtime/runtime.ts';
import {
  type AuthorizationCallback,
  completeAuthorization,
} from '#shared/use-cases/complete-authorization.ts';

// A state is 32 random bytes in base64url (43 characters); anything far from that is no state of ours.
const STATE = /^[A-Za-z0-9_-]{16,128}$/;
const CODE = /^[\x21-\x7e]{1,2048}$/;
const OAUTH_ERROR = /^[A-Za-z0-9_.-]{1,100}$/;
const PROFILE_ID = /^[1-9]\d{0,15}$/;

/**
 * `GET /oauth/callback` (public): where Wise sends the user back with `code`, `state` and `profileId`, or
 * with `error`. Always answers with a page for a person (or a redirect to the session's return URL), never
 * with JSON; a query that is not a usable answer changes nothing stored.
 */
export function createOauthCallbackHandler(runtime: RuntimeSource) {
  return apiHandler(async (event, context) => {
    const callback = readCallback(event);
    if (!callback) {
      logger.info('Callback refused: the query is not an answer from Wise');
      return callbackResponse({ kind: 'malformed' });
    }
    let outcome: CallbackOutcome;
    try {
      const deps = runtime();
      outcome = await completeAuthorization(deps, callback, {
        endsAt: requestEndsAt(deps.clock.now(), context),
      });
    } catch (error) {
      logger.error('Completing the authorization failed', error as Error);
      outcome = { kind: 'crashed' };
    }
    if (outcome.kind !== 'connected') {
      logger.info('Callback refused', {
        outcome: outcome.kind,
        reason: 'reason' in outcome ? outcome.reason : undefined,
      });
    }
    return callbackResponse(outcome);
  });
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

export const handler = createOauthCallbackHandler(lazyRuntime());
