import { apiHandler } from '#shared/http/api-handler.ts';
import { callerArn, parseJsonBody } from '#shared/http/request.ts';
import { jsonResponse } from '#shared/http/responses.ts';
import { composedAtInit } from '#shared/runtime/function-environment.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import { deployedRuntime } from '#shared/runtime/wise-parts.ts';
import { connectionIdFromPath } from '#shared/use-cases/connection-status.ts';
import { RegistrationRequest, registerWithCode } from '#shared/use-cases/register-with-code.ts';

/**
 * `POST /connections/{id}/registration-code` `{email, registrationCode, signup?, language?}` (IAM):
 * connects a partner-created Wise user and answers 201 with the connection's status.
 */
export function createRegistrationHandler(runtime: () => Runtime) {
  return apiHandler(
    () => runtime().audit,
    async (event, _context, request) => {
      request.note({ action: 'registration' });
      const caller = callerArn(event);
      const connectionId = connectionIdFromPath(event.pathParameters);
      request.note({ connectionId });
      const body = parseJsonBody(event, RegistrationRequest);
      const status = await registerWithCode(runtime(), { ...body, connectionId, callerArn: caller });
      return jsonResponse(201, status);
    },
  );
}

/** This function's composition root: the token store, cipher, events and Wise client it uses. */
export const handler = createRegistrationHandler(composedAtInit(deployedRuntime));
