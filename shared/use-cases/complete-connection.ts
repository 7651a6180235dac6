import { InvalidRequestError } from '#shared/domain/errors.ts';
import { hashSecret } from '#shared/domain/secret-hash.ts';
import { logger } from '#shared/observability.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import * as z from '#shared/validation.ts';
import { saveNewConnection } from './complete-authorization.ts';
import { type ConnectionStatusView, requestBodySchema, toConnectionStatus } from './connection-status.ts';

/** The body of `POST /connections/{id}/completion`. */
export const CompletionRequest = requestBodySchema({
  completionCode: z
    .string({
      error: (issue) =>
        issue.input === undefined
          ? 'is required: the completion code the broker added to your return URL'
          : 'must be the completion code the broker added to your return URL, as text',
    })
    .check(
      z.regex(/^[A-Za-z0-9_-]{16,128}$/, {
        error: 'must be the completion code the broker added to your return URL, unchanged',
      }),
    ),
});

export type CompletionInput = z.output<typeof CompletionRequest> & {
  callerArn: string;
  connectionId: string;
};

/**
 * Confirms a connection from the partner's own authenticated session: exchanges the completion code the
 * callback handed to the return URL, once and before it expires, and only for the connection it was
 * issued for; the granted connection then becomes active (replacing whatever was stored under its id).
 * A code is burnt by any attempt, right or wrong, so a code shown to the wrong service is useless.
 *
 * @throws ForbiddenError when the caller's patterns do not cover the connection
 * @throws InvalidRequestError when the code is unknown, used, expired or belongs to another connection
 */
export async function completeConnection(
  runtime: Pick<Runtime, 'store' | 'policy' | 'clock' | 'cipher' | 'events'>,
  input: CompletionInput,
): Promise<ConnectionStatusView> {
  runtime.policy.assertMayUseConnection(input.callerArn, input.connectionId);
  const pending = await runtime.store.consumePendingCompletion(
    hashSecret('completion', input.completionCode),
  );
  if (
    !pending ||
    pending.connection.connectionId !== input.connectionId ||
    runtime.clock.now() >= pending.expiresAt
  ) {
    logger.warn('Completion code refused', {
      connectionId: input.connectionId,
      reason: !pending
        ? 'unknown'
        : pending.connection.connectionId !== input.connectionId
          ? 'other_connection'
          : 'expired',
    });
    throw new InvalidRequestError(
      `Field "completionCode": is not a waiting completion of connection "${input.connectionId}": it is unknown, already used, expired, or was issued for another connection. Nothing was connected; start connecting the account again.`,
      { field: 'completionCode' },
    );
  }
  const connection = await saveNewConnection(runtime, pending.connection);
  const { replacedConnectionId } = connection;
  return replacedConnectionId === undefined
    ? toConnectionStatus(connection)
    : { ...toConnectionStatus(connection), replacedConnectionId };
}
