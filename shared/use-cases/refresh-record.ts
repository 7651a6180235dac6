import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { BrokerConfig } from '#shared/config/broker-config.ts';
import { BrokerError, RolledBackRecordError } from '#shared/domain/errors.ts';
import type { ConnectionRecord, RecordKey, TokenState } from '#shared/domain/records.ts';
import {
  backoff,
  backoffRemaining,
  nextRefreshAt,
  type RefreshDemand,
  refreshNeeded,
} from '#shared/domain/refresh-rule.ts';
import { lifeLeftMs, refreshLatenessMs } from '#shared/domain/refresh-slo.ts';
import {
  countByDimension,
  logger,
  MetricName,
  metrics,
  type RefusalClass,
  recordKeys,
} from '#shared/observability.ts';
import type { RecordSealer } from '#shared/ports/token-cipher.ts';
import type { FailureUpdate, TokenUpdate } from '#shared/ports/token-store.ts';
import type { TokenGrant, WiseCallOptions } from '#shared/ports/wise-oauth.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import {
  WiseError,
  WiseInvalidClientError,
  WiseInvalidGrantError,
  WiseRateLimitedError,
  WiseUnavailableError,
} from '#shared/wise/errors.ts';
import { publishStoredChange } from './publish-event.ts';
import { checkRejection, type RejectionVerdict, refreshOnlyForRejection } from './rejection-check.ts';

/** A record as the store hands it out under a lease: a connection, or the client token's state. */
export type StoredRecord = TokenState & Partial<ConnectionRecord>;

/**
 * What one refresh attempt came to. Expected outcomes are values; only the unexpected (a ciphertext
 * that does not decrypt, a store that keeps failing) is thrown.
 */
export type RefreshOutcome =
  /** Wise granted a new token and it is stored; `accessToken` is its plaintext, for the vend at hand. */
  | { outcome: 'refreshed'; record: StoredRecord; accessToken: string }
  /** Under the lease the record turned out not to need a refresh (someone else just did it). */
  | { outcome: 'not_needed'; record: StoredRecord }
  /** Another attempt holds the lease; `record` is what the store holds now. */
  | { outcome: 'busy'; record: StoredRecord }
  /** Nothing to refresh: unknown, disconnected (a tombstone), or the lease was lost before the write. */
  | { outcome: 'gone' }
  /** Wise refused the grant (`invalid_grant`): the connection is marked and the Wise user must authorize again. */
  | { outcome: 'needs_reauth' }
  /**
   * Wise is unavailable or rate limiting (or refused the request), or the record still backs off after such
   * a failure: try again after `retryAfterSeconds`. `rateLimited` when Wise answered 429 just now.
   */
  | { outcome: 'failed_transient'; retryAfterSeconds: number; rateLimited: boolean }
  /** Wise rejected the partner's client credentials: an operator problem; nothing was marked. */
  | { outcome: 'invalid_client'; retryAfterSeconds: number };

/** What a refresh needs from the runtime; `sleep` is injectable for the write retries. */
export type RefreshDeps = Pick<
  Runtime,
  'store' | 'cipher' | 'wise' | 'events' | 'clock' | 'random' | 'instanceId'
> & {
  config: { refresh: Pick<BrokerConfig['refresh'], 'fraction' | 'leaseSeconds'> };
  sleep?: (ms: number) => Promise<void>;
};

export interface RefreshOptions {
  /**
   * Why a vend asks; re-checked under the lease. Absent (the sweep), the record is refreshed only when it
   * is due or its token is gone or expired.
   */
  demand?: RefreshDemand;
  /** Epoch ms by which the call to Wise must be over; the lease and `invocationEndsAt` bound it too. */
  deadlineMs?: number;
  /**
   * Epoch ms when the invocation running the refresh ends (a Lambda's remaining time, a request's
   * deadline): the call to Wise ends {@link STORE_RESERVE_MS} before it and no write starts in its last
   * second, so what Wise answered is stored before the invocation is cut off. Unbounded when absent.
   */
  invocationEndsAt?: number;
  /**
   * How the calls to Wise treat a 429 (see {@link WiseCallOptions}); the sweep stops retrying and hears of
   * it at once. Absent (a vend), the Wise client's own retries apply.
   */
  rateLimits?: Pick<WiseCallOptions, 'retryRateLimited' | 'onRateLimited'>;
}

