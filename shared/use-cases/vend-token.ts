import { setTimeout as delay } from 'node:timers/promises';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  ConnectionNotFoundError,
  ProviderUnavailableError,
  ReauthorizationRequiredError,
  TokenDecryptionError,
} from '#shared/domain/errors.ts';
import type { RecordKey } from '#shared/domain/records.ts';
import {
  backoffRemaining,
  isExpired,
  type RefreshDemand,
  refreshNeeded,
  validUntil,
} from '#shared/domain/refresh-rule.ts';
import { logger, MetricName, metrics, recordKeys } from '#shared/observability.ts';
import type { VendSource } from '#shared/ports/audit-trail.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import {
  assertCurrent,
  describe,
  type RefreshDeps,
  RefreshNotStoredError,
  type RefreshOutcome,
  readRecord,
  refreshRecord,
  type StoredRecord,
} from './refresh-record.ts';
import {
  type checkRejection,
  notHonoured,
  refreshOnlyForRejection,
  rejectionCheckedRecently,
} from './rejection-check.ts';

/**
 * How long an instance serves a vended token from memory. A disconnect (or a refresh made elsewhere) is
 * therefore seen by every instance within this many seconds; callers that meet a 401 sooner bypass the
 * cache with `rejectedGeneration`.
 */
export const VEND_CACHE_SECONDS = 30;

/** The most entries one instance's cache holds; the oldest go first. */
export const VEND_CACHE_MAX_ENTRIES = 10_000;

/** How long, at most, a vend waits for another instance's refresh of the same record. */
export const BUSY_WAIT_BUDGET_MS = 4_000;

/**
 * How long a vend's own refresh may wait for Wise, so the answer comes well within API Gateway's 29 s;
 * when Wise is slower the still-valid token is vended or the caller is told when to try again.
 */
export const VEND_REFRESH_DEADLINE_MS = 10_000;

/** A token as the broker holds it for vending; times are epoch ms. */
export interface CurrentToken {
  accessToken: string;
  expiresAt: number;
  generation: number;
  /** Until when the broker promises not to replace this token. */
  validUntil: number;
  scope?: string;
  connectionId?: string;
  profileId?: number;
  /** Set when a refresh made for this vend issued the token. */
  refreshed?: true;
}

/** The `POST /tokens` request, after the handler validated it. */
export interface VendRequest {
  callerArn: string;
  target: RecordKey;
  /**
   * How long the caller would like the token to live. It never replaces a token before its `validUntil`
   * (other callers hold that promise): a token that lives less is vended as it is, its `expiresAt` says so.
   */
  minValiditySeconds?: number;
  rejectedGeneration?: number;
}

/** The `POST /tokens` response body. */
export interface VendedToken {
  accessToken: string;
  tokenType: 'Bearer';
  /** ISO-8601. */
  expiresAt: string;
  /** ISO-8601: cache the token until then. */
  validUntil: string;
  generation: number;
  scope?: string;
  connectionId?: string;
  profileId?: number;
}

/** What a vend needs from the runtime. */
export type VendDeps = RefreshDeps & Pick<Runtime, 'policy'>;

export interface VendOptions {
  /** The instance's warm cache; absent, every vend reads the store. */
  cache?: VendCache;
  /** Epoch ms by which the request must be answered: bounds an on-demand refresh's call to Wise and writes. */
  endsAt?: number;
  /** How a vend waits between looks at a record another instance is refreshing. */
  sleep?: (ms: number) => Promise<void>;
  /** Hears of each vend: the token's generation and where it came from, for the audit trail. */
  onVended?: (vend: { generation: number; source: VendSource }) => void;
}

/**
 * The per-instance memory of recently vended tokens, so a repeated vend of a fresh token touches neither
 * DynamoDB nor KMS. An entry lives at most {@link VEND_CACHE_SECONDS} and never past the token's
 * `validUntil`; a `rejectedGeneration` at or past the cached generation bypasses it.
 */
export class VendCache {
  readonly #entries = new Map<string, { token: CurrentToken; until: number }>();
  readonly #maxEntries: number;
  readonly #ttlMs: number;

  constructor(options: { maxEntries?: number; ttlSeconds?: number } = {}) {
    this.#maxEntries = options.maxEntries ?? VEND_CACHE_MAX_ENTRIES;
    this.#ttlMs = (options.ttlSeconds ?? VEND_CACHE_SECONDS) * 1000;
  }

