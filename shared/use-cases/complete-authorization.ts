import { setTimeout as delay } from 'node:timers/promises';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { BrokerError } from '#shared/domain/errors.ts';
import type { ConnectionRecord, GrantType, RecordKey } from '#shared/domain/records.ts';
import { nextRefreshAt } from '#shared/domain/refresh-rule.ts';
import { hashSecret, newSecret } from '#shared/domain/secret-hash.ts';
import { logger, MetricName, metrics } from '#shared/observability.ts';
import type { RecordSealer } from '#shared/ports/token-cipher.ts';
import type { NewConnection } from '#shared/ports/token-store.ts';
import type { TokenGrant, WiseProfile, WiseUser } from '#shared/ports/wise-oauth.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import {
  WiseError,
  WiseInvalidClientError,
  WiseInvalidGrantError,
  WiseRateLimitedError,
  WiseUnavailableError,
} from '#shared/wise/errors.ts';
import { publishStoredChange } from './publish-event.ts';
import { raiseFenceQuietly } from './refresh-record.ts';
import { replaceEarlierConnection } from './replaced-connection.ts';
import { pkceVerifier } from './start-authorization.ts';

/** What came back on the callback, already checked for shape by the handler. */
export type AuthorizationCallback =
  | { state: string; code: string; profileId?: number }
  | { state: string; error: string };

/** Why a callback was refused; each is a 400 page. */
export type RefusalReason =
  /**
   * No session has this state for this browser: it never existed, was already used, or was opened in
   * another browser.
   */
  | 'unknown_state'
  /** The browser brought no binding cookie: the flow did not start at the start URL in this browser. */
  | 'other_browser'
  | 'expired_state'
  /** The user declined on Wise's authorization page (`access_denied`). */
  | 'denied'
  /** Wise sent another OAuth error instead of a code. */
  | 'authorization_failed'
  /** Wise refused the code: expired or already used. */
  | 'code_rejected'
  /** The `profileId` Wise sent back is not one of the user's profiles. */
  | 'profile_not_owned';

/** What the session said about where the person came from. */
interface SessionFacts {
  connectionId: string;
  returnUrl?: string;
}

/** The callback's outcome. Expected failures are values; only the unexpected is thrown. */
export type AuthorizationResult =
  | ({ kind: 'connected'; connection: StoredConnection } & SessionFacts)
  /**
   * Wise granted; the connection waits for the partner's service to exchange `completionCode` (handed to
   * the return URL) before it becomes active.
   */
  | { kind: 'approved'; connectionId: string; returnUrl: string; completionCode: string }
  | { kind: 'refused'; reason: 'unknown_state' }
  | { kind: 'refused'; reason: 'other_browser' }
  | ({ kind: 'refused'; reason: Exclude<RefusalReason, 'unknown_state' | 'other_browser'> } & SessionFacts)
  /** Wise is down or rate limiting: the person should start again a little later. */
  | ({ kind: 'unavailable'; retryAfterSeconds: number } & SessionFacts)
  /** Wise refused the broker itself (its client credentials, or a request Wise calls malformed). */
  | ({ kind: 'failed'; reason: 'invalid_client' | 'wise_error' } & SessionFacts);

/** Time kept, before the invocation ends, to encrypt and store a grant Wise gave. */
export const STORE_RESERVE_MS = 3_000;
/** How long the user and profile lookups after a grant may take; they are optional. */
export const LOOKUP_BUDGET_MS = 6_000;

/** The Retry-After given when Wise did not say how long to wait. */
export const DEFAULT_RETRY_AFTER_SECONDS = 60;

/** How long a completion code waits for the partner's service to exchange it. */
export const COMPLETION_TTL_MS = 10 * 60 * 1000;