/** The refreshed token came back from Wise but could not be stored before the lease ran out. */
export class RefreshNotStoredError extends BrokerError {}

/** Tries at writing a refresh's result; the lease and the invocation's end bound them too. */
export const WRITE_ATTEMPTS = 4;
const WRITE_RETRY_BASE_MS = 200;

/** Time kept back from a refresh's call to Wise, before the invocation ends, for storing its answer. */
export const STORE_RESERVE_MS = 5_000;

/** No write of a refresh starts this close to the end of the invocation. */
const LAST_WRITE_MARGIN_MS = 1_000;

/**
 * Refreshes one record, a connection or the client token, exactly once across every instance:
 *
 * 1. takes the record's lease (a conditional write; the lease is `refresh.leaseSeconds` long, and the call
 *    to Wise gets a deadline at half of it, so the lease outlives the longest refresh, and ends
 *    {@link STORE_RESERVE_MS} before the invocation does);
 * 2. re-checks the need on the leased record, and gives the lease back when someone else already did it
 *    or when the record is backing off after a failure (a vend may ask for an expired or rejected token),
 *    and when only a caller's reported rejection asks for it and {@link checkRejection} does not honour it;
 * 3. asks Wise (refresh token grant; the client-credentials grant for the client token; the stored
 *    registration code again when a registration-code connection's refresh token is refused);
 * 4. encrypts what Wise returned (the old refresh token stays when Wise returned none) and writes it with
 *    the generation + 1 and the next refresh time, only while the lease is still held.
 *
 * A write that fails after Wise answered is retried while the lease and the invocation last, so the newest
 * refresh token is not lost to a transient failure; a write whose answer was lost is recognised by reading
 * the record back.
 * Failures are classified: `invalid_grant` publishes the reauthorization event and then marks the
 * connection `needs_reauth`; `invalid_client` alarms the operator and marks nothing; 429, 5xx and timeouts
 * back off with jitter, honouring `Retry-After`, and keep the still-valid token.
 *
 * The reauthorization event is delivered at least once: when it cannot be published the connection stays
 * active and backs off, and the next attempt (meeting `invalid_grant` again) publishes it; when the mark
 * fails after the event went out, the next attempt publishes it again. Consumers may therefore see the
 * same event more than once (same `connectionId`, later `at`), and rarely one for a connection that was
 * disconnected meanwhile; they should treat it as idempotent.
 */
export async function refreshRecord(
  deps: RefreshDeps,
  key: RecordKey,
  options: RefreshOptions = {},
): Promise<RefreshOutcome> {
  try {
    return await attemptRefresh(deps, key, options);
  } catch (error) {
    // A store, KMS or Secrets Manager that keeps failing past the SDK's retries fails the refresh as surely
    // as Wise does: counted, so the refresh alarms see an AWS outage too. A lost grant is counted where it
    // was lost.
    if (!(error instanceof RefreshNotStoredError)) {
      metrics.addMetric(MetricName.refreshFailed, MetricUnit.Count, 1);
    }
    throw error;
  }
}

