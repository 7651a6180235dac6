import { apiHandler } from '#shared/http/api-handler.ts';
import { callerArn, parseValue } from '#shared/http/request.ts';
import { emptyResponse, errorBody, jsonResponse } from '#shared/http/responses.ts';
import { lazyRuntime, type RuntimeSource } from '#shared/runtime/runtime.ts';
import { connectionIdFromPath } from '#shared/use-cases/connection-status.ts';
import {
  disconnectConnection,
  getConnectionStatus,
  ListConnectionsQuery,
  listConnections,
} from '#shared/use-cases/connections-admin.ts';

/**
 * The connections admin routes (IAM, admin callers only): `GET /connections?status=&limit=&nextToken=`,
 * `GET /connections/{id}` and `DELETE /connections/{id}`.
 */
export function createConnectionsHandler(runtime: RuntimeSource) {
  return apiHandler(async (event) => {
    const caller = callerArn(event);
    const method = event.requestContext.http.method;
    const hasId = event.pathParameters?.id !== undefined;
    if (method === 'GET' && !hasId) {
      const query = parseValue(event.queryStringParameters ?? {}, ListConnectionsQuery);
      return jsonResponse(200, await listConnections(runtime(), { ...query, callerArn: caller }));
    }
    if (!hasId) return methodNotAllowed('GET');
    const connectionId = connectionIdFromPath(event.pathParameters);
    if (method === 'GET') {
      return jsonResponse(200, await getConnectionStatus(runtime(), { callerArn: caller, connectionId }));
    }
    if (method === 'DELETE') {
      await disconnectConnection(runtime(), { callerArn: caller, connectionId });
      return emptyResponse(204);
    }
    return methodNotAllowed('GET, DELETE');
  });
}

function methodNotAllowed(allow: string) {
  return errorBody(405, 'method_not_allowed', `This route accepts only ${allow}.`, { allow });
}

export const handler = createConnectionsHandler(lazyRuntime());