/**
 * Completes the authorization-code flow: consumes the session's state exactly once, and only from the
 * browser that opened its start URL (`browserSecret`, the cookie), exchanges the code (with the PKCE
 * verifier when `wise.pkce` is set), learns the Wise user and checks the profile. A session with a return
 * URL then keeps the grant's tokens, encrypted, waiting for the completion code it answers with; one without
 * stores the connection at once (replacing any earlier connection under the same id, a tombstone included).
 *
 * The new grant has already ended the user's previous refresh token, so once the exchange succeeded the
 * connection is stored even when Wise stays unavailable for `/v1/me` or `/v2/profiles` (after the client's
 * own retries): with the user unknown, and the profile of the callback's query kept unverified. A profile
 * the lookups show is not the user's is still refused.
 */
export async function completeAuthorization(
  runtime: Pick<Runtime, 'config' | 'store' | 'cipher' | 'wise' | 'clock' | 'random' | 'events'>,
  callback: AuthorizationCallback,
  options: { endsAt?: number; browserSecret?: string } = {},
): Promise<AuthorizationResult> {
  const { browserSecret } = options;
  // A callback without the cookie is refused before the store is touched: the session stays usable by
  // the browser that started it.
  if (browserSecret === undefined) return { kind: 'refused', reason: 'other_browser' };
  const session = await runtime.store.consumeConnectSession(hashSecret('state', callback.state), {
    browserHash: hashSecret('browser', browserSecret),
  });
  if (!session) return { kind: 'refused', reason: 'unknown_state' };
  const facts: SessionFacts = { connectionId: session.connectionId };
  if (session.returnUrl !== undefined) facts.returnUrl = session.returnUrl;
  if (runtime.clock.now() >= session.expiresAt) return { kind: 'refused', reason: 'expired_state', ...facts };
  if ('error' in callback) {
    const reason = callback.error === 'access_denied' ? 'denied' : 'authorization_failed';
    logger.info('Wise returned an error instead of a code', { connectionId: facts.connectionId, reason });
    return { kind: 'refused', reason, ...facts };
  }

  try {
    // Once Wise granted, the grant must be stored before the invocation ends: the exchange and the lookups
    // end early enough to leave time for that.
    const storeBy = options.endsAt === undefined ? undefined : options.endsAt - STORE_RESERVE_MS;
    // The data key is made before the code is exchanged: once Wise granted, nothing but the write follows.
    const prepared = await prepareConnectionWrite(runtime, session.connectionId);
    const grant = await runtime.wise.exchangeCode(
      {
        code: callback.code,
        ...(runtime.config.wise.pkce ? { codeVerifier: pkceVerifier(browserSecret) } : {}),
      },
      storeBy === undefined ? {} : { deadlineMs: storeBy - LOOKUP_BUDGET_MS },
    );
    const lookupsBy = Math.min(runtime.clock.now() + LOOKUP_BUDGET_MS, storeBy ?? Number.POSITIVE_INFINITY);
    const { user, profiles } = await lookUpAfterGrant(
      runtime,
      grant.accessToken,
      facts.connectionId,
      lookupsBy,
    );
    // Unverified, the query's profile is left out: the query is the browser's, so anyone could edit it.
    let profileId: number | undefined;
    if (profiles) {
      const profile = chooseProfile(profiles, callback.profileId);
      if (profile === null) {
        logger.warn("The callback named a profile that is not the Wise user's", {
          connectionId: facts.connectionId,
          userId: user?.id,
        });
        return { kind: 'refused', reason: 'profile_not_owned', ...facts };
      }
      profileId = profile?.id;
    } else {
      logger.warn(
        "Storing the connection without a profile: Wise did not list the user's profiles, so the callback's could not be verified",
        {
          connectionId: facts.connectionId,
          profileId: callback.profileId,
          profileVerified: false,
          userKnown: user !== undefined,
        },
      );
    }
    const granted: GrantedConnection = {
      connectionId: session.connectionId,
      grant: 'authorization_code',
      tokens: grant,
      ...(user ? { user } : {}),
      ...(profileId === undefined ? {} : { profileId }),
    };
    if (session.returnUrl !== undefined) {
      const completionCode = await keepForCompletion(
        runtime,
        newConnectionFrom(runtime, granted, prepared.sealer),
      );
      return {
        kind: 'approved',
        completionCode,
        connectionId: session.connectionId,
        returnUrl: session.returnUrl,
      };
    }
    const connection = await storeGrantedConnection(runtime, granted, prepared);
    return { kind: 'connected', connection, ...facts };
  } catch (error) {
    const failure = classifyWiseFailure(error);
    if (!failure) throw error;
    const details = {
      connectionId: facts.connectionId,
      failure: failure.kind,
      error: error instanceof WiseError ? error.name : undefined,
      wiseError: error instanceof WiseError ? error.wiseError : undefined,
      traceId: error instanceof WiseError ? error.traceId : undefined,
    };
    if (failure.kind === 'invalid_client') {
      // The operator alarm: the client id or secret in Secrets Manager is wrong or revoked.
      metrics.addMetric(MetricName.invalidClient, MetricUnit.Count, 1);
      logger.error(
        "Wise rejected the broker's client credentials; the operator must check the Wise secret",
        details,
      );
    } else {
      logger.warn('Completing the authorization failed at Wise', details);
    }
    switch (failure.kind) {
      case 'invalid_grant':
        return { kind: 'refused', reason: 'code_rejected', ...facts };
      case 'unavailable':
        return { kind: 'unavailable', retryAfterSeconds: failure.retryAfterSeconds, ...facts };
      default:
        return { kind: 'failed', reason: failure.kind, ...facts };
    }
  }
}