async function attemptRefresh(
  deps: RefreshDeps,
  key: RecordKey,
  options: RefreshOptions,
): Promise<RefreshOutcome> {
  const leaseMs = deps.config.refresh.leaseSeconds * 1000;
  const owner = `${deps.instanceId}:${randomUUID()}`;
  const startedAt = deps.clock.now();
  let leased = await deps.store.acquireLease(key, { owner, now: startedAt, leaseMs });
  if (!leased) {
    const current = await readRecord(deps, key);
    // A lease write that landed although its answer was lost: the SDK resent it and met this very lease.
    if (current?.lease?.owner !== owner) return withoutLease(key, current);
    leased = current;
  }

  const leaseEndsAt = startedAt + leaseMs;
  const invocationEndsAt = options.invocationEndsAt ?? Number.POSITIVE_INFINITY;
  const attempt: Attempt = {
    deps,
    key,
    owner,
    leased,
    startedAt,
    // Writes stop a tenth of the lease before it ends, so a write never lands after a takeover, and a
    // second before the invocation ends, so none is cut off halfway.
    writeDeadline: Math.min(
      leaseEndsAt - Math.max(1_000, Math.floor(leaseMs / 10)),
      invocationEndsAt - LAST_WRITE_MARGIN_MS,
    ),
    sleep: deps.sleep ?? ((ms) => delay(ms)),
  };
  if (!refreshNeeded(leased, startedAt, options.demand)) {
    await releaseQuietly(attempt);
    logger.debug('Refresh not needed under the lease', {
      ...recordKeys(key),
      generation: leased.generation,
    });
    return { outcome: 'not_needed', record: leased };
  }
  const backingOffMs = backoffRemaining(leased, startedAt);
  if (backingOffMs > 0) {
    await releaseQuietly(attempt);
    return {
      outcome: 'failed_transient',
      retryAfterSeconds: Math.ceil(backingOffMs / 1000),
      rateLimited: false,
    };
  }
  if (refreshOnlyForRejection(leased, startedAt, options.demand)) {
    // Only a caller's word asks for a new token: check it before killing the one others were promised.
    let verdict: RejectionVerdict;
    try {
      verdict = await checkRejection(deps, key, leased);
    } catch (error) {
      await releaseQuietly(attempt);
      throw error;
    }
    if (!verdict.honour) {
      await releaseQuietly(attempt);
      return { outcome: 'not_needed', record: leased };
    }
  }

  // Everything the write of Wise's answer needs is made before Wise is called: the stored secrets opened,
  // a new data key for the next generation, and the refresh token to be spent recorded on the record.
  // Between Wise's answer and the durable write there is then nothing but that write.
  let prepared: Prepared;
  try {
    prepared = await prepare(attempt);
  } catch (error) {
    await releaseQuietly(attempt);
    throw error;
  }
  if (!prepared.spendingRecorded) return { outcome: 'gone' };

  const wiseDeadline = Math.min(
    startedAt + Math.floor(leaseMs / 2),
    options.deadlineMs ?? Number.POSITIVE_INFINITY,
    invocationEndsAt - STORE_RESERVE_MS,
  );
  let granted: Granted;
  try {
    granted = await askWise(attempt, prepared, { ...options.rateLimits, deadlineMs: wiseDeadline });
  } catch (error) {
    if (error instanceof WiseError) return failed(attempt, prepared, error);
    await releaseQuietly(attempt);
    throw error;
  }
  return storeGrant(attempt, prepared, granted);
}

/** What a refresh readies before it calls Wise. */
interface Prepared {
  /** The stored refresh token and registration code, opened. */
  refreshToken?: string;
  registrationCode?: string;
  /** A data key for the generation the write will produce. */
  sealer: RecordSealer;
  /** The fingerprint of the refresh token about to be spent, recorded on the record. */
  fingerprint?: string;
  /** `false` when the lease was lost before the refresh token could be recorded as spent. */
  spendingRecorded: boolean;
  /** Set when Wise refused the refresh token and the registration code was granted instead. */
  regranted?: boolean;
}

/**
 * A fingerprint of a refresh token: the first 128 bits of its SHA-256. It names the token on the record
 * (which one is being spent) without revealing it; a token is far too long and random to be guessed back.
 */
export function refreshTokenFingerprint(refreshToken: string): string {
  return createHash('sha256').update(refreshToken, 'utf8').digest('base64url').slice(0, 22);
}

async function prepare(attempt: Attempt): Promise<Prepared> {
  const { deps, key, leased, owner } = attempt;
  assertCurrent(key, leased);
  const prepared: Prepared = {
    sealer: await deps.cipher.prepare({ record: key, generation: leased.generation + 1 }),
    spendingRecorded: true,
  };
  if (key.kind !== 'connection' || !leased.dataKey) return prepared;
  if (!leased.refreshToken && !leased.registrationCode) return prepared;
  const opener = await deps.cipher.open(leased.dataKey, { record: key, generation: leased.generation });
  if (leased.refreshToken) {
    prepared.refreshToken = opener.open(leased.refreshToken, 'refresh_token');
    prepared.fingerprint = refreshTokenFingerprint(prepared.refreshToken);
    prepared.spendingRecorded = await deps.store.markSpending(key, {
      owner,
      now: deps.clock.now(),
      spending: { fingerprint: prepared.fingerprint, at: deps.clock.now() },
    });
  }
  if (leased.registrationCode)
    prepared.registrationCode = opener.open(leased.registrationCode, 'registration_code');
  return prepared;
}