  get(key: RecordKey, now: number, demand: RefreshDemand = {}): CurrentToken | undefined {
    const id = cacheId(key);
    const entry = this.#entries.get(id);
    if (!entry) return undefined;
    if (now >= entry.until) {
      this.#entries.delete(id);
      return undefined;
    }
    const { token } = entry;
    if (demand.rejectedGeneration !== undefined && demand.rejectedGeneration >= token.generation) {
      if (demand.rejectedGeneration === token.generation) this.#entries.delete(id);
      return undefined;
    }
    return token;
  }

  set(key: RecordKey, token: CurrentToken, now: number): void {
    const until = Math.min(now + this.#ttlMs, token.validUntil);
    const id = cacheId(key);
    this.#entries.delete(id);
    if (until <= now) return;
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(id, { token, until });
  }

  get size(): number {
    return this.#entries.size;
  }
}

/**
 * `POST /tokens`: the caller's policy first, then the warm cache, then the stored token, refreshed on
 * demand when it is due, expired or rejected (`rejectedGeneration` equals the stored generation and the
 * rejection is honoured: see {@link checkRejection}, at most one a record in a short window). A
 * `minValiditySeconds` the token cannot meet is logged and changes nothing: no token is replaced before
 * its `validUntil`, and after it the token is due anyway.
 *
 * @throws ForbiddenError when the caller's policy does not cover the connection or the client token
 * @throws ConnectionNotFoundError for an unknown or disconnected connection
 * @throws ReauthorizationRequiredError when the Wise user must authorize again
 * @throws ProviderUnavailableError when Wise cannot be reached and no valid, unrejected token is stored
 * @throws TokenDecryptionError when the stored token does not decrypt under its record's context
 */
export async function vendToken(
  deps: VendDeps,
  request: VendRequest,
  options: VendOptions = {},
): Promise<VendedToken> {
  const { target } = request;
  if (target.kind === 'connection') {
    deps.policy.assertMayUseConnection(request.callerArn, target.connectionId);
  } else {
    deps.policy.assertMayUseClientToken(request.callerArn);
  }
  const demand: RefreshDemand = {};
  if (request.rejectedGeneration !== undefined) demand.rejectedGeneration = request.rejectedGeneration;

  let token = options.cache?.get(target, deps.clock.now(), demand);
  let source: VendSource = 'cache';
  if (!token) {
    token = await currentToken(deps, target, demand, {
      ...(options.sleep === undefined ? {} : { sleep: options.sleep }),
      ...(options.endsAt === undefined ? {} : { endsAt: options.endsAt }),
    });
    source = token.refreshed === true ? 'refresh' : 'store';
    options.cache?.set(target, token, deps.clock.now());
  }
  metrics.addMetric(MetricName.tokenVended, MetricUnit.Count, 1);
  options.onVended?.({ generation: token.generation, source });
  const short =
    request.minValiditySeconds !== undefined &&
    token.expiresAt - deps.clock.now() < request.minValiditySeconds * 1000;
  const attributes = {
    ...recordKeys(target),
    callerArn: request.callerArn,
    outcome: 'vended',
    generation: token.generation,
    source,
    ...(short ? { shortOfMinValiditySeconds: request.minValiditySeconds } : {}),
  };
  // Every vend has its audit line; a log line too only when the token lives less than the caller asked.
  if (short) logger.info('Token vended', attributes);
  else logger.debug('Token vended', attributes);
  return toVendedToken(token);
}

/** The response body of a vend. */
export function toVendedToken(token: CurrentToken): VendedToken {
  const body: VendedToken = {
    accessToken: token.accessToken,
    tokenType: 'Bearer',
    expiresAt: new Date(token.expiresAt).toISOString(),
    validUntil: new Date(token.validUntil).toISOString(),
    generation: token.generation,
  };
  if (token.scope !== undefined) body.scope = token.scope;
  if (token.connectionId !== undefined) body.connectionId = token.connectionId;
  if (token.profileId !== undefined) body.profileId = token.profileId;
  return body;
}

const MAX_ROUNDS = 3;

/**
 * The current token of a record, refreshed first when the demand or the rule says so. Single-flight
 * across instances: when another attempt holds the lease, it waits (bounded) for the generation to move
 * and vends the new token. While the record backs off after a failed refresh, Wise is not asked again.
 * When the refresh fails (or backs off) for any reason but `invalid_grant` and a ciphertext that does not
 * decrypt, a stored token that is still valid and not rejected is vended anyway; otherwise a 503 says
 * when to try again.
 */
export async function currentToken(
  deps: RefreshDeps,
  key: RecordKey,
  demand: RefreshDemand = {},
  options: { sleep?: (ms: number) => Promise<void>; endsAt?: number } = {},
): Promise<CurrentToken> {
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  let basis = usable(key, await readRecord(deps, key));
  const now = deps.clock.now();
  if (basis && !refreshNeeded(basis, now, demand)) return decryptStored(deps, key, basis);
  const backingOffMs = basis ? backoffRemaining(basis, now) : 0;
  if (backingOffMs > 0) return fallback(deps, key, basis, demand, Math.ceil(backingOffMs / 1000));
  const leaseFree = basis?.lease === undefined || basis.lease.expiresAt < now;
  // With the lease taken, the check may be honouring the rejection right now: wait for it below instead.
  if (
    basis &&
    leaseFree &&
    refreshOnlyForRejection(basis, now, demand) &&
    rejectionCheckedRecently(basis, now)
  ) {
    notHonoured(key, basis, 'checked_recently');
    return decryptStored(deps, key, basis);
  }

  let retryAfterSeconds = 1;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    let outcome: RefreshOutcome;
    try {
      outcome = await refreshRecord(deps, key, {
        demand,
        deadlineMs: deps.clock.now() + VEND_REFRESH_DEADLINE_MS,
        ...(options.endsAt === undefined ? {} : { invocationEndsAt: options.endsAt }),
      });
    } catch (error) {
      // A tampered ciphertext stays a 500; anything else (KMS throttling, a store that keeps failing) is
      // as transient as Wise being down.
      if (error instanceof TokenDecryptionError) throw error;
      if (error instanceof RefreshNotStoredError) {
        // Wise granted a new token, which killed the stored one: nothing valid is left to fall back on.
        throw new ProviderUnavailableError(
          `A new token for ${describe(key)} was granted but could not be stored, and the previous one no longer works; try again in ${retryAfterSeconds} s.`,
          { retryAfterSeconds, cause: error },
        );
      }
      logger.error('The on-demand refresh failed; falling back to the stored token', {
        ...recordKeys(key),
        error: error as Error,
      });
      return fallback(deps, key, basis, demand, retryAfterSeconds, 'broker');
    }
    if (outcome.outcome === 'gone') {
      // The lease was lost before the write (or the record changed). When another attempt holds it now (this
      // one stalled past its lease and was taken over), the stored token is the one being replaced, and may
      // already be dead at Wise: wait for the new one as when busy.
      basis = usable(key, await readRecord(deps, key));
      const now = deps.clock.now();
      if (!basis?.lease || basis.lease.expiresAt < now) {
        return fallback(deps, key, basis, demand, retryAfterSeconds);
      }
      outcome = { outcome: 'busy', record: basis };
    }
    switch (outcome.outcome) {
      case 'refreshed':
        return { ...tokenOf(key, outcome.record, outcome.accessToken, deps.clock.now()), refreshed: true };
      case 'not_needed':
        return decryptStored(deps, key, outcome.record);
      case 'needs_reauth':
        throw reauthorization(key);
      case 'failed_transient':
      case 'invalid_client':
        return fallback(deps, key, basis, demand, outcome.retryAfterSeconds);
      case 'busy': {
        const seen = basis ?? outcome.record;
        const current = usable(key, await awaitOtherRefresh(deps, key, seen, sleep));
        const now = deps.clock.now();
        if (current && !refreshNeeded(current, now, demand)) return decryptStored(deps, key, current);
        const leaseHeld = current?.lease !== undefined && current.lease.expiresAt >= now;
        const otherFailed = current !== undefined && current.failureCount > seen.failureCount;
        if (leaseHeld || otherFailed) {
          const waitMs = leaseHeld && current?.lease ? current.lease.expiresAt - now : 0;
          const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
          return fallback(deps, key, current, demand, retryAfter);
        }
        if (
          current &&
          refreshOnlyForRejection(current, now, demand) &&
          rejectionCheckedRecently(current, now)
        ) {
          // The other attempt checked this rejection and did not honour it: the stored token stays.
          notHonoured(key, current, 'checked_recently');
          return decryptStored(deps, key, current);
        }
        // The other attempt gave its lease back without a new token: it did not need one. Try again.
        basis = current;
        retryAfterSeconds = 1;
        break;
      }
    }
  }
  return fallback(deps, key, basis, demand, retryAfterSeconds);
}

