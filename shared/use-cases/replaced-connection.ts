import type { LastError } from '#shared/domain/records.ts';
import { logger } from '#shared/observability.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';

/** The `lastError.code` and event reason of a connection ended by connecting its Wise user again elsewhere. */
export const REPLACED_BY_CONNECTION = 'replaced_by_connection';

/**
 * After a grant connected the Wise user `userId` as `connectionId`: Wise keeps one refresh token per user
 * and partner application, so the grant ended the refresh token of any other connection of the same user.
 * That connection is not left to fail silently at its next refresh: the "Connection Reauthorization
 * Required" event goes out for it (reason {@link REPLACED_BY_CONNECTION}), then it is marked `needs_reauth`
 * with a `lastError` that names the new connection. Returns the replaced connection's id.
 *
 * When the event cannot be published the connection is left active: its next refresh meets
 * `invalid_grant` and publishes then, so the event still arrives at least once.
 */
export async function replaceEarlierConnection(
  runtime: Pick<Runtime, 'store' | 'events' | 'clock'>,
  userId: number,
  connectionId: string,
): Promise<string | undefined> {
  const previous = await runtime.store.linkWiseUser(userId, connectionId);
  if (previous === undefined) return undefined;
  const earlier = await runtime.store.getConnection(previous);
  if (earlier?.status !== 'active' || earlier.userId !== userId) return undefined;
  const now = runtime.clock.now();
  try {
    await runtime.events.reauthorizationRequired({
      connectionId: previous,
      reason: REPLACED_BY_CONNECTION,
      at: now,
      replacedBy: connectionId,
    });
  } catch (error) {
    logger.error(
      'Failed to publish the reauthorization event of a replaced connection; its next refresh does',
      {
        connectionId: previous,
        replacedBy: connectionId,
        error: error instanceof Error ? error.name : typeof error,
      },
    );
    return previous;
  }
  const lastError: LastError = {
    code: REPLACED_BY_CONNECTION,
    message: `The same Wise user was connected again as connection "${connectionId}", which ended this connection's access at Wise; disconnect this one, or connect the user here again (which ends the other).`,
    at: now,
  };
  const marked = await runtime.store.markReplaced(previous, { userId, lastError, now });
  logger.warn(
    'A Wise user connected again under another connection id; the earlier connection needs reauthorization',
    {
      connectionId: previous,
      replacedBy: connectionId,
      marked,
    },
  );
  return previous;
}