/** How a failure at Wise is handled by a grant; `undefined` for anything that is not a Wise failure. */
export type WiseFailure =
  | { kind: 'invalid_grant' }
  | { kind: 'unavailable'; retryAfterSeconds: number }
  | { kind: 'invalid_client' }
  | { kind: 'wise_error' };

/** Sorts a thrown error into the ways a grant can fail at Wise. */
export function classifyWiseFailure(error: unknown): WiseFailure | undefined {
  if (error instanceof WiseInvalidGrantError) return { kind: 'invalid_grant' };
  if (error instanceof WiseRateLimitedError) {
    return { kind: 'unavailable', retryAfterSeconds: error.retryAfterSeconds };
  }
  if (error instanceof WiseUnavailableError) {
    return { kind: 'unavailable', retryAfterSeconds: error.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS };
  }
  if (error instanceof WiseInvalidClientError) return { kind: 'invalid_client' };
  if (error instanceof WiseError) return { kind: 'wise_error' };
  return undefined;
}

/**
 * The Wise user and their profiles after a grant; either is `undefined` when its lookup failed, whatever
 * the reason: the grant has already ended the user's previous refresh token, so nothing may stop it from
 * being stored.
 */
export async function lookUpAfterGrant(
  runtime: Pick<Runtime, 'wise'>,
  accessToken: string,
  connectionId: string,
  deadlineMs: number,
): Promise<{ user?: WiseUser; profiles?: WiseProfile[] }> {
  const [user, profiles] = await Promise.allSettled([
    runtime.wise.getCurrentUser(accessToken, { deadlineMs }),
    runtime.wise.listProfiles(accessToken, { deadlineMs }),
  ]);
  const found: { user?: WiseUser; profiles?: WiseProfile[] } = {};
  for (const [lookup, outcome] of [
    ['user', user],
    ['profiles', profiles],
  ] as const) {
    if (outcome.status === 'fulfilled') continue;
    logger.warn('A lookup after the grant failed; going on without it', {
      connectionId,
      lookup,
      failure: classifyWiseFailure(outcome.reason)?.kind,
      error: outcome.reason instanceof Error ? outcome.reason.name : typeof outcome.reason,
      traceId: outcome.reason instanceof WiseError ? outcome.reason.traceId : undefined,
    });
  }
  if (user.status === 'fulfilled') found.user = user.value;
  if (profiles.status === 'fulfilled') found.profiles = profiles.value;
  return found;
}