/**
 * Waits, with a growing pause and at most {@link BUSY_WAIT_BUDGET_MS} in all, until the record's
 * generation moves past `seen` or its lease is given back; returns the record as last read.
 */
async function awaitOtherRefresh(
  deps: RefreshDeps,
  key: RecordKey,
  seen: StoredRecord,
  sleep: (ms: number) => Promise<void>,
): Promise<StoredRecord | undefined> {
  let waited = 0;
  let pause = 50;
  let current: StoredRecord | undefined = seen;
  while (waited < BUSY_WAIT_BUDGET_MS) {
    const ms = Math.min(pause, BUSY_WAIT_BUDGET_MS - waited);
    await sleep(ms);
    waited += ms;
    pause = Math.min(pause * 2, 1_000);
    current = await readRecord(deps, key);
    if (!current || current.status === 'disconnected' || current.status === 'needs_reauth') return current;
    if (current.generation > seen.generation) return current;
    if (!current.lease || current.lease.expiresAt < deps.clock.now()) return current;
  }
  return current;
}

/**
 * The stored token when it is still valid and not the rejected one; otherwise a 503 that says when to
 * try again, and whether Wise or the broker's own refresh (`failedAt`) failed.
 */
async function fallback(
  deps: RefreshDeps,
  key: RecordKey,
  record: StoredRecord | undefined,
  demand: RefreshDemand,
  retryAfterSeconds: number,
  failedAt: 'wise' | 'broker' = 'wise',
): Promise<CurrentToken> {
  const now = deps.clock.now();
  if (record && !isExpired(record, now) && demand.rejectedGeneration !== record.generation) {
    logger.warn('Vending the stored token: it could not be refreshed but is still valid', {
      ...recordKeys(key),
      generation: record.generation,
    });
    return decryptStored(deps, key, record);
  }
  const why =
    failedAt === 'wise'
      ? `Wise cannot issue a new token for ${describe(key)} right now`
      : `The broker could not refresh the token of ${describe(key)} just now (its storage or key service is failing)`;
  throw new ProviderUnavailableError(
    `${why}, and the stored one is missing, expired or rejected; try again in ${retryAfterSeconds} s.`,
    { retryAfterSeconds },
  );
}

