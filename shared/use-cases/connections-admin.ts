import { connectionPatternMatches, principalIdentity } from '#shared/domain/caller-policy.ts';
import { ConnectionNotFoundError, InvalidRequestError, TokenDecryptionError } from '#shared/domain/errors.ts';
import { CONNECTION_ID_PATTERN } from '#shared/domain/records.ts';
import { logger } from '#shared/observability.ts';
import type { CipherContext, TokenCipher } from '#shared/ports/token-cipher.ts';
import type { ListedConnection, ListedStatus } from '#shared/ports/token-store.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import * as z from '#shared/validation.ts';
import { type ConnectionStatusView, toConnectionStatus } from './connection-status.ts';
import { publishStoredChange } from './publish-event.ts';

/** The page size of `GET /connections` when `limit` is absent. */
export const DEFAULT_LIST_LIMIT = 50;
export const MAX_LIST_LIMIT = 100;
/** How many store pages one listing reads at most while skipping connections the caller may not see. */
export const MAX_STORE_PAGES = 10;
/** The statuses a listing walks, in this order, when no status is given. */
const LISTED_STATUSES: readonly ListedStatus[] = ['active', 'needs_reauth'];

/** The query of `GET /connections`. */
export const ListConnectionsQuery = z.strictObject(
  {
    status: z.optional(
      z.enum(['active', 'needs_reauth'], {
        error: 'must be "active" or "needs_reauth" (disconnected connections are not listed)',
      }),
    ),
    limit: z.optional(
      z.pipe(
        z.pipe(
          z
            .string({ error: `must be a whole number from 1 to ${MAX_LIST_LIMIT}` })
            .check(z.regex(/^\d{1,3}$/, { error: `must be a whole number from 1 to ${MAX_LIST_LIMIT}` })),
          z.transform(Number),
        ),
        z
          .int()
          .check(
            z.gte(1, { error: `must be a whole number from 1 to ${MAX_LIST_LIMIT}` }),
            z.lte(MAX_LIST_LIMIT, { error: `must be a whole number from 1 to ${MAX_LIST_LIMIT}` }),
          ),
      ),
    ),
    nextToken: z.optional(
      z
        .string({ error: 'must be the nextToken of the previous page' })
        .check(
          z.minLength(1, { error: 'must be the nextToken of the previous page, or be left out' }),
          z.maxLength(2048, { error: 'must be the nextToken of the previous page, unchanged' }),
        ),
    ),
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

/** One range a listing walks: the connections of one status that one of the caller's patterns may cover. */
interface ListRange {
  status: ListedStatus;
  pattern: string;
  /** The pattern's literal start, before its first `*`: the store reads only ids that begin with it. */
  prefix: string;
  /** The pattern's place among the caller's patterns: a connection is listed under the first that covers it. */
  patternIndex: number;
}

/** Where a listing stands: a range, and the connection id it continues after (none: the range's start). */
interface ListPosition {
  range: number;
  after?: string;
}

/**
 * Lists the connections the caller administers (its admin patterns cover them), without secrets. A page
 * may hold fewer than `limit` connections and still have a `nextToken`.
 *
 * The store is read per status and per admin pattern, only ids that begin with the pattern's literal
 * prefix, and each connection is listed under the first of the caller's patterns that covers it, so
 * overlapping patterns never list one twice. The `nextToken` names the status, the pattern and the
 * connection the listing goes on after: the last one returned, or, when {@link MAX_STORE_PAGES} store
 * pages held nothing the caller may see, the last one read. It is sealed with the broker's cipher for
 * the caller's principal, so it reveals no connection id, cannot be forged, and no other caller can use it.
 *
 * @throws ForbiddenError when the caller is no admin
 * @throws InvalidRequestError when `nextToken` is not one this listing returned to this caller
 */
export async function listConnections(
  runtime: Pick<Runtime, 'store' | 'policy' | 'cipher'>,
  input: ListConnectionsInput,
): Promise<ConnectionPage> {
  runtime.policy.assertIsAdmin(input.callerArn);
  const limit = input.limit ?? DEFAULT_LIST_LIMIT;
  const patterns = runtime.policy.patternsFor(input.callerArn, 'administer');
  const statuses = input.status === undefined ? LISTED_STATUSES : [input.status];
  const ranges: ListRange[] = statuses.flatMap((status) =>
    patterns.map((pattern, patternIndex) => ({
      status,
      pattern,
      prefix: literalPrefix(pattern),
      patternIndex,
    })),
  );
  const sealing = cursorContext(input.callerArn);
  const start =
    input.nextToken === undefined
      ? { range: 0 }
      : await readCursor(runtime.cipher, sealing, input.nextToken, ranges);

  const listed: ListedConnection[] = [];
  let rangeIndex = start.range;
  // `scanFrom` is where the store goes on reading; `shownUpTo` the last position the caller may see.
  let scanFrom = start.after;
  let shownUpTo = start.after;
  for (let page = 0; ; page++) {
    const range = ranges[rangeIndex];
    if (range === undefined) return { connections: listed.map(toConnectionStatus) };
    const at = async (after: string | undefined): Promise<ConnectionPage> => ({
      connections: listed.map(toConnectionStatus),
      nextToken: await writeCursor(runtime.cipher, sealing, range, after),
    });
    if (listed.length === limit) return at(shownUpTo);
    // The bound on store pages ends every listing. With nothing shown yet, the token moves on from the
    // last connection read (the token is sealed, so it may name any id), and the next page makes progress.
    if (page === MAX_STORE_PAGES) return at(listed.length > 0 ? shownUpTo : scanFrom);
    const result = await runtime.store.listConnections({
      status: range.status,
      prefix: range.prefix,
      limit: limit - listed.length,
      ...(scanFrom === undefined ? {} : { startAfter: scanFrom }),
    });
    for (const connection of result.connections) {
      const owner = patterns.findIndex((pattern) =>
        connectionPatternMatches(pattern, connection.connectionId),
      );
      if (owner === range.patternIndex) {
        listed.push(connection);
        shownUpTo = connection.connectionId;
      }
    }
    if (result.lastEvaluatedId === undefined) {
      rangeIndex += 1;
      scanFrom = undefined;
      shownUpTo = undefined;
    } else {
      scanFrom = result.lastEvaluatedId;
    }
  }
}

function literalPrefix(pattern: string): string {
  return pattern.split('*')[0] ?? '';
}

const Cursor = z.strictObject({
  s: z.enum(['active', 'needs_reauth']),
  p: z.string().check(z.minLength(1)),
  a: z.optional(z.string().check(z.regex(CONNECTION_ID_PATTERN))),
});

/**
 * The encryption context of a caller's cursors: the listing of its principal (the role or user, not the
 * session, so a listing survives a credential refresh), and the cursor kind.
 */
function cursorContext(callerArn: string): CipherContext {
  const identity = principalIdentity(callerArn);
  // Only admins get here, and an admin's ARN always reads; the fallback keeps the binding strict anyway.
  const principal =
    identity === undefined
      ? callerArn
      : `arn:${identity.partition}:iam::${identity.account}:${identity.kind}/${identity.name}`;
  return { record: { kind: 'listing', principal }, kind: 'list_cursor' };
}

async function writeCursor(
  cipher: TokenCipher,
  context: CipherContext,
  range: ListRange,
  after: string | undefined,
): Promise<string> {
  const cursor: z.output<typeof Cursor> = { s: range.status, p: range.pattern };
  if (after !== undefined) cursor.a = after;
  const sealed = await cipher.encrypt(JSON.stringify(cursor), context);
  return Buffer.from(sealed).toString('base64url');
}

/**
 * The position a `nextToken` names: it must decrypt under the caller's cursor context and name one of
 * the caller's own ranges; anything else is a 400.
 */
async function readCursor(
  cipher: TokenCipher,
  context: CipherContext,
  token: string,
  ranges: readonly ListRange[],
): Promise<ListPosition> {
  const invalid = (cause?: unknown) =>
    new InvalidRequestError(
      'The nextToken is not one this listing returned to you; pass the nextToken of the previous page unchanged, with the same status filter, or leave it out to start again.',
      { field: 'nextToken', ...(cause === undefined ? {} : { cause }) },
    );
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw invalid();
  const sealed = Buffer.from(token, 'base64url');
  // Base64 decoding forgives trailing characters; a token this listing wrote re-encodes to itself.
  if (sealed.toString('base64url') !== token) throw invalid();
  let json: unknown;
  try {
    json = JSON.parse(await cipher.decrypt(sealed, context));
  } catch (error) {
    // Altered, forged or another caller's: a client error. KMS being unavailable stays a 5xx.
    if (error instanceof TokenDecryptionError || error instanceof SyntaxError) throw invalid(error);
    throw error;
  }
  const parsed = Cursor.safeParse(json);
  if (!parsed.success) throw invalid();
  const { s: status, p: pattern, a: after } = parsed.data;
  const range = ranges.findIndex((candidate) => candidate.status === status && candidate.pattern === pattern);
  const prefix = ranges[range]?.prefix;
  if (prefix === undefined || (after !== undefined && !after.startsWith(prefix))) throw invalid();
  return after === undefined ? { range } : { range, after };
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
 * them. A new connect session may connect the id again. Then publishes "Connection Disconnected".
 *
 * @throws ForbiddenError when the caller does not administer the connection
 * @throws ConnectionNotFoundError when there is no live connection
 */
export async function disconnectConnection(
  runtime: Pick<Runtime, 'store' | 'policy' | 'clock' | 'events'>,
  request: ConnectionRequest,
): Promise<void> {
  runtime.policy.assertMayAdminister(request.callerArn, request.connectionId);
  const at = runtime.clock.now();
  const disconnected = await runtime.store.disconnect(request.connectionId, { now: at });
  if (!disconnected) throw new ConnectionNotFoundError(request.connectionId);
  logger.info('Connection disconnected', {
    connectionId: request.connectionId,
    callerArn: request.callerArn,
    outcome: 'disconnected',
  });
  await publishStoredChange(runtime.events, 'disconnected', request.connectionId, (events) =>
    events.disconnected({ connectionId: request.connectionId, at }),
  );
}