/**
 * The profile a connection acts for: the requested one when it is the user's (`null` when it is not),
 * otherwise the personal profile, otherwise the first; `undefined` when the user has no profile at all.
 */
export function chooseProfile(
  profiles: readonly WiseProfile[],
  requestedId: number | undefined,
): WiseProfile | null | undefined {
  if (requestedId !== undefined) return profiles.find((profile) => profile.id === requestedId) ?? null;
  return profiles.find((profile) => profile.type.toLowerCase() === 'personal') ?? profiles[0];
}

/** What a grant produced and what the broker learned about the user. */
export interface GrantedConnection {
  connectionId: string;
  grant: GrantType;
  tokens: TokenGrant;
  /** Absent when Wise could not say who the user is: the connection is stored without a user id. */
  user?: WiseUser;
  profileId?: number;
  /** Registration-code connections only: kept encrypted so the refresh can grant again after invalid_grant. */
  registration?: { email: string; registrationCode: string };
  /** The refresh token came from another system (`POST /connections/{id}/import`). */
  imported?: boolean;
}

/**
 * A stored connection; `replacedConnectionId` when the same Wise user was connected under that other id,
 * which this grant ended (see {@link replaceEarlierConnection}).
 */
export type StoredConnection = ConnectionRecord & { replacedConnectionId?: string };

/** How often a save is retried when another writer changed the connection in between. */
const SAVE_ATTEMPTS = 3;

/**
 * Tries at the first write of a grant Wise just issued, beyond the SDK's own retries: the grant has already
 * ended the one it replaces at Wise, so a write failed by a throttled or briefly unavailable table is tried
 * again (pauses of 0.2, 0.4 and 0.8 s), as a refresh's write is.
 */
export const GRANT_WRITE_ATTEMPTS = 4;
const GRANT_WRITE_RETRY_BASE_MS = 200;

/**
 * What storing a grant needs, made before Wise is called: the version the grant will replace and a data
 * key for the generation it will write. With it, nothing but the store's write follows Wise's answer.
 */
export interface PreparedConnectionWrite {
  connectionId: string;
  /** The stored record's version (`undefined`: none), the save's condition. */
  expectedVersion: number | undefined;
  /** The replaced record's status, for the log. */
  replaces?: ConnectionRecord['status'];
  sealer: RecordSealer;
}

/**
 * Reads the connection a grant will replace and makes the data key of the generation after it: above the
 * stored generation and at least the fence (which outlives a tombstone the table's TTL removed).
 */
export async function prepareConnectionWrite(
  runtime: Pick<Runtime, 'store' | 'cipher'>,
  connectionId: string,
): Promise<PreparedConnectionWrite> {
  const record: RecordKey = { kind: 'connection', connectionId };
  const current = await runtime.store.getConnection(connectionId);
  const fence = current ? current.minimumGeneration : await runtime.store.getFence(record);
  const sealer = await runtime.cipher.prepare({
    record,
    generation: Math.max(current?.generation ?? 0, (fence ?? 0) - 1) + 1,
  });
  const prepared: PreparedConnectionWrite = { connectionId, expectedVersion: current?.version, sealer };
  if (current) prepared.replaces = current.status;
  return prepared;
}

/**
 * Seals a grant's tokens with the prepared data key and stores the connection, replacing whatever was
 * stored (tokens of an earlier grant, a tombstone): the new grant has already made the old refresh token
 * useless. The first write follows at once; only when another writer changed the connection meanwhile is
 * it sealed again for the generation after the new one and retried. Then publishes "Connection Connected".
 */