interface Attempt {
  deps: RefreshDeps;
  key: RecordKey;
  owner: string;
  leased: StoredRecord;
  /** Epoch ms when the lease was taken. */
  startedAt: number;
  /** Epoch ms after which no write is started. */
  writeDeadline: number;
  sleep: (ms: number) => Promise<void>;
}

interface Granted {
  grant: TokenGrant;
  via: 'refresh_token' | 'registration_code' | 'client_credentials';
}

/** Why the lease could not be taken: another holder, a record that cannot be refreshed, or none at all. */
function withoutLease(key: RecordKey, current: StoredRecord | undefined): RefreshOutcome {
  if (!current || current.status === 'disconnected') return { outcome: 'gone' };
  if (current.status === 'needs_reauth') return { outcome: 'needs_reauth' };
  logger.debug('Refresh busy: another attempt holds the lease', { ...recordKeys(key) });
  return { outcome: 'busy', record: current };
}

async function askWise(attempt: Attempt, prepared: Prepared, call: WiseCallOptions): Promise<Granted> {
  const { deps, key, leased } = attempt;
  if (key.kind === 'client') {
    return { grant: await deps.wise.clientCredentials(call), via: 'client_credentials' };
  }
  const { refreshToken, registrationCode } = prepared;
  const regrantable = leased.grant === 'registration_code' && registrationCode !== undefined && leased.email;
  if (refreshToken !== undefined) {
    try {
      return { grant: await deps.wise.refresh({ refreshToken }, call), via: 'refresh_token' };
    } catch (error) {
      if (!(error instanceof WiseInvalidGrantError) || !regrantable) throw error;
      prepared.regranted = true;
      logger.warn('Wise refused the refresh token; granting again with the stored registration code', {
        ...recordKeys(key),
        traceId: error.traceId,
      });
    }
  }
  if (regrantable && registrationCode !== undefined && leased.email) {
    const grant = await deps.wise.registrationCodeGrant({ email: leased.email, registrationCode }, call);
    return { grant, via: 'registration_code' };
  }
  throw new WiseInvalidGrantError(
    'The connection holds no refresh token, so the Wise user must authorize again.',
    {
      wiseError: 'invalid_grant',
    },
  );
}

