import { apiHandler } from '#shared/http/api-handler.ts';
import { callerArn, parseValue } from '#shared/http/request.ts';
import { emptyResponse, errorBody, jsonResponse } from '#shared/http/responses.ts';
import { deployedStoreParts } from '#shared/runtime/aws-parts.ts';
import { composedAtInit } from '#shared/runtime/function-environment.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import { connectionIdFromPath } from '#shared/use-cases/connection-status.ts';
import {
  disconnectConnection,
  getConnectionStatus,
  ListConnectionsQuery,
  listConnections,
} from '#shared/use-cases/connections-admin.ts';

/** What this function's use cases reach: no Wise client, no Secrets Manager. */
export type ConnectionsParts = Pick<Runtime, 'store' | 'policy' | 'clock' | 'cipher' | 'events' | 'audit'>;

/**
 * The connections admin routes (IAM, admin callers only): `GET /connections?status=&limit=&nextToken=`,
 * `GET /connections/{id}` and `DELETE /connections/{id}`.
 */
export function createConnectionsHandler(runtime: () => ConnectionsParts) {
  return apiHandler(
    () => runtime().audit,
    async (event, _context, request) => {
      const caller = callerArn(event);
      const method = event.requestContext.http.method;
      const hasId = event.pathParameters?.id !== undefined;
      if (method === 'GET' && !hasId) {
        request.note({ action: 'list' });
        const query = parseValue(event.queryStringParameters ?? {}, ListConnectionsQuery);
        if (query.status !== undefined) request.note({ listedStatus: query.status });
        const page = await listConnections(runtime(), { ...query, callerArn: caller });
        request.note({ count: page.connections.length });
        return jsonResponse(200, page);
      }
      if (!hasId) return methodNotAllowed('GET');
      if (method === 'GET' || method === 'DELETE')
        request.note({ action: method === 'GET' ? 'status' : 'delete' });
      const connectionId = connectionIdFromPath(event.pathParameters);
      request.note({ connectionId });
      if (method === 'GET') {
        return jsonResponse(200, await getConnectionStatus(runtime(), { callerArn: caller, connectionId }));
      }
      if (method === 'DELETE') {
        await disconnectConnection(runtime(), { callerArn: caller, connectionId });
        return emptyResponse(204);
      }
      return methodNotAllowed('GET, DELETE');
    },
  );
}

function methodNotAllowed(allow: string) {
  return errorBody(405, 'method_not_allowed', `This route accepts only ${allow}.`, { allow });
}

/** This function's composition root: DynamoDB, KMS and EventBridge, and nothing of Wise. */
export const handler = createConnectionsHandler(composedAtInit(() => deployedStoreParts()));
