import { MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  BrokerError,
  ConnectionExistsError,
  ProviderUnavailableError,
  RefreshTokenRejectedError,
} from '#shared/domain/errors.ts';
import { logger, MetricName, metrics } from '#shared/observability.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import * as z from '#shared/validation.ts';
import { WiseError } from '#shared/wise/errors.ts';
import {
  chooseProfile,
  classifyWiseFailure,
  LOOKUP_BUDGET_MS,
  lookUpAfterGrant,
  prepareConnectionWrite,
  STORE_RESERVE_MS,
  storeGrantedConnection,
} from './complete-authorization.ts';
import { type ConnectionStatusView, requestBodySchema, toConnectionStatus } from './connection-status.ts';
import { INVALID_CLIENT_RETRY_AFTER_SECONDS } from './register-with-code.ts';

/** Shorter than any refresh token Wise issues; a guard against sending an empty or truncated value. */
export const MIN_REFRESH_TOKEN_LENGTH = 16;
const MAX_REFRESH_TOKEN_LENGTH = 2048;
const WISE_ID_RULE = 'must be a positive whole number (the id Wise gave)';

/** A user or profile id as Wise gives it. */
function wiseId() {
  return z.int({ error: WISE_ID_RULE }).check(z.positive({ error: WISE_ID_RULE }));
}

/** The body of `POST /connections/{id}/import`. Its messages never repeat the refresh token. */
export const ImportRequest = requestBodySchema({
  refreshToken: z
    .string({
      error: (issue) =>
        issue.input === undefined
          ? "is required and must be the connection's current Wise refresh token"
          : 'must be a string: the Wise refresh token',
    })
    .check(
      z.minLength(MIN_REFRESH_TOKEN_LENGTH, {
        error: `must be at least ${MIN_REFRESH_TOKEN_LENGTH} characters: a whole Wise refresh token, not a part of one`,
      }),
      z.maxLength(MAX_REFRESH_TOKEN_LENGTH, {
        error: `must be at most ${MAX_REFRESH_TOKEN_LENGTH} characters`,
      }),
      z.regex(/^[\x21-\x7e]+$/, { error: 'must be printable ASCII without spaces, as Wise issues it' }),
    ),
  userId: z.optional(wiseId()),
  profileId: z.optional(wiseId()),
  replace: z.optional(z.boolean({ error: 'must be true or false' })),
});

export type ImportInput = z.output<typeof ImportRequest> & { callerArn: string; connectionId: string };

/**
 * Said in every successful import's answer, the README and the import command's output: the refresh at
 * Wise that takes the connection over ends what the old system holds.
 */
export const IMPORT_NOTICE =
  "The broker now owns this connection: its refresh at Wise ended the old system's access token, and with refresh-token rotation the refresh token that was sent is dead too. The old system must stop using both.";

/** A successful import: the connection's status, the notice, and what the broker could not take as given. */
export interface ImportedConnectionView extends ConnectionStatusView {
  notice: string;
  /** Sentences about the request's `userId` or `profileId` that Wise contradicted or could not confirm. */
  warnings: string[];
}

/**
 * Imports a connection another system made: one refresh at Wise with the refresh token it holds proves the
 * token is live and makes the broker its only owner (Wise ends the access token it had issued, and with
 * rotation the refresh token itself); the new tokens are stored encrypted like any other connection's.
 *
 * Nothing is sent to Wise when the id is already a live connection and `replace` is not set. Once Wise has
 * answered, storing comes first: the user and profile lookups that follow may fail or contradict the
 * request, and then the connection is stored without the ids they could not confirm, with a warning.
 *
 * @throws ForbiddenError when the caller's `import` patterns do not cover the connection
 * @throws ConnectionExistsError when a live connection holds the id and `replace` is not true
 * @throws RefreshTokenRejectedError when Wise refuses the refresh token (nothing is stored)
 * @throws ProviderUnavailableError when Wise is down or rate limiting, or refuses the broker's client
 *   credentials (nothing is stored)
 */
