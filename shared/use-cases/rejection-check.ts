import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { RecordKey } from '#shared/domain/records.ts';
import { type RefreshDemand, refreshNeeded } from '#shared/domain/refresh-rule.ts';
import { logger, MetricName, metrics } from '#shared/observability.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import { WiseError, WiseInvalidTokenError } from '#shared/wise/errors.ts';

/**
 * A record honours at most one reported rejection (`rejectedGeneration`) in this long, fleet-wide: a caller
 * that keeps reporting rejections cannot make the broker refresh (or ask Wise about) a token more often.
 */
export const REJECTION_CHECK_WINDOW_MS = 60_000;

/** How long the broker waits for Wise's `GET /v1/me` when it checks a reported rejection. */
export const REJECTION_CHECK_TIMEOUT_MS = 3_000;

/** What the check of a reported rejection found. */
export type RejectionVerdict =
  /** Honour the rejection: refresh. */
  | { honour: true; reason: 'wise_refused_token' | 'unverifiable' | 'client_token' }
  /** Do not refresh: the token is vended as it is. */
  | { honour: false; reason: 'checked_recently' | 'wise_accepts_token' };

/** What the check needs. */
export type RejectionCheckDeps = Pick<Runtime, 'store' | 'cipher' | 'wise' | 'clock'>;

/**
 * Whether a refresh would happen only because a caller reported the stored generation rejected: the
 * token is neither expired nor due, so nothing but the caller's word asks for a new one.
 */
export function refreshOnlyForRejection(
  record: Parameters<typeof refreshNeeded>[0],
  now: number,
  demand: RefreshDemand | undefined,
): boolean {
  return refreshNeeded(record, now, demand) && !refreshNeeded(record, now);
}

/**
 * Whether a report that the record's current token was rejected was already checked within
 * {@link REJECTION_CHECK_WINDOW_MS}: a later report in the window is not honoured, and needs no lease.
 */
export function rejectionCheckedRecently(record: { rejectionCheckedAt?: number }, now: number): boolean {
  return (
    record.rejectionCheckedAt !== undefined && record.rejectionCheckedAt > now - REJECTION_CHECK_WINDOW_MS
  );
}

/**
 * Checks a caller's report that Wise rejected the stored token before the broker replaces it (a refresh
 * kills the token every other caller was promised until `validUntil`, and spends a token call):
 *
 * 1. at most one report per record is checked in {@link REJECTION_CHECK_WINDOW_MS} (a conditional write,
 *    so across every instance); later reports in the window are not honoured;
 * 2. a connection's token is shown to Wise (`GET /v1/me`): a 401 confirms the rejection; a 200 refutes it
 *    and the token stays; no answer (Wise unavailable) honours it, once in the window;
 * 3. the client-credentials token has no read-only Wise call that needs nothing but the token, so the
 *    window alone bounds it: one new client token a window, whatever callers report.
 *
 * Call it under the record's refresh lease, so concurrent reporters wait for its outcome.
 */
export async function checkRejection(
  deps: RejectionCheckDeps,
  key: RecordKey,
  record: { generation: number; accessToken?: Uint8Array },
): Promise<RejectionVerdict> {
  const claimed = await deps.store.claimRejectionCheck(key, {
    generation: record.generation,
    now: deps.clock.now(),
    windowMs: REJECTION_CHECK_WINDOW_MS,
  });
  if (!claimed) return notHonoured(key, record, 'checked_recently');
  if (key.kind === 'client' || record.accessToken === undefined) return honoured(key, record, 'client_token');

  const accessToken = await deps.cipher.decrypt(record.accessToken, { record: key, kind: 'access_token' });
  try {
    await deps.wise.getCurrentUser(accessToken, {
      deadlineMs: deps.clock.now() + REJECTION_CHECK_TIMEOUT_MS,
    });
  } catch (error) {
    if (error instanceof WiseInvalidTokenError) return honoured(key, record, 'wise_refused_token');
    if (!(error instanceof WiseError)) throw error;
    logger.warn('Wise could not say whether the rejected token is dead; honouring the rejection once', {
      connectionId: key.connectionId,
      generation: record.generation,
      error: error.name,
      traceId: error.traceId,
    });
    return honoured(key, record, 'unverifiable');
  }
  return notHonoured(key, record, 'wise_accepts_token');
}

function honoured(
  key: RecordKey,
  record: { generation: number },
  reason: Extract<RejectionVerdict, { honour: true }>['reason'],
): RejectionVerdict {
  logger.info('A reported rejection is honoured: the token is replaced', {
    record: key.kind === 'connection' ? key.connectionId : 'client',
    generation: record.generation,
    reason,
  });
  return { honour: true, reason };
}

/** Logs and counts a reported rejection that is not honoured; returns the verdict that says so. */
export function notHonoured(
  key: RecordKey,
  record: { generation: number },
  reason: Extract<RejectionVerdict, { honour: false }>['reason'],
): RejectionVerdict {
  metrics.addMetric(MetricName.rejectionNotHonoured, MetricUnit.Count, 1);
  logger.warn('A reported rejection is not honoured: the stored token stays', {
    record: key.kind === 'connection' ? key.connectionId : 'client',
    generation: record.generation,
    reason,
  });
  return { honour: false, reason };
}
