import { MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  InvalidRequestError,
  ProviderUnavailableError,
  ReauthorizationRequiredError,
} from '#shared/domain/errors.ts';
import { logger, MetricName, metrics } from '#shared/observability.ts';
import type { Runtime } from '#shared/runtime/runtime.ts';
import * as z from '#shared/validation.ts';
import { WiseError, WiseInvalidTokenError } from '#shared/wise/errors.ts';
import { obtainClientAccessToken } from './client-token.ts';
import {
  chooseProfile,
  classifyWiseFailure,
  LOOKUP_BUDGET_MS,
  lookUpAfterGrant,
  prepareConnectionWrite,
  storeGrantedConnection,
} from './complete-authorization.ts';
import { type ConnectionStatusView, requestBodySchema, toConnectionStatus } from './connection-status.ts';

/** Wise's registration codes are at least this long; they are credentials. */
export const MIN_REGISTRATION_CODE_LENGTH = 32;
const MAX_REGISTRATION_CODE_LENGTH = 1024;
const MAX_EMAIL_LENGTH = 254;
/** The wait a caller is asked for when Wise refused the broker's own client credentials: time for the operator. */
export const INVALID_CLIENT_RETRY_AFTER_SECONDS = 300;

/** The body of `POST /connections/{id}/registration-code`. Its messages never repeat the code. */
export const RegistrationRequest = requestBodySchema({
  email: z
    .string({
      error: (issue) =>
        issue.input === undefined ? 'is required and must be an e-mail address' : 'must be an e-mail address',
    })
    .check(
      z.maxLength(MAX_EMAIL_LENGTH, { error: `must be at most ${MAX_EMAIL_LENGTH} characters` }),
      z.regex(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, { error: 'must be an e-mail address such as "jo@example.com"' }),
    ),
  registrationCode: z
    .string({
      error: (issue) =>
        issue.input === undefined
          ? `is required and must be the registration code, at least ${MIN_REGISTRATION_CODE_LENGTH} characters`
          : `must be a string of at least ${MIN_REGISTRATION_CODE_LENGTH} characters`,
    })
    .check(
      z.minLength(MIN_REGISTRATION_CODE_LENGTH, {
        error: `must be at least ${MIN_REGISTRATION_CODE_LENGTH} characters, as Wise requires`,
      }),
      z.maxLength(MAX_REGISTRATION_CODE_LENGTH, {
        error: `must be at most ${MAX_REGISTRATION_CODE_LENGTH} characters`,
      }),
      z.regex(/^[\x21-\x7e]+$/, { error: 'must be printable ASCII without spaces' }),
    ),
  signup: z.optional(z.boolean({ error: 'must be true or false' })),
  language: z.optional(
    z.string({ error: 'must be a language code such as "en"' }).check(
      z.regex(/^[a-z]{2}(?:[-_][A-Za-z]{2})?$/, {
        error: 'must be a language code such as "en" or "pt-BR"',
      }),
    ),
  ),
});

export type RegistrationInput = z.output<typeof RegistrationRequest> & {
  callerArn: string;
  connectionId: string;
};

/** A client-credentials access token and its generation. */
export interface SignupToken {
  accessToken: string;
  generation: number;
}

/** What registration needs beyond the runtime; tests replace the client token. */
export interface RegistrationDependencies {
  /**
   * A client-credentials access token for the signup call; with `rejectedGeneration` (Wise refused that
   * one), a newer one.
   */
  clientAccessToken: (rejectedGeneration?: number) => Promise<SignupToken>;
}

/**
 * Connects a partner-created Wise user with the `registration_code` grant, signing the user up first when
 * asked. The code is stored encrypted with the connection, so the refresh can grant again after
 * `invalid_grant` until the user reclaims the account.
 *
 * @throws ForbiddenError when the caller's patterns do not cover the connection
 * @throws ReauthorizationRequiredError when Wise refuses the grant (the user reclaimed the account)
 * @throws ProviderUnavailableError when Wise is down or rate limiting, or refuses the broker's client
 *   credentials (an operator problem: the `InvalidClient` metric alarms)
 * @throws InvalidRequestError when Wise refuses the signup
 */
export async function registerWithCode(
  runtime: Runtime,
  input: RegistrationInput,
  dependencies: RegistrationDependencies = {
    clientAccessToken: (rejectedGeneration) =>
      obtainClientAccessToken(runtime, rejectedGeneration === undefined ? {} : { rejectedGeneration }),
  },
): Promise<ConnectionStatusView> {
  const { connectionId, email, registrationCode } = input;
  runtime.policy.assertMayUseConnection(input.callerArn, connectionId);
  try {
    if (input.signup === true) {
      await signUp(runtime, input, dependencies);
    }
    // The grant ends the user's previous refresh token: from Wise's answer on, nothing may fail before the
    // grant is stored. The data key is made before, and the lookups that follow cannot throw.
    const prepared = await prepareConnectionWrite(runtime, connectionId);
    const tokens = await runtime.wise.registrationCodeGrant({ email, registrationCode });
    const { user, profiles } = await lookUpAfterGrant(
      runtime,
      tokens.accessToken,
      connectionId,
      runtime.clock.now() + LOOKUP_BUDGET_MS,
    );
    const profile = profiles ? chooseProfile(profiles, undefined) : undefined;
    const connection = await storeGrantedConnection(
      runtime,
      {
        connectionId,
        grant: 'registration_code',
        tokens,
        ...(user ? { user } : {}),
        ...(profile ? { profileId: profile.id } : {}),
        registration: { email, registrationCode },
      },
      prepared,
    );
    const { replacedConnectionId } = connection;
    return replacedConnectionId === undefined
      ? toConnectionStatus(connection)
      : { ...toConnectionStatus(connection), replacedConnectionId };
  } catch (error) {
    throw translateWiseFailure(error, connectionId);
  }
}