async function failed(attempt: Attempt, prepared: Prepared, error: WiseError): Promise<RefreshOutcome> {
  const { deps, key, leased } = attempt;
  const now = deps.clock.now();
  const failureCount = leased.failureCount + 1;
  const attrs = {
    ...recordKeys(key),
    traceId: error.traceId,
    correlationId: error.correlationId,
    status: error.status,
    failureCount,
  };
  metrics.addMetric(MetricName.refreshFailed, MetricUnit.Count, 1);
  countByDimension(MetricName.refreshRefused, 'class', refusalClass(error));

  if (error instanceof WiseInvalidGrantError && key.kind === 'connection') {
    if (!(await stillLeased(attempt))) {
      // A new grant, a disconnect or a takeover replaced the leased record while Wise was asked: Wise
      // refused a refresh token the connection no longer relies on, which says nothing about it.
      logger.warn('Wise refused a refresh token the connection no longer holds; nothing is marked', {
        ...attrs,
        outcome: 'gone',
      });
      return { outcome: 'gone' };
    }
    const lost = lostRefreshToken(attempt, prepared, error);
    const reason = lost ? LOST_REFRESH_TOKEN : 'invalid_grant';
    metrics.addMetric(MetricName.reauthorizationRequired, MetricUnit.Count, 1);
    if (lost) {
      // Not the user's doing: an earlier attempt spent this refresh token at Wise and its answer was never
      // stored (the process died, or the answer or the write was lost). Operators alarm on this metric.
      metrics.addMetric(MetricName.connectionLostToCrash, MetricUnit.Count, 1);
      logger.error(
        'Wise refused a refresh token that an earlier attempt had already spent without storing its answer: the connection was lost by the broker, not revoked by the user',
        { ...attrs, spentAt: leased.spending?.at },
      );
    }
    // The event goes out before the mark: a marked connection leaves the due index and nothing would
    // publish for it again. Until the event is out the connection stays active and due, and the next
    // attempt meets invalid_grant again and publishes then.
    if (!(await publishReauthorization(deps, key.connectionId, reason, now, attrs))) {
      const waitMs = backoff(failureCount, deps.random);
      const written = await recordFailure(attempt, {
        lastError: {
          code: reason,
          message: 'Wise refused the grant; the reauthorization event is published on the next attempt.',
          at: now,
        },
        failureCount,
        nextRefreshAt: now + waitMs,
      });
      return written === 'lost'
        ? { outcome: 'gone' }
        : {
            outcome: 'failed_transient',
            retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
            rateLimited: false,
          };
    }
    const written = await recordFailure(attempt, {
      lastError: {
        code: reason,
        message: lost ? LOST_REFRESH_TOKEN_MESSAGE : error.message,
        at: now,
      },
      failureCount,
      status: 'needs_reauth',
    });
    logger.warn('Refresh refused with invalid_grant: the connection needs reauthorization', {
      ...attrs,
      outcome: 'needs_reauth',
      marked: written,
    });
    return written === 'lost' ? { outcome: 'gone' } : { outcome: 'needs_reauth' };
  }

  const retryAfterSeconds = wiseRetryAfter(error);
  const waitMs = backoff(failureCount, deps.random, retryAfterSeconds);
  const update: FailureUpdate = {
    lastError: { code: failureCode(error), message: error.message, at: now },
    failureCount,
    nextRefreshAt: now + waitMs,
    // A 5xx, a timeout or a dropped connection may have rotated the refresh token at Wise all the same.
    keepSpending: error instanceof WiseUnavailableError,
  };
  const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
  if (error instanceof WiseInvalidClientError) {
    metrics.addMetric(MetricName.invalidClient, MetricUnit.Count, 1);
    const written = await recordFailure(attempt, update);
    // The operator alarm: the client id or secret in Secrets Manager is wrong or revoked.
    logger.error('Wise rejected the client credentials; the connection is left as it is', {
      ...attrs,
      outcome: 'invalid_client',
      retryAfterSeconds: retryAfter,
    });
    return written === 'lost'
      ? { outcome: 'gone' }
      : { outcome: 'invalid_client', retryAfterSeconds: retryAfter };
  }

  const written = await recordFailure(attempt, update);
  if (error instanceof WiseUnavailableError || error instanceof WiseRateLimitedError) {
    metrics.addMetric(MetricName.providerUnavailable, MetricUnit.Count, 1);
    logger.warn('Wise is unavailable; the refresh backs off and the still-valid token is kept', {
      ...attrs,
      outcome: 'failed_transient',
      retryAfterSeconds: retryAfter,
      reason: error.message,
    });
  } else {
    // invalid_request and the like: a bug or a configuration error, not the user's doing.
    logger.error('Wise refused the refresh request; the refresh backs off', {
      ...attrs,
      outcome: 'failed_transient',
      wiseError: error.wiseError,
      reason: error.message,
    });
  }
  return written === 'lost'
    ? { outcome: 'gone' }
    : {
        outcome: 'failed_transient',
        retryAfterSeconds: retryAfter,
        rateLimited: error instanceof WiseRateLimitedError,
      };
}