/** The record when it can be vended from; the not-found and reauthorization errors otherwise. */
function usable(key: RecordKey, record: StoredRecord | undefined): StoredRecord | undefined {
  if (key.kind === 'client') return record;
  if (!record || record.status === 'disconnected') throw new ConnectionNotFoundError(key.connectionId);
  if (record.status === 'needs_reauth') throw reauthorization(key);
  return record;
}

function reauthorization(key: RecordKey): ReauthorizationRequiredError {
  const connectionId = key.kind === 'connection' ? key.connectionId : 'client';
  return new ReauthorizationRequiredError(connectionId);
}

async function decryptStored(deps: RefreshDeps, key: RecordKey, record: StoredRecord): Promise<CurrentToken> {
  if (!record.accessToken || !record.dataKey) {
    throw new ProviderUnavailableError(`No token is stored for ${describe(key)} yet; try again in 1 s.`, {
      retryAfterSeconds: 1,
    });
  }
  assertCurrent(key, record);
  const opener = await deps.cipher.open(record.dataKey, { record: key, generation: record.generation });
  const accessToken = opener.open(record.accessToken, 'access_token');
  return tokenOf(key, record, accessToken, deps.clock.now());
}

function tokenOf(key: RecordKey, record: StoredRecord, accessToken: string, now: number): CurrentToken {
  const token: CurrentToken = {
    accessToken,
    expiresAt: record.accessTokenExpiresAt ?? now,
    generation: record.generation,
    validUntil: validUntil(record, now),
  };
  if (record.scope !== undefined) token.scope = record.scope;
  if (key.kind === 'connection') token.connectionId = key.connectionId;
  if (record.profileId !== undefined) token.profileId = record.profileId;
  return token;
}

function cacheId(key: RecordKey): string {
  return key.kind === 'connection' ? `connection:${key.connectionId}` : 'client';
}