export async function importConnection(
  runtime: Pick<Runtime, 'config' | 'store' | 'cipher' | 'wise' | 'clock' | 'random' | 'policy' | 'events'>,
  input: ImportInput,
  options: { endsAt?: number } = {},
): Promise<ImportedConnectionView> {
  const { connectionId } = input;
  runtime.policy.assertAllows(input.callerArn, 'import', connectionId);
  const existing = await runtime.store.getConnection(connectionId);
  if (existing && existing.status !== 'disconnected' && input.replace !== true) {
    throw new ConnectionExistsError(
      connectionId,
      `Connection "${connectionId}" already exists (status ${existing.status}), so nothing was sent to Wise and nothing changed; import it under another id, or send "replace": true to end the stored connection and keep the imported one.`,
    );
  }

  // The refresh ends the old system's tokens: from Wise's answer on, nothing may fail before the grant is
  // stored. The data key is made before, and the lookups that follow cannot throw.
  const prepared = await prepareConnectionWrite(runtime, connectionId);
  const storeBy = options.endsAt === undefined ? undefined : options.endsAt - STORE_RESERVE_MS;
  let tokens: Awaited<ReturnType<typeof runtime.wise.refresh>>;
  try {
    tokens = await runtime.wise.refresh(
      { refreshToken: input.refreshToken },
      storeBy === undefined ? {} : { deadlineMs: storeBy - LOOKUP_BUDGET_MS },
    );
  } catch (error) {
    throw translateRefreshFailure(error, connectionId);
  }

  const lookupsBy = Math.min(runtime.clock.now() + LOOKUP_BUDGET_MS, storeBy ?? Number.POSITIVE_INFINITY);
  const { user, profiles } = await lookUpAfterGrant(runtime, tokens.accessToken, connectionId, lookupsBy);
  const warnings: string[] = [];
  if (input.userId !== undefined) {
    if (!user) {
      warnings.push(
        `Wise did not say whose refresh token this is, so the given userId ${input.userId} was not confirmed and is not stored.`,
      );
    } else if (user.id !== input.userId) {
      warnings.push(
        `Wise says this refresh token belongs to user ${user.id}, not to the given userId ${input.userId}: the connection is stored for user ${user.id}; check the old system's record of "${connectionId}".`,
      );
    }
  }
  let profileId: number | undefined;
  if (profiles) {
    const profile = chooseProfile(profiles, input.profileId);
    if (profile === null) {
      warnings.push(
        `Profile ${input.profileId} is not one of this Wise user's profiles, so the connection is stored without a profile; import it again with one of the user's profile ids and "replace": true, or leave profileId out for the personal profile.`,
      );
    } else {
      profileId = profile?.id;
    }
  } else if (input.profileId !== undefined) {
    warnings.push(
      `Wise did not list the user's profiles, so the given profileId ${input.profileId} was not confirmed and is not stored.`,
    );
  }

  const connection = await storeGrantedConnection(
    runtime,
    {
      connectionId,
      // The refresh token came from an authorization; the broker has no registration code to grant again with.
      grant: 'authorization_code',
      tokens,
      ...(user ? { user } : {}),
      ...(profileId === undefined ? {} : { profileId }),
      imported: true,
    },
    prepared,
  );
  logger.info('Connection imported', {
    connectionId,
    caller: input.callerArn,
    replaced: existing?.status,
    userKnown: user !== undefined,
    warnings: warnings.length,
  });
  return { ...toConnectionStatus(connection), notice: IMPORT_NOTICE, warnings };
}

function translateRefreshFailure(error: unknown, connectionId: string): unknown {
  const failure = classifyWiseFailure(error);
  if (!failure) return error;
  logger.warn('Wise refused the import', {
    connectionId,
    failure: failure.kind,
    traceId: error instanceof WiseError ? error.traceId : undefined,
  });
  switch (failure.kind) {
    case 'invalid_grant':
      return new RefreshTokenRejectedError(
        `Wise refused the refresh token for connection "${connectionId}": it is expired, revoked or already used (with rotation, each refresh by the old system or an earlier import ends the one before), so nothing was stored. Send the old system's current refresh token, or have the user connect again with POST /connect-sessions.`,
        { cause: error },
      );
    case 'unavailable':
      return new ProviderUnavailableError(
        `Wise is unavailable or rate limiting, so nothing was stored and the refresh token is unchanged; try the import again in ${failure.retryAfterSeconds} s.`,
        { retryAfterSeconds: failure.retryAfterSeconds, cause: error },
      );
    case 'invalid_client':
      // The operator alarm: the client id or secret in Secrets Manager is wrong or revoked.
      metrics.addMetric(MetricName.invalidClient, MetricUnit.Count, 1);
      logger.error("Wise rejected the broker's client credentials; the operator must check the Wise secret", {
        connectionId,
      });
      return new ProviderUnavailableError(
        `Wise cannot be used by the broker right now, and the operator has been alerted; nothing was stored, try the import again in ${INVALID_CLIENT_RETRY_AFTER_SECONDS / 60} minutes.`,
        { retryAfterSeconds: INVALID_CLIENT_RETRY_AFTER_SECONDS, cause: error },
      );
    default:
      return new BrokerError('Wise refused the import unexpectedly; nothing was stored. Tell the operator.', {
        cause: error,
      });
  }
}