async function storeGrant(
  attempt: Attempt,
  prepared: Prepared,
  { grant, via }: Granted,
): Promise<RefreshOutcome> {
  const { deps, key, owner } = attempt;
  const issuedAt = deps.clock.now();
  const attrs = { ...recordKeys(key), grant: via, traceId: grant.traceId };
  // Sealed with the data key made before the call: no I/O between Wise's answer and the write.
  const update = sealGrant(attempt, prepared, grant, issuedAt);
  try {
    const stored = await persisting(attempt, 'store the refreshed token', () =>
      deps.store.completeRefresh(key, { owner, now: deps.clock.now(), update }),
    );
    if (stored) return refreshed(attempt, stored, grant, attrs);
  } catch (error) {
    const landed = await landedRecord(deps, key, update).catch(() => undefined);
    if (landed) return refreshed(attempt, landed, grant, attrs);
    await releaseQuietly(attempt);
    metrics.addMetric(MetricName.refreshFailed, MetricUnit.Count, 1);
    logger.error('Wise granted a new token but it could not be stored', {
      ...attrs,
      error: errorName(error),
    });
    throw new RefreshNotStoredError(
      `The refreshed token of ${describe(key)} could not be stored; the next attempt refreshes again.`,
      { cause: error },
    );
  }
  // The write's condition failed: either an earlier try landed and only its answer was lost (the SDK's own
  // retries resend a write whose answer timed out, unseen here), or the lease is gone (taken over after it
  // expired, or the connection was disconnected and is a tombstone now).
  const landed = await landedRecord(deps, key, update);
  if (landed) return refreshed(attempt, landed, grant, attrs);
  metrics.addMetric(MetricName.refreshFailed, MetricUnit.Count, 1);
  logger.warn('The refreshed token was not stored: the lease was lost or the connection was disconnected', {
    ...attrs,
    outcome: 'gone',
  });
  return { outcome: 'gone' };
}

/** The write of a grant, every secret of the record sealed under the prepared data key. */
function sealGrant(attempt: Attempt, prepared: Prepared, grant: TokenGrant, issuedAt: number): TokenUpdate {
  const { deps, key } = attempt;
  const { sealer } = prepared;
  const update: TokenUpdate = {
    generation: sealer.binding.generation,
    dataKey: sealer.dataKey,
    accessToken: sealer.seal(grant.accessToken, 'access_token'),
    accessTokenExpiresAt: grant.expiresAt,
    nextRefreshAt: nextRefreshAt(issuedAt, grant.expiresAt, deps.config.refresh.fraction, deps.random),
    lastRefreshAt: issuedAt,
  };
  if (grant.scope !== undefined) update.scope = grant.scope;
  if (key.kind !== 'connection') return update;
  // Wise may return no refresh token: the spent one stays, sealed again under the new data key.
  const refreshToken = grant.refreshToken ?? prepared.refreshToken;
  if (refreshToken !== undefined) update.refreshToken = sealer.seal(refreshToken, 'refresh_token');
  if (grant.refreshToken !== undefined) {
    if (grant.refreshTokenExpiresAt !== undefined) update.refreshTokenExpiresAt = grant.refreshTokenExpiresAt;
  } else if (attempt.leased.refreshTokenExpiresAt !== undefined) {
    update.refreshTokenExpiresAt = attempt.leased.refreshTokenExpiresAt;
  }
  if (prepared.registrationCode !== undefined) {
    update.registrationCode = sealer.seal(prepared.registrationCode, 'registration_code');
  }
  return update;
}

/**
 * A stored refresh: counted, with how late it ran past its due time and how much life the replaced token
 * had left, the two measures of the refresh SLO; then the record's fence is raised to it. A connection whose
 * refreshes had failed before is announced as recovered.
 */
async function refreshed(
  attempt: Attempt,
  record: StoredRecord,
  grant: TokenGrant,
  attrs: Record<string, unknown>,
): Promise<RefreshOutcome> {
  const latenessSeconds = Math.round(refreshLatenessMs(attempt.leased, attempt.startedAt) / 1000);
  const lifeLeftSeconds = Math.round(lifeLeftMs(attempt.leased, attempt.startedAt) / 1000);
  metrics.addMetric(MetricName.refreshSucceeded, MetricUnit.Count, 1);
  metrics.addMetric(MetricName.refreshLateness, MetricUnit.Seconds, latenessSeconds);
  metrics.addMetric(MetricName.tokenLifeLeftAtRefresh, MetricUnit.Seconds, lifeLeftSeconds);
  logger.info('Refreshed', {
    ...attrs,
    outcome: 'refreshed',
    generation: record.generation,
    latenessSeconds,
    lifeLeftSeconds,
  });
  // The tokens are stored: only now may the earlier generation stop being current.
  await raiseFenceQuietly(attempt.deps, attempt.key, record.generation);
  const { key, leased, deps } = attempt;
  if (key.kind === 'connection' && leased.failureCount > 0) {
    await publishStoredChange(deps.events, 'recovered', key.connectionId, (events) =>
      events.recovered({
        connectionId: key.connectionId,
        failedRefreshes: leased.failureCount,
        ...(leased.lastError ? { lastErrorCode: leased.lastError.code } : {}),
        generation: record.generation,
        at: deps.clock.now(),
      }),
    );
  }
  return { outcome: 'refreshed', record, accessToken: grant.accessToken };
}

