import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { AuditTrail } from '#shared/ports/audit-trail.ts';
import type { Clock } from '#shared/ports/clock.ts';
import type { BrokerEvents } from '#shared/ports/events.ts';
import type { TokenCipher } from '#shared/ports/token-cipher.ts';
import type { TokenStore } from '#shared/ports/token-store.ts';
import type { WiseOAuth } from '#shared/ports/wise-oauth.ts';
import { brokerEventsOf, tokenCipherOf, tokenStoreOf } from './aws-parts.ts';
import { type CoreParts, coreParts, type FunctionSettings } from './function-environment.ts';
import { wiseOf } from './wise-parts.ts';

/**
 * Everything a use case may reach. Each deployed function builds only the parts its use cases name (its
 * handler's composition root); the local run and the tests build all of them with {@link createRuntime}.
 */
export interface Runtime extends CoreParts {
  store: TokenStore;
  cipher: TokenCipher;
  wise: WiseOAuth;
  events: BrokerEvents;
}

/** The AWS SDK clients the adapters use; locally they point at the embedded endpoints. */
export interface AwsClients {
  dynamodb: DynamoDBClient;
  kms: KMSClient;
  secrets: SecretsManagerClient;
  eventBridge: EventBridgeClient;
}

/** What {@link createRuntime} builds from: a function's settings, and the clients to use. */
export interface RuntimeSettings extends FunctionSettings {
  clients: AwsClients;
  clock?: Clock;
  random?: () => number;
  /** How long Wise credentials are cached before Secrets Manager is asked again. */
  credentialsMaxAgeSeconds?: number;
  /** Standard output, marked for the audit forwarder, unless given. */
  audit?: AuditTrail;
}

/**
 * Builds every part from explicit settings: the composition root of the local run and the tests, which
 * serve every route from one process. Deployed functions never import it.
 */
export function createRuntime(settings: RuntimeSettings): Runtime {
  const { clients } = settings;
  const core = coreParts(settings);
  return {
    ...core,
    store: tokenStoreOf(clients.dynamodb, settings),
    cipher: tokenCipherOf(clients.kms, settings),
    wise: wiseOf(clients.secrets, { ...settings, clock: core.clock }),
    events: brokerEventsOf(clients.eventBridge, settings),
  };
}
