import { InvalidRequestError } from '#shared/domain/errors.ts';
import { CONNECTION_ID_PATTERN, type ConnectionStatus, type GrantType } from '#shared/domain/records.ts';
import type { ListedConnection } from '#shared/ports/token-store.ts';
import * as z from '#shared/validation.ts';

/**
 * A connection as admins and registration callers see it: state and times, never a secret. Times are
 * ISO-8601; a field the connection does not have is `null`.
 */
export interface ConnectionStatusView {
  connectionId: string;
  status: ConnectionStatus;
  profileId: number | null;
  grant: GrantType;
  accessTokenExpiresAt: string | null;
  nextRefreshAt: string | null;
  lastRefreshAt: string | null;
  lastError: { code: string; message: string; at: string } | null;
  /**
   * Only in the answer of a new grant: the connection the same Wise user was connected as before, which
   * the grant ended at Wise (it now needs reauthorization).
   */
  replacedConnectionId?: string;
}

/** The one mapper from a stored (or listed) connection to what the API shows of it. */
export function toConnectionStatus(connection: ListedConnection): ConnectionStatusView {
  return {
    connectionId: connection.connectionId,
    status: connection.status,
    profileId: connection.profileId ?? null,
    grant: connection.grant,
    accessTokenExpiresAt: isoOrNull(connection.accessTokenExpiresAt),
    nextRefreshAt: isoOrNull(connection.nextRefreshAt),
    lastRefreshAt: isoOrNull(connection.lastRefreshAt),
    lastError: connection.lastError
      ? {
          code: connection.lastError.code,
          message: connection.lastError.message,
          at: new Date(connection.lastError.at).toISOString(),
        }
      : null,
  };
}

function isoOrNull(epochMs: number | undefined): string | null {
  return epochMs === undefined ? null : new Date(epochMs).toISOString();
}

/** What a connection id must look like, said so a person can fix it. */
export const CONNECTION_ID_RULE =
  'must be 1 to 128 characters of letters, digits, ".", "_", ":" and "-", other than "." and ".." (for example "acme:user-42")';

/** A connection id in a JSON body: a 400 naming the field and the alphabet when it does not fit. */
export const ConnectionIdSchema = z
  .string({
    error: (issue) =>
      issue.input === undefined ? `is required and ${CONNECTION_ID_RULE}` : CONNECTION_ID_RULE,
  })
  .check(z.regex(CONNECTION_ID_PATTERN, { error: CONNECTION_ID_RULE }));

/** Reads the `{id}` path parameter of a connection route; a 400 that says the alphabet and the length. */
export function connectionIdFromPath(pathParameters: Record<string, string | undefined> | undefined): string {
  const id = pathParameters?.id;
  if (id === undefined || !CONNECTION_ID_PATTERN.test(id)) {
    throw new InvalidRequestError(`The connection id in the path ${CONNECTION_ID_RULE}.`, { field: 'id' });
  }
  return id;
}

/**
 * A JSON object body that refuses unknown fields and anything that is not an object, with messages that
 * name the fields it accepts.
 */
export function requestBodySchema<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const accepted = Object.keys(shape)
    .map((key) => `"${key}"`)
    .join(', ');
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code === 'unrecognized_keys') {
        const unknown = issue.keys.map((key) => `"${truncate(key)}"`).join(', ');
        return `has unknown field ${unknown}; it accepts only ${accepted}`;
      }
      if (issue.code === 'invalid_type') return `must be a JSON object with the fields ${accepted}`;
      return undefined;
    },
  });
}

/** An unknown field name is echoed back, but never at length. */
function truncate(key: string): string {
  return key.length > 40 ? `${key.slice(0, 40)}...` : key;
}
