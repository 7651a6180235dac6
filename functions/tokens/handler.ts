import { apiHandler, requestEndsAt } from '#shared/http/api-handler.ts';
import { callerArn, parseJsonBody } from '#shared/http/request.ts';
import { jsonResponse } from '#shared/http/responses.ts';
import { composedAtInit } from '#shared/runtime/function-environment.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import { deployedRuntime } from '#shared/runtime/wise-parts.ts';
import { ConnectionIdSchema, requestBodySchema } from '#shared/use-cases/connection-status.ts';
import { VendCache, type VendOptions, vendToken } from '#shared/use-cases/vend-token.ts';
import * as z from '#shared/validation.ts';

/** The longest validity a caller may ask for: an hour, well inside Wise's 12-hour tokens. */
export const MAX_MIN_VALIDITY_SECONDS = 3600;

/** The body of `POST /tokens`: exactly one of `connectionId` or `kind: "client"`. */
export const TokenRequest = requestBodySchema({
  connectionId: z.optional(ConnectionIdSchema),
  kind: z.optional(
    z.literal('client', { error: 'must be "client" (or leave it out and give a connectionId)' }),
  ),
  minValiditySeconds: z.optional(
    z
      .int({ error: `must be a whole number of seconds from 0 to ${MAX_MIN_VALIDITY_SECONDS}` })
      .check(
        z.gte(0, { error: 'must be at least 0' }),
        z.lte(MAX_MIN_VALIDITY_SECONDS, { error: `must be at most ${MAX_MIN_VALIDITY_SECONDS}` }),
      ),
  ),
  rejectedGeneration: z.optional(
    z
      .int({ error: 'must be the whole-number generation of the token Wise rejected' })
      .check(z.gte(0, { error: 'must be 0 or more' })),
  ),
}).check(
  z.refine((body) => (body.connectionId === undefined) !== (body.kind === undefined), {
    error: 'must name exactly one of "connectionId" or "kind": "client"',
  }),
);

/**
 * `POST /tokens` `{connectionId}` or `{kind: "client"}`, with optional `minValiditySeconds` and
 * `rejectedGeneration` (IAM): answers 200 `{accessToken, tokenType, expiresAt, validUntil, generation,
 * scope, connectionId?, profileId?}`. Each handler keeps its own warm cache, one per Lambda instance. An
 * on-demand refresh is bounded by the request's deadline: the function's remaining time, at most API
 * Gateway's timeout.
 */
export function createTokensHandler(
  runtime: () => Runtime,
  options: Omit<VendOptions, 'cache' | 'endsAt'> = {},
) {
  const cache = new VendCache();
  return apiHandler(
    () => runtime().audit,
    async (event, context, request) => {
      request.note({ action: 'vend' });
      const caller = callerArn(event);
      const body = parseJsonBody(event, TokenRequest);
      request.note(
        body.connectionId === undefined ? { clientToken: true } : { connectionId: body.connectionId },
      );
      const deps = runtime();
      const endsAt = requestEndsAt(deps.clock.now(), context);
      const token = await vendToken(
        deps,
        {
          callerArn: caller,
          target:
            body.connectionId === undefined
              ? { kind: 'client' }
              : { kind: 'connection', connectionId: body.connectionId },
          ...(body.minValiditySeconds === undefined ? {} : { minValiditySeconds: body.minValiditySeconds }),
          ...(body.rejectedGeneration === undefined ? {} : { rejectedGeneration: body.rejectedGeneration }),
        },
        {
          ...options,
          cache,
          endsAt,
          onVended: (vend) => request.note({ generation: vend.generation, source: vend.source }),
        },
      );
      return jsonResponse(200, token);
    },
  );
}

/** This function's composition root: the token store, cipher, events and Wise client it uses. */
export const handler = createTokensHandler(composedAtInit(deployedRuntime));
