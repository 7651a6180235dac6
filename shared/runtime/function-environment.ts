import { randomUUID } from 'node:crypto';
import { StdoutAuditTrail } from '#shared/adapters/stdout-audit-trail.ts';
import type { BrokerConfig } from '#shared/config/broker-config.ts';
import { CallerPolicy } from '#shared/domain/caller-policy.ts';
import { BrokerError } from '#shared/domain/errors.ts';
import { logger } from '#shared/observability.ts';
import { once } from '#shared/once.ts';
import type { AuditTrail } from '#shared/ports/audit-trail.ts';
import { type Clock, systemClock } from '#shared/ports/clock.ts';

/**
 * The configuration a function runs with: the deployment's validated configuration without what only the
 * deployment reads (the local run's section, the CDK environment, the API's throttling, the memory sizes).
 * The CDK stack validates it at synth and writes it, defaults filled in, to `BROKER_CONFIG`.
 */
export type FunctionConfig = Omit<BrokerConfig, 'local' | 'env' | 'api' | 'functions'>;

/** A required setting is missing from the Lambda environment. */
export class MissingSettingError extends BrokerError {}

/** A setting in the Lambda environment is not what the CDK stack writes there. */
export class InvalidSettingError extends BrokerError {}

/** What every function reads from its environment, once per cold start. */
export interface FunctionSettings {
  config: FunctionConfig;
  /** The redirect URI registered with Wise, byte for byte. */
  redirectUri: string;
  tableName: string;
  /** The token key, for tokens, registration codes and cursors. */
  keyId: string;
  secretId: string;
  eventBusName: string;
}

/** The value of a variable the CDK stack sets on every function; fails fast when it is absent. */
export function requiredSetting(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (value === undefined || value === '') {
    throw new MissingSettingError(
      `The environment variable ${name} is not set; the CDK stack sets it on every function.`,
    );
  }
  return value;
}

// The parts of BROKER_CONFIG every function reads, with the JSON type each must have.
const CONFIG_FIELDS = {
  stage: 'string',
  wise: 'object',
  callers: 'array',
  returnUrls: 'array',
  connectWithoutConfirmation: 'boolean',
  refresh: 'object',
} as const;

/**
 * Reads `BROKER_CONFIG`. The full schema ran at synth, where the stack wrote this value with every default
 * filled in, so a function checks only that the value is the stack's (JSON with the fields functions read)
 * and keeps the schema, and its validator, out of its bundle.
 */
export function functionConfig(env: NodeJS.ProcessEnv): FunctionConfig {
  const text = requiredSetting(env, 'BROKER_CONFIG');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidSettingError(
      'The environment variable BROKER_CONFIG is not JSON; deploy the CDK stack again rather than editing it.',
      { cause: error },
    );
  }
  const record = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const wrong = Object.entries(CONFIG_FIELDS)
    .filter(([field, type]) => {
      const fieldValue = record[field];
      return type === 'array'
        ? !Array.isArray(fieldValue)
        : typeof fieldValue !== type || fieldValue === null;
    })
    .map(([field]) => field);
  if (wrong.length > 0) {
    throw new InvalidSettingError(
      `The environment variable BROKER_CONFIG is not the configuration the CDK stack writes (${wrong.join(', ')} missing or of the wrong type); deploy the stack again rather than editing it.`,
    );
  }
  return value as FunctionConfig;
}

/**
 * Reads a deployed function's settings from its environment, failing fast on anything missing. The SDK
 * clients read their endpoints from the standard `AWS_ENDPOINT_URL_*` variables when set.
 */
export function settingsFromEnvironment(env: NodeJS.ProcessEnv = process.env): FunctionSettings {
  return {
    config: functionConfig(env),
    redirectUri: requiredSetting(env, 'REDIRECT_URI'),
    tableName: requiredSetting(env, 'TABLE_NAME'),
    // The token key, for tokens, registration codes and cursors; the table and the secret use the data
    // key, through DynamoDB and Secrets Manager only.
    keyId: requiredSetting(env, 'KMS_KEY_ID'),
    secretId: requiredSetting(env, 'WISE_SECRET_ID'),
    eventBusName: requiredSetting(env, 'EVENT_BUS_NAME'),
  };
}

/** What every function's use cases share, whatever adapters they call. */
export interface CoreParts {
  config: FunctionConfig;
  redirectUri: string;
  policy: CallerPolicy;
  clock: Clock;
  random: () => number;
  /** Names this instance as a lease owner. */
  instanceId: string;
  /** Where every access to a connection or token is recorded. */
  audit: AuditTrail;
}

/** Builds the parts no adapter is needed for. */
export function coreParts(settings: {
  config: FunctionConfig;
  redirectUri: string;
  clock?: Clock;
  random?: () => number;
  audit?: AuditTrail;
}): CoreParts {
  const clock = settings.clock ?? systemClock;
  return {
    config: settings.config,
    redirectUri: settings.redirectUri,
    policy: new CallerPolicy(settings.config.callers),
    clock,
    random: settings.random ?? Math.random,
    instanceId: randomUUID(),
    audit: settings.audit ?? new StdoutAuditTrail({ clock }),
  };
}

/**
 * A deployed function's composition (its settings, SDK clients and adapters), built when Lambda loads the
 * function (its init phase, which provisioned concurrency runs ahead of any request) rather than by its
 * first request. A composition that fails there is logged and built again by each request, which fails
 * with the same error and answers it as any other. Outside Lambda, such as a test importing a handler,
 * the composition is built on first use.
 */
export function composedAtInit<T>(build: () => T, env: NodeJS.ProcessEnv = process.env): () => T {
  const composition = once(build);
  if (env.AWS_LAMBDA_FUNCTION_NAME !== undefined) {
    try {
      composition();
    } catch (error) {
      logger.error('The function could not build its parts at init; each request will fail the same way.', {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return composition;
}