async function signUp(
  runtime: Runtime,
  input: RegistrationInput,
  dependencies: RegistrationDependencies,
): Promise<void> {
  let clientToken = await dependencies.clientAccessToken();
  const signUpWith = (token: SignupToken) =>
    runtime.wise.signUpWithRegistrationCode({
      email: input.email,
      registrationCode: input.registrationCode,
      ...(input.language === undefined ? {} : { language: input.language }),
      clientAccessToken: token.accessToken,
    });
  try {
    try {
      await signUpWith(clientToken);
    } catch (error) {
      if (!(error instanceof WiseInvalidTokenError)) throw error;
      // The stored client token is stale (Wise ended it early): a new one, once, and the signup again.
      logger.warn('Wise refused the client token for the signup; minting a new one and trying once more', {
        connectionId: input.connectionId,
        generation: clientToken.generation,
        traceId: error.traceId,
      });
      clientToken = await dependencies.clientAccessToken(clientToken.generation);
      await signUpWith(clientToken);
    }
  } catch (error) {
    // 409: Wise already has this user (an earlier signup); the grant below decides whether the code fits.
    if (error instanceof WiseError && error.status === 409) {
      logger.info('Wise already has a user with this e-mail; going on with the grant', {
        connectionId: input.connectionId,
        traceId: error.traceId,
      });
      return;
    }
    if (
      error instanceof WiseError &&
      error.status !== undefined &&
      error.status >= 400 &&
      error.status < 500
    ) {
      if (error.status !== 401 && error.status !== 403 && error.status !== 429) {
        throw new InvalidRequestError(
          `Wise refused to sign up a user with this e-mail and registration code (status ${error.status}); check both, or leave "signup" out if the user already exists.`,
          { cause: error },
        );
      }
      if (error.status === 401 || error.status === 403) {
        // Wise refused the broker itself (a client token it will not take, or signups not allowed for this
        // application): nothing the caller can fix, so the operator is told and the caller asked to wait.
        metrics.addMetric(MetricName.invalidClient, MetricUnit.Count, 1);
        logger.error(
          "Wise refused the signup with the broker's client token; the operator must check the Wise application",
          {
            connectionId: input.connectionId,
            status: error.status,
            traceId: error.traceId,
          },
        );
        throw new ProviderUnavailableError(
          `Wise refused the broker's own authorization for the signup (status ${error.status}), and the operator has been alerted; try the registration again in ${INVALID_CLIENT_RETRY_AFTER_SECONDS / 60} minutes.`,
          { retryAfterSeconds: INVALID_CLIENT_RETRY_AFTER_SECONDS, cause: error },
        );
      }
    }
    throw error;
  }
}

/** Turns a Wise failure into the broker's error for this route; anything else passes through. */
function translateWiseFailure(error: unknown, connectionId: string): unknown {
  const failure = classifyWiseFailure(error);
  if (!failure) return error;
  switch (failure.kind) {
    case 'invalid_grant':
      return new ReauthorizationRequiredError(
        connectionId,
        `Wise refused the registration code for connection "${connectionId}": the user has reclaimed the account (or the code is wrong), so the user must connect through the authorization page instead; create a connect session with POST /connect-sessions.`,
        { cause: error },
      );
    case 'unavailable':
      return new ProviderUnavailableError(
        `Wise is unavailable or rate limiting; try the registration again in ${failure.retryAfterSeconds} s.`,
        { retryAfterSeconds: failure.retryAfterSeconds, cause: error },
      );
    case 'invalid_client':
      // The operator alarm: the client id or secret in Secrets Manager is wrong or revoked.
      metrics.addMetric(MetricName.invalidClient, MetricUnit.Count, 1);
      logger.error("Wise rejected the broker's client credentials; the operator must check the Wise secret", {
        connectionId,
        traceId: error instanceof WiseError ? error.traceId : undefined,
      });
      return new ProviderUnavailableError(
        `Wise cannot be used by the broker right now, and the operator has been alerted; try the registration again in ${INVALID_CLIENT_RETRY_AFTER_SECONDS / 60} minutes.`,
        { retryAfterSeconds: INVALID_CLIENT_RETRY_AFTER_SECONDS, cause: error },
      );
    default:
      // Wise refused a request the broker made (a bug or a configuration error, never the caller's input):
      // no 500 for it, but the operator is told and the caller asked to try again later.
      logger.error('Wise refused the registration unexpectedly; the operator must look at the trace', {
        connectionId,
        error: error instanceof WiseError ? error.name : undefined,
        status: error instanceof WiseError ? error.status : undefined,
        traceId: error instanceof WiseError ? error.traceId : undefined,
      });
      return new ProviderUnavailableError(
        `Wise refused the registration for a reason on the broker's side, and the operator has been alerted; try again in ${INVALID_CLIENT_RETRY_AFTER_SECONDS / 60} minutes.`,
        { retryAfterSeconds: INVALID_CLIENT_RETRY_AFTER_SECONDS, cause: error },
      );
  }
}
