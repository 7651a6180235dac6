import { apiHandler, requestEndsAt } from '#shared/http/api-handler.ts';
import { callerArn, parseJsonBody } from '#shared/http/request.ts';
import { jsonResponse } from '#shared/http/responses.ts';
import { composedAtInit } from '#shared/runtime/function-environment.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import { deployedRuntime } from '#shared/runtime/wise-parts.ts';
import { connectionIdFromPath } from '#shared/use-cases/connection-status.ts';
import { ImportRequest, importConnection } from '#shared/use-cases/import-connection.ts';

/**
 * `POST /connections/{id}/import` `{refreshToken, userId?, profileId?, replace?}` (IAM, `import`): takes over
 * a connection another system made, with one refresh at Wise, and answers 201 with its status, the notice
 * that the old system's tokens are ended, and any warnings.
 */
export function createImportHandler(runtime: () => Runtime) {
  return apiHandler(
    () => runtime().audit,
    async (event, context, request) => {
      request.note({ action: 'import' });
      const caller = callerArn(event);
      const connectionId = connectionIdFromPath(event.pathParameters);
      request.note({ connectionId });
      const body = parseJsonBody(event, ImportRequest);
      const deps = runtime();
      const imported = await importConnection(
        deps,
        { ...body, connectionId, callerArn: caller },
        { endsAt: requestEndsAt(deps.clock.now(), context) },
      );
      return jsonResponse(201, imported);
    },
  );
}

/** This function's composition root: the token store, cipher, events and Wise client it uses. */
export const handler = createImportHandler(composedAtInit(deployedRuntime));