export async function storeGrantedConnection(
  runtime: Pick<Runtime, 'config' | 'store' | 'cipher' | 'clock' | 'random' | 'events'> & GrantWriteDeps,
  granted: GrantedConnection,
  prepared: PreparedConnectionWrite,
): Promise<StoredConnection> {
  const options = { imported: granted.imported === true };
  const connection = newConnectionFrom(runtime, granted, prepared.sealer);
  const saved = await writingGrant(runtime, granted.connectionId, () =>
    runtime.store.saveConnection(connection, {
      expectedVersion: prepared.expectedVersion,
      now: runtime.clock.now(),
    }),
  );
  if (saved) return stored(runtime, saved, prepared.replaces, options);
  // Also when an earlier try landed and only its answer was lost: the save then sees its own write.
  return saveNewConnection(runtime, connection, options);
}

/** How the tries at a new grant's write pause; injectable, as a refresh's are. */
export interface GrantWriteDeps {
  sleep?: (ms: number) => Promise<void>;
}

/** Runs the first write of a new grant, retrying a throw up to {@link GRANT_WRITE_ATTEMPTS} tries. */
async function writingGrant<T>(
  deps: GrantWriteDeps,
  connectionId: string,
  write: () => Promise<T>,
): Promise<T> {
  const sleep = deps.sleep ?? ((ms: number) => delay(ms));
  for (let tries = 1; ; tries++) {
    try {
      return await write();
    } catch (error) {
      if (tries >= GRANT_WRITE_ATTEMPTS) throw error;
      logger.warn('Failed to store a new grant; retrying', {
        connectionId,
        tries,
        error: error instanceof Error ? error.name : typeof error,
      });
      await sleep(GRANT_WRITE_RETRY_BASE_MS * 2 ** (tries - 1));
    }
  }
}

/**
 * Keeps a granted connection, its tokens already sealed for the connection's record, until the partner's
 * service exchanges the completion code; returns the code. Only the code's hash is stored.
 */
async function keepForCompletion(
  runtime: Pick<Runtime, 'store' | 'clock'> & GrantWriteDeps,
  connection: NewConnection,
): Promise<string> {
  const completionCode = newSecret();
  const now = runtime.clock.now();
  await writingGrant(runtime, connection.connectionId, () =>
    runtime.store.putPendingCompletion({
      codeHash: hashSecret('completion', completionCode),
      connection,
      expiresAt: now + COMPLETION_TTL_MS,
      createdAt: now,
    }),
  );
  logger.info('Connection approved at Wise; waiting for the completion code', {
    connectionId: connection.connectionId,
  });
  return completionCode;
}

/** A grant's tokens sealed with a prepared data key, as the connection they make (no I/O). */
function newConnectionFrom(
  runtime: Pick<Runtime, 'config' | 'clock' | 'random'>,
  granted: GrantedConnection,
  sealer: RecordSealer,
): NewConnection {
  const { tokens } = granted;
  const issuedAt = runtime.clock.now();
  const connection: NewConnection = {
    connectionId: granted.connectionId,
    status: 'active',
    grant: granted.grant,
    generation: sealer.binding.generation,
    dataKey: sealer.dataKey,
    accessToken: sealer.seal(tokens.accessToken, 'access_token'),
    accessTokenExpiresAt: tokens.expiresAt,
    nextRefreshAt: nextRefreshAt(issuedAt, tokens.expiresAt, runtime.config.refresh.fraction, runtime.random),
    lastRefreshAt: issuedAt,
  };
  if (granted.user !== undefined) connection.userId = granted.user.id;
  if (tokens.scope !== undefined) connection.scope = tokens.scope;
  if (tokens.refreshToken !== undefined)
    connection.refreshToken = sealer.seal(tokens.refreshToken, 'refresh_token');
  if (tokens.refreshTokenExpiresAt !== undefined)
    connection.refreshTokenExpiresAt = tokens.refreshTokenExpiresAt;
  if (granted.profileId !== undefined) connection.profileId = granted.profileId;
  if (granted.registration) {
    connection.email = granted.registration.email;
    connection.registrationCode = sealer.seal(granted.registration.registrationCode, 'registration_code');
  }
  return connection;
}

