import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { BrokerError } from '#shared/domain/errors.ts';
import type { ConnectionRecord, GrantType, RecordKey } from '#shared/domain/records.ts';
import { nextRefreshAt } from '#shared/domain/refresh-rule.ts';
import { hashSecret, newSecret } from '#shared/domain/secret-hash.ts';
import { logger, MetricName, metrics } from '#shared/observability.ts';
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
      const completionCode = await keepForCompletion(runtime, await newConnectionFrom(runtime, granted));
      return {
        kind: 'approved',
        completionCode,
        connectionId: session.connectionId,
        returnUrl: session.returnUrl,
      };
    }
    const connection = await storeGrantedConnection(runtime, granted);
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
 * The Wise user and their profiles after a grant; either is `undefined` when Wise stayed unavailable for
 * it. Any other failure is thrown.
 */
async function lookUpAfterGrant(
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
    if (classifyWiseFailure(outcome.reason)?.kind !== 'unavailable') throw outcome.reason;
    logger.warn('Wise stayed unavailable for a lookup after the grant; going on without it', {
      connectionId,
      lookup,
      error: outcome.reason instanceof WiseError ? outcome.reason.name : undefined,
      traceId: outcome.reason instanceof WiseError ? outcome.reason.traceId : undefined,
    });
  }
  if (user.status === 'fulfilled') found.user = user.value;
  if (profiles.status === 'fulfilled') found.profiles = profiles.value;
  return found;
}

/** The Wise user behind a fresh access token and their profiles. */
export async function learnUser(
  runtime: Pick<Runtime, 'wise'>,
  accessToken: string,
): Promise<{ user: WiseUser; profiles: WiseProfile[] }> {
  const [user, profiles] = await Promise.all([
    runtime.wise.getCurrentUser(accessToken),
    runtime.wise.listProfiles(accessToken),
  ]);
  return { user, profiles };
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
 * Encrypts a grant's tokens for their record and stores the connection, replacing whatever was stored
 * (tokens of an earlier grant, a tombstone): the new grant has already made the old refresh token useless.
 * Then publishes "Connection Connected".
 */
export async function storeGrantedConnection(
  runtime: Pick<Runtime, 'config' | 'store' | 'cipher' | 'clock' | 'random' | 'events'>,
  granted: GrantedConnection,
): Promise<StoredConnection> {
  return saveNewConnection(runtime, await newConnectionFrom(runtime, granted), {
    imported: granted.imported === true,
  });
}

/**
 * Keeps a granted connection, its tokens already encrypted for the connection's record, until the
 * partner's service exchanges the completion code; returns the code. Only the code's hash is stored.
 */
async function keepForCompletion(
  runtime: Pick<Runtime, 'store' | 'clock'>,
  connection: NewConnection,
): Promise<string> {
  const completionCode = newSecret();
  const now = runtime.clock.now();
  await runtime.store.putPendingCompletion({
    codeHash: hashSecret('completion', completionCode),
    connection,
    expiresAt: now + COMPLETION_TTL_MS,
    createdAt: now,
  });
  logger.info('Connection approved at Wise; waiting for the completion code', {
    connectionId: connection.connectionId,
  });
  return completionCode;
}

/** A grant's tokens encrypted for their connection's record, as the connection they make. */
async function newConnectionFrom(
  runtime: Pick<Runtime, 'config' | 'cipher' | 'clock' | 'random'>,
  granted: GrantedConnection,
): Promise<NewConnection> {
  const record: RecordKey = { kind: 'connection', connectionId: granted.connectionId };
  const { tokens } = granted;
  const issuedAt = runtime.clock.now();
  const connection: NewConnection = {
    connectionId: granted.connectionId,
    status: 'active',
    grant: granted.grant,
    accessToken: await runtime.cipher.encrypt(tokens.accessToken, { record, kind: 'access_token' }),
    accessTokenExpiresAt: tokens.expiresAt,
    nextRefreshAt: nextRefreshAt(issuedAt, tokens.expiresAt, runtime.config.refresh.fraction, runtime.random),
    lastRefreshAt: issuedAt,
  };
  if (granted.user !== undefined) connection.userId = granted.user.id;
  if (tokens.scope !== undefined) connection.scope = tokens.scope;
  if (tokens.refreshToken !== undefined) {
    connection.refreshToken = await runtime.cipher.encrypt(tokens.refreshToken, {
      record,
      kind: 'refresh_token',
    });
  }
  if (tokens.refreshTokenExpiresAt !== undefined)
    connection.refreshTokenExpiresAt = tokens.refreshTokenExpiresAt;
  if (granted.profileId !== undefined) connection.profileId = granted.profileId;
  if (granted.registration) {
    connection.email = granted.registration.email;
    connection.registrationCode = await runtime.cipher.encrypt(granted.registration.registrationCode, {
      record,
      kind: 'registration_code',
    });
  }

  return connection;
}

/** Stores a new connection, replacing whatever was stored under its id; then publishes "Connection Connected". */
export async function saveNewConnection(
  runtime: Pick<Runtime, 'store' | 'clock' | 'events'>,
  connection: NewConnection,
  options: { imported?: boolean } = {},
): Promise<StoredConnection> {
  for (let attempt = 1; attempt <= SAVE_ATTEMPTS; attempt++) {
    const current = await runtime.store.getConnection(connection.connectionId);
    const saved = await runtime.store.saveConnection(connection, {
      expectedVersion: current?.version,
      now: runtime.clock.now(),
    });
    if (saved) {
      logger.info('Connection stored', {
        connectionId: saved.connectionId,
        grant: saved.grant,
        generation: saved.generation,
        replaced: current?.status,
      });
      await publishStoredChange(runtime.events, 'connected', saved.connectionId, (events) =>
        events.connected({
          connectionId: saved.connectionId,
          grant: saved.grant,
          imported: options.imported === true,
          ...(saved.profileId === undefined ? {} : { profileId: saved.profileId }),
          generation: saved.generation,
          ...(current ? { previousStatus: current.status } : {}),
          at: saved.updatedAt,
        }),
      );
      const replaced =
        connection.userId === undefined
          ? undefined
          : await replaceEarlierConnection(runtime, connection.userId, saved.connectionId);
      return replaced === undefined ? saved : { ...saved, replacedConnectionId: replaced };
    }
  }
  throw new BrokerError(
    `Connection "${connection.connectionId}" kept changing while its new tokens were being stored; connect it again.`,
  );
}