/**
 * Raises a record's fence to a generation just written, so a copy of an earlier write put back over the
 * record is refused. A failure only delays that until the record's next write; it is logged, not thrown.
 */
export async function raiseFenceQuietly(
  deps: Pick<Runtime, 'store'>,
  key: RecordKey,
  generation: number,
): Promise<void> {
  try {
    await deps.store.raiseFence(key, generation);
  } catch (error) {
    logger.warn('Failed to raise the fence after a write; the next write raises it', {
      ...recordKeys(key),
      generation,
      error: errorName(error),
    });
  }
}

/**
 * Refuses a record below its fence: a copy of an earlier write (before a refresh or a disconnect) written
 * back over the record. Its ciphertexts are bound to its own generation and would decrypt, but they are
 * not current.
 *
 * @throws RolledBackRecordError
 */
export function assertCurrent(key: RecordKey, record: TokenState): void {
  if (record.minimumGeneration === undefined || record.generation >= record.minimumGeneration) return;
  logger.error('A stored record is older than its fence: an earlier copy was written back over it', {
    ...recordKeys(key),
    generation: record.generation,
    minimumGeneration: record.minimumGeneration,
  });
  throw new RolledBackRecordError(
    `The stored record of ${describe(key)} is generation ${record.generation}, but generation ${record.minimumGeneration} or later was written since: an earlier copy was written back, so its tokens are refused. Disconnect it, or connect it again.`,
  );
}

/** The stored record when it holds exactly the ciphertext this attempt wrote (KMS ciphertexts are unique). */
async function landedRecord(
  deps: RefreshDeps,
  key: RecordKey,
  update: TokenUpdate,
): Promise<StoredRecord | undefined> {
  const current = await readRecord(deps, key);
  if (!current?.accessToken || current.status === 'disconnected') return undefined;
  return Buffer.from(current.accessToken).equals(Buffer.from(update.accessToken)) ? current : undefined;
}

/**
 * Runs one step of storing Wise's answer, retrying a throw a bounded number of times while the lease
 * lasts. A step that threw may have landed anyway: the caller reads the record back to tell.
 */
async function persisting<T>(attempt: Attempt, what: string, step: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await step();
    } catch (error) {
      const waitMs = WRITE_RETRY_BASE_MS * 2 ** (tries - 1);
      if (tries >= WRITE_ATTEMPTS || attempt.deps.clock.now() + waitMs >= attempt.writeDeadline) throw error;
      logger.warn(`Failed to ${what}; retrying while the lease and the invocation last`, {
        ...recordKeys(attempt.key),
        tries,
        error: errorName(error),
      });
      await attempt.sleep(waitMs);
    }
  }
}

/**
 * Whether the record is still the one this attempt leased: active, at the leased generation, and under
 * this attempt's lease (run out or not, as long as no one took it over). A record that cannot be read
 * counts as still leased, so a refusal that concerns it is never left unannounced.
 */
async function stillLeased(attempt: Attempt): Promise<boolean> {
  const { deps, key, owner, leased } = attempt;
  let current: StoredRecord | undefined;
  try {
    current = await readRecord(deps, key);
  } catch (error) {
    logger.warn('Could not read the record back after a refusal; treating it as still leased', {
      ...recordKeys(key),
      error: errorName(error),
    });
    return true;
  }
  return (
    current?.status === 'active' && current.generation === leased.generation && current.lease?.owner === owner
  );
}

