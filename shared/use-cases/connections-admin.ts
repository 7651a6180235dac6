import { z } from 'zod';
import { ConnectionNotFoundError } from '#shared/domain/errors.ts';
import type { ConnectionRecord } from '#shared/domain/records.ts';
import { logger } from '#shared/observability.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import { type ConnectionStatusView, toConnectionStatus } from './connection-status.ts';

/** The page size of `GET /connections` when `limit` is absent. */
export const DEFAULT_LIST_LIMIT = 50;
export const MAX_LIST_LIMIT = 100;
/** How many store pages one listing reads at most while skipping connections the caller may not see. */
const MAX_STORE_PAGES = 10;

/** The query of `GET /connections`. */
export const ListConnectionsQuery = z.strictObject(
  {
    status: z
      .enum(['active', 'needs_reauth'], {
        error: 'must be "active" or "needs_reauth" (disconnected connections are not listed)',
      })
      .optional(),
    limit: z
      .string({ error: `must be a whole number from 1 to ${MAX_LIST_LIMIT}` })
      .regex(/^\d{1,3}$/, { error: `must be a whole number from 1 to ${MAX_LIST_LIMIT}` })
      .transform(Number)
      .pipe(
        z
          .number()
          .int()
          .min(1, { error: `must be a whole number from 1 to ${MAX_LIST_LIMIT}` })
          .max(MAX_LIST_LIMIT, { error: `must be a whole number from 1 to ${MAX_LIST_LIMIT}` }),
      )
      .optional(),
    nextToken: z
      .string({ error: 'must be the nextToken of the previous page' })
      .min(1, { error: 'must be the nextToken of the previous page, or be left out' })
      .max(2048, { error: 'must be the nextToken of the previous page, unchanged' })
      .optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `has unknown parameter ${issue.keys.map((key) => `"${key.slice(0, 40)}"`).join(', ')}; it accepts only "status", "limit" and "nextToken"`
        : undefined,
  },
);

export type ListConnectionsInput = z.output<typeof ListConnectionsQuery> & { callerArn: string };

/** One page of connections. */
export interface ConnectionPage {
  connections: ConnectionStatusView[];
  /** Pass it back to get the next page; absent on the last page. */
  nextToken?: string;
}

/**
 * Lists the connections the caller administers (its admin patterns cover them), without secrets. A page
 * may hold fewer than `limit` connections and still have a `nextToken`.
 *
 * @throws ForbiddenError when the caller is no admin
 */
export async function listConnections(
  runtime: Pick<Runtime, 'store' | 'policy'>,
  input: ListConnectionsInput,
): Promise<ConnectionPage> {
  runtime.policy.assertIsAdmin(input.callerArn);
  const limit = input.limit ?? DEFAULT_LIST_LIMIT;
  const visible: ConnectionRecord[] = [];
  let nextToken = input.nextToken;
  for (let page = 0; page < MAX_STORE_PAGES && visible.length < limit; page++) {
    const result = await runtime.store.listConnections({
      limit: limit - visible.length,
      ...(input.status === undefined ? {} : { status: input.status }),
      ...(nextToken === undefined ? {} : { nextToken }),
    });
    visible.push(
      ...result.connections.filter((connection) =>
        runtime.policy.mayAdminister(input.callerArn, connection.connectionId),
      ),
    );
    nextToken = result.nextToken;
    if (nextToken === undefined) break;
  }
  const connections = visible.map(toConnectionStatus);
  return nextToken === undefined ? { connections } : { connections, nextToken };
}

/** Identifies one connection for an admin route. */
export interface ConnectionRequest {
  callerArn: string;
  connectionId: string;
}

/**
 * The status of one connection, without secrets.
 *
 * @throws ForbiddenError when the caller does not administer the connection
 * @throws ConnectionNotFoundError when there is none, or only its tombstone
 */
export async function getConnectionStatus(
  runtime: Pick<Runtime, 'store' | 'policy'>,
  request: ConnectionRequest,
): Promise<ConnectionStatusView> {
  runtime.policy.assertMayAdminister(request.callerArn, request.connectionId);
  const connection = await runtime.store.getConnection(request.connectionId);
  if (!connection || connection.status === 'disconnected') {
    throw new ConnectionNotFoundError(request.connectionId);
  }
  return toConnectionStatus(connection);
}

/**
 * Disconnects: destroys the connection's tokens and leaves a tombstone, so no late refresh can revive
 * them. A new connect session may connect the id again.
 *
 * @throws ForbiddenError when the caller does not administer the connection
 * @throws ConnectionNotFoundError when there is no live connection
 */
export async function disconnectConnection(
  runtime: Pick<Runtime, 'store' | 'policy' | 'clock'>,
  request: ConnectionRequest,
): Promise<void> {
  runtime.policy.assertMayAdminister(request.callerArn, request.connectionId);
  const disconnected = await runtime.store.disconnect(request.connectionId, { now: runtime.clock.now() });
  if (!disconnected) throw new ConnectionNotFoundError(request.connectionId);
  logger.info('Connection disconnected', { connectionId: request.connectionId, by: request.callerArn });
}
