import { apiHandler } from '#shared/http/api-handler.ts';
import { callerArn, parseJsonBody } from '#shared/http/request.ts';
import { jsonResponse } from '#shared/http/responses.ts';
import { deployedStoreParts } from '#shared/runtime/aws-parts.ts';
import { composedAtInit } from '#shared/runtime/function-environment.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import { CompletionRequest, completeConnection } from '#shared/use-cases/complete-connection.ts';
import { ConnectSessionRequest, createConnectSession } from '#shared/use-cases/connect-session.ts';
import { connectionIdFromPath } from '#shared/use-cases/connection-status.ts';

/** What this function's use cases reach: no Wise client, no Secrets Manager. */
export type ConnectSessionsParts = Pick<
  Runtime,
  'config' | 'redirectUri' | 'store' | 'policy' | 'clock' | 'cipher' | 'events' | 'audit'
>;

/** The route key of the completion exchange, served by this function beside the connect sessions. */
export const COMPLETION_ROUTE_KEY = 'POST /connections/{id}/completion';

/**
 * The two ends of connecting a Wise user with the authorization code (IAM):
 * - `POST /connect-sessions` `{connectionId, returnUrl?}` answers 201 `{startUrl, expiresAt}`: where to send
 *   the Wise user's browser.
 * - `POST /connections/{id}/completion` `{completionCode}` confirms the connection with the code the
 *   callback added to the return URL, and answers 200 with the connection's status.
 */
export function createConnectSessionsHandler(runtime: () => ConnectSessionsParts) {
  return apiHandler(
    () => runtime().audit,
    async (event, _context, request) => {
      const caller = callerArn(event);
      if (event.routeKey === COMPLETION_ROUTE_KEY) {
        request.note({ action: 'connect_completion' });
        const connectionId = connectionIdFromPath(event.pathParameters);
        request.note({ connectionId });
        const body = parseJsonBody(event, CompletionRequest);
        const status = await completeConnection(runtime(), { ...body, connectionId, callerArn: caller });
        return jsonResponse(200, status);
      }
      request.note({ action: 'connect_session' });
      const body = parseJsonBody(event, ConnectSessionRequest);
      request.note({ connectionId: body.connectionId });
      const session = await createConnectSession(runtime(), { ...body, callerArn: caller });
      return jsonResponse(201, {
        startUrl: session.startUrl,
        expiresAt: new Date(session.expiresAt).toISOString(),
      });
    },
  );
}

/** This function's composition root: DynamoDB, KMS and EventBridge, and nothing of Wise. */
export const handler = createConnectSessionsHandler(composedAtInit(() => deployedStoreParts()));