/** Writes a failure and frees the lease: `lost` when the lease was no longer held, `failed` when the write threw. */
async function recordFailure(
  attempt: Attempt,
  update: FailureUpdate,
): Promise<'written' | 'lost' | 'failed'> {
  const { deps, key, owner } = attempt;
  try {
    const written = await deps.store.failRefresh(key, { owner, now: deps.clock.now(), update });
    return written ? 'written' : 'lost';
  } catch (error) {
    // The lease runs out on its own and the next attempt meets the same failure again.
    logger.warn('Failed to record the refresh failure', { ...recordKeys(key), error: errorName(error) });
    return 'failed';
  }
}

async function releaseQuietly(attempt: Attempt): Promise<void> {
  try {
    await attempt.deps.store.releaseLease(attempt.key, { owner: attempt.owner });
  } catch (error) {
    logger.warn('Failed to release the refresh lease; it runs out on its own', {
      ...recordKeys(attempt.key),
      error: errorName(error),
    });
  }
}

/**
 * The `lastError.code` and event `reason` of a connection whose refresh token Wise refused after an earlier
 * attempt had spent it without storing Wise's answer: lost by the broker (a crash, a lost answer or write),
 * not revoked by the user.
 */
export const LOST_REFRESH_TOKEN = 'refresh_token_lost';
const LOST_REFRESH_TOKEN_MESSAGE =
  'Wise refused the refresh token after an earlier refresh had spent it without storing the new one (the broker stopped or lost the answer); the Wise user must authorize again.';

/**
 * Whether the refresh token Wise just refused is the one an earlier attempt recorded as spent and never
 * resolved, or one this attempt's own earlier request may have spent (it got no answer or a 5xx, and the
 * Wise client's retry was refused): that request's answer (a new refresh token, when Wise rotates them)
 * was lost.
 */
function lostRefreshToken(attempt: Attempt, prepared: Prepared, error: WiseInvalidGrantError): boolean {
  if (prepared.regranted || prepared.fingerprint === undefined) return false;
  const { leased } = attempt;
  // An earlier attempt that found the loss but could not publish it said so in the record; and within
  // this attempt, a retry refused after a request Wise may have acted on spent the token itself.
  return (
    leased.spending?.fingerprint === prepared.fingerprint ||
    leased.lastError?.code === LOST_REFRESH_TOKEN ||
    error.afterUncertainAttempt
  );
}

/** Publishes the reauthorization event; `false` when it could not be published. */
async function publishReauthorization(
  deps: RefreshDeps,
  connectionId: string,
  reason: string,
  at: number,
  attrs: Record<string, unknown>,
): Promise<boolean> {
  try {
    await deps.events.reauthorizationRequired({ connectionId, reason, at });
    return true;
  } catch (error) {
    logger.error(
      'Failed to publish the reauthorization event; the refresh backs off and publishes it again',
      {
        ...attrs,
        outcome: 'failed_transient',
        error: errorName(error),
      },
    );
    return false;
  }
}

/** The stored record of a key, tombstones included. */
export async function readRecord(
  deps: Pick<Runtime, 'store'>,
  key: RecordKey,
): Promise<StoredRecord | undefined> {
  return key.kind === 'connection' ? deps.store.getConnection(key.connectionId) : deps.store.getClientToken();
}

/** How logs name a record: its connection id, or `client` for the client-credentials token. */
export function describe(key: RecordKey): string {
  return key.kind === 'connection' ? key.connectionId : 'client';
}

function wiseRetryAfter(error: WiseError): number | undefined {
  if (error instanceof WiseRateLimitedError || error instanceof WiseUnavailableError)
    return error.retryAfterSeconds;
  return undefined;
}

/** The class a refused refresh is counted under; Wise's other OAuth errors are `invalid_request`. */
function refusalClass(error: WiseError): RefusalClass {
  if (error instanceof WiseInvalidGrantError) return 'invalid_grant';
  if (error instanceof WiseInvalidClientError) return 'invalid_client';
  if (error instanceof WiseRateLimitedError) return 'rate_limited';
  if (error instanceof WiseUnavailableError) return 'provider_unavailable';
  return 'invalid_request';
}

function failureCode(error: WiseError): string {
  if (error instanceof WiseInvalidClientError) return 'invalid_client';
  if (error instanceof WiseRateLimitedError) return 'rate_limited';
  if (error instanceof WiseUnavailableError) return 'provider_unavailable';
  return error.wiseError ?? 'invalid_request';
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
