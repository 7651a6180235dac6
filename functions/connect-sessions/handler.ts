import { apiHandler } from '#shared/http/api-handler.ts';
import { callerArn, parseJsonBody } from '#shared/http/request.ts';
import { jsonResponse } from '#shared/http/responses.ts';
import { lazyRuntime, type RuntimeSource } from '#shared/runtime/runtime.ts';
import { ConnectSessionRequest, createConnectSession } from '#shared/use-cases/connect-session.ts';

/**
 * `POST /connect-sessions` `{connectionId, returnUrl?}` (IAM): answers 201
 * `{authorizeUrl, state, expiresAt}`, the page to send the Wise user to and its one-time state.
 */
export function createConnectSessionsHandler(runtime: RuntimeSource) {
  return apiHandler(async (event) => {
    const caller = callerArn(event);
    const body = parseJsonBody(event, ConnectSessionRequest);
    const session = await createConnectSession(runtime(), { ...body, callerArn: caller });
    return jsonResponse(201, {
      authorizeUrl: session.authorizeUrl,
      state: session.state,
      expiresAt: new Date(session.expiresAt).toISOString(),
    });
  });
}

export const handler = createConnectSessionsHandler(lazyRuntime());