/**
 * Stores a new connection, replacing whatever was stored under its id. When the stored generation or the
 * fence has reached the connection's own (a refresh or a disconnect since it was sealed, as with a
 * completion code exchanged later), its secrets are sealed again for the generation after the stored one.
 * Then publishes "Connection Connected".
 */
export async function saveNewConnection(
  runtime: Pick<Runtime, 'store' | 'clock' | 'cipher' | 'events'>,
  sealed: NewConnection,
  options: { imported?: boolean } = {},
): Promise<StoredConnection> {
  const record: RecordKey = { kind: 'connection', connectionId: sealed.connectionId };
  let connection = sealed;
  for (let attempt = 1; attempt <= SAVE_ATTEMPTS; attempt++) {
    const current = await runtime.store.getConnection(connection.connectionId);
    const fence = current ? current.minimumGeneration : await runtime.store.getFence(record);
    const floor = Math.max(current?.generation ?? 0, (fence ?? 0) - 1) + 1;
    if (connection.generation < floor) connection = await sealAgain(runtime, record, connection, floor);
    const saved = await runtime.store.saveConnection(connection, {
      expectedVersion: current?.version,
      now: runtime.clock.now(),
    });
    if (saved) return stored(runtime, saved, current?.status, options);
  }
  throw new BrokerError(
    `Connection "${connection.connectionId}" kept changing while its new tokens were being stored; connect it again.`,
  );
}

/** The connection's secrets opened under their generation and sealed under a new data key for another. */
async function sealAgain(
  runtime: Pick<Runtime, 'cipher'>,
  record: RecordKey,
  connection: NewConnection,
  generation: number,
): Promise<NewConnection> {
  const opener = await runtime.cipher.open(connection.dataKey, { record, generation: connection.generation });
  const sealer = await runtime.cipher.prepare({ record, generation });
  const again: NewConnection = { ...connection, generation, dataKey: sealer.dataKey };
  for (const [field, kind] of [
    ['accessToken', 'access_token'],
    ['refreshToken', 'refresh_token'],
    ['registrationCode', 'registration_code'],
  ] as const) {
    const ciphertext = connection[field];
    if (ciphertext) again[field] = sealer.seal(opener.open(ciphertext, kind), kind);
  }
  return again;
}

/**
 * A connection just stored: its fence raised to its generation, the log line and the event, then the Wise
 * user's link, which marks the user's earlier connection replaced.
 */
async function stored(
  runtime: Pick<Runtime, 'store' | 'events' | 'clock'>,
  saved: ConnectionRecord,
  replaced: ConnectionRecord['status'] | undefined,
  options: { imported?: boolean },
): Promise<StoredConnection> {
  await raiseFenceQuietly(
    runtime,
    { kind: 'connection', connectionId: saved.connectionId },
    saved.generation,
  );
  logger.info('Connection stored', {
    connectionId: saved.connectionId,
    grant: saved.grant,
    generation: saved.generation,
    replaced,
  });
  await publishStoredChange(runtime.events, 'connected', saved.connectionId, (events) =>
    events.connected({
      connectionId: saved.connectionId,
      grant: saved.grant,
      imported: options.imported === true,
      ...(saved.profileId === undefined ? {} : { profileId: saved.profileId }),
      generation: saved.generation,
      ...(replaced ? { previousStatus: replaced } : {}),
      at: saved.updatedAt,
    }),
  );
  const replacedConnectionId =
    saved.userId === undefined
      ? undefined
      : await replaceEarlierConnection(runtime, saved.userId, saved.connectionId);
  return replacedConnectionId === undefined ? saved : { ...saved, replacedConnectionId };
}
