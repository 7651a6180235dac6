import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { KMSClient } from '@aws-sdk/client-kms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDbTokenStore } from '#shared/adapters/dynamodb-token-store.ts';
import { EventBridgeEvents } from '#shared/adapters/eventbridge-events.ts';
import { KmsTokenCipher } from '#shared/adapters/kms-token-cipher.ts';
import { SecretsManagerCredentials } from '#shared/adapters/secrets-manager-credentials.ts';
import { StdoutAuditTrail } from '#shared/adapters/stdout-audit-trail.ts';
import { type BrokerConfig, parseBrokerConfig } from '#shared/config/broker-config.ts';
import { CallerPolicy } from '#shared/domain/caller-policy.ts';
import { BrokerError } from '#shared/domain/errors.ts';
import { logger } from '#shared/observability.ts';
import type { AuditTrail } from '#shared/ports/audit-trail.ts';
import { type Clock, systemClock } from '#shared/ports/clock.ts';
import type { BrokerEvents } from '#shared/ports/events.ts';
import type { TokenCipher } from '#shared/ports/token-cipher.ts';
import type { TokenStore } from '#shared/ports/token-store.ts';
import type { WiseOAuth } from '#shared/ports/wise-oauth.ts';
import { WiseOAuthClient } from '#shared/wise/wise-oauth-client.ts';

/** Everything a use case may reach, built once per cold start. */
export interface Runtime {
  config: BrokerConfig;
  /** The redirect URI registered with Wise, byte for byte. */
  redirectUri: string;
  store: TokenStore;
  cipher: TokenCipher;
  wise: WiseOAuth;
  events: BrokerEvents;
  policy: CallerPolicy;
  clock: Clock;
  random: () => number;
  /** Names this instance as a lease owner. */
  instanceId: string;
  /** Where every access to a connection or token is recorded. */
  audit: AuditTrail;
}

/** The AWS SDK clients the adapters use; locally they point at the embedded endpoints. */
export interface AwsClients {
  dynamodb: DynamoDBClient;
  kms: KMSClient;
  secrets: SecretsManagerClient;
  eventBridge: EventBridgeClient;
}

export interface RuntimeSettings {
  config: BrokerConfig;
  redirectUri: string;
  tableName: string;
  keyId: string;
  secretId: string;
  eventBusName: string;
  clients: AwsClients;
  clock?: Clock;
  random?: () => number;
  /** How long Wise credentials are cached before Secrets Manager is asked again. */
  credentialsMaxAgeSeconds?: number;
  /** Standard output, marked for the audit forwarder, unless given. */
  audit?: AuditTrail;
}

/** Builds the runtime from explicit settings: the composition root for Lambda, the local run and tests. */
export function createRuntime(settings: RuntimeSettings): Runtime {
  const { config, clients } = settings;
  const clock = settings.clock ?? systemClock;
  const credentials = new SecretsManagerCredentials({
    client: clients.secrets,
    secretId: settings.secretId,
    ...(settings.credentialsMaxAgeSeconds === undefined
      ? {}
      : { maxAgeSeconds: settings.credentialsMaxAgeSeconds }),
  });
  const wise = new WiseOAuthClient({
    apiUrl: config.wise.apiUrl,
    authorizeUrl: config.wise.authorizeUrl,
    ...(config.wise.versionPrefix ? { versionPrefix: config.wise.versionPrefix } : {}),
    ...(config.wise.clientId === undefined ? {} : { clientId: config.wise.clientId }),
    redirectUri: settings.redirectUri,
    credentials,
    now: () => clock.now(),
    logger: {
      info: (message, attributes = {}) => logger.info(message, attributes),
      warn: (message, attributes = {}) => logger.warn(message, attributes),
      error: (message, attributes = {}) => logger.error(message, attributes),
    },
  });
  return {
    config,
    redirectUri: settings.redirectUri,
    store: new DynamoDbTokenStore({
      client: clients.dynamodb,
      tableName: settings.tableName,
      shards: config.refresh.shards,
    }),
    cipher: new KmsTokenCipher({ client: clients.kms, keyId: settings.keyId, deployment: config.stage }),
    wise,
    events: new EventBridgeEvents({ client: clients.eventBridge, eventBusName: settings.eventBusName }),
    policy: new CallerPolicy(config.callers),
    clock,
    random: settings.random ?? Math.random,
    instanceId: randomUUID(),
    audit: settings.audit ?? new StdoutAuditTrail({ clock }),
  };
}

/** A required setting is missing from the Lambda environment. */
export class MissingSettingError extends BrokerError {}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (value === undefined || value === '') {
    throw new MissingSettingError(
      `The environment variable ${name} is not set; the CDK stack sets it on every function.`,
    );
  }
  return value;
}

/**
 * Builds the runtime of a deployed function from its environment, failing fast on anything missing.
 * The SDK clients read their endpoints from the standard `AWS_ENDPOINT_URL_*` variables when set.
 */
export function runtimeFromEnvironment(env: NodeJS.ProcessEnv = process.env): Runtime {
  const config = parseBrokerConfig(
    JSON.parse(required(env, 'BROKER_CONFIG')),
    'the BROKER_CONFIG environment variable',
  );
  return createRuntime({
    config,
    redirectUri: required(env, 'REDIRECT_URI'),
    tableName: required(env, 'TABLE_NAME'),
    // The token key, for tokens, registration codes and cursors; the table and the secret use the data
    // key, through DynamoDB and Secrets Manager only.
    keyId: required(env, 'KMS_KEY_ID'),
    secretId: required(env, 'WISE_SECRET_ID'),
    eventBusName: required(env, 'EVENT_BUS_NAME'),
    clients: {
      dynamodb: new DynamoDBClient({}),
      kms: new KMSClient({}),
      secrets: new SecretsManagerClient({}),
      eventBridge: new EventBridgeClient({}),
    },
  });
}

/** A runtime source that builds once, on first use, and hands out the same runtime afterwards. */
export type RuntimeSource = () => Runtime;

export function lazyRuntime(build: () => Runtime = () => runtimeFromEnvironment()): RuntimeSource {
  let runtime: Runtime | undefined;
  return () => {
    runtime ??= build();
    return runtime;
  };
}
