import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { KMSClient } from '@aws-sdk/client-kms';
import { DynamoDbTokenStore } from '#shared/adapters/dynamodb-token-store.ts';
import { EventBridgeEvents } from '#shared/adapters/eventbridge-events.ts';
import { KmsTokenCipher } from '#shared/adapters/kms-token-cipher.ts';
import type { BrokerEvents } from '#shared/ports/events.ts';
import type { TokenCipher } from '#shared/ports/token-cipher.ts';
import type { TokenStore } from '#shared/ports/token-store.ts';
import { deployedClientConfig } from './aws-client-config.ts';
import {
  type CoreParts,
  coreParts,
  type FunctionConfig,
  type FunctionSettings,
  settingsFromEnvironment,
} from './function-environment.ts';

// One builder per adapter, each taking the SDK client it wraps: a function's composition root imports only
// the builders, and so only the clients, it calls. The local run and the tests pass clients of their own.

/** The token store on the broker's table. */
export function tokenStoreOf(
  client: DynamoDBClient,
  settings: { tableName: string; config: Pick<FunctionConfig, 'refresh'> },
): TokenStore {
  return new DynamoDbTokenStore({
    client,
    tableName: settings.tableName,
    shards: settings.config.refresh.shards,
  });
}

/** The cipher of tokens, registration codes and cursors, under the token key. */
export function tokenCipherOf(
  client: KMSClient,
  settings: { keyId: string; config: Pick<FunctionConfig, 'stage'> },
): TokenCipher {
  return new KmsTokenCipher({ client, keyId: settings.keyId, deployment: settings.config.stage });
}

/** The connection events, on the broker's bus. */
export function brokerEventsOf(client: EventBridgeClient, settings: { eventBusName: string }): BrokerEvents {
  return new EventBridgeEvents({ client, eventBusName: settings.eventBusName });
}

// A deployed function's clients: bounded timeouts (see `deployedClientConfig`), with the region, credentials and any endpoint
// (`AWS_ENDPOINT_URL_*`) from the Lambda environment.

/** The token store of a deployed function, on its own DynamoDB client. */
export function deployedTokenStore(settings: Parameters<typeof tokenStoreOf>[1]): TokenStore {
  return tokenStoreOf(new DynamoDBClient(deployedClientConfig()), settings);
}

/** The token cipher of a deployed function, on its own KMS client. */
export function deployedTokenCipher(settings: Parameters<typeof tokenCipherOf>[1]): TokenCipher {
  return tokenCipherOf(new KMSClient(deployedClientConfig()), settings);
}

/** The connection events of a deployed function, on its own EventBridge client. */
export function deployedBrokerEvents(settings: Parameters<typeof brokerEventsOf>[1]): BrokerEvents {
  return brokerEventsOf(new EventBridgeClient(deployedClientConfig()), settings);
}

/** What a deployed function that never reaches Wise builds: DynamoDB, KMS and EventBridge, no Secrets Manager. */
export interface StoreParts extends CoreParts {
  store: TokenStore;
  cipher: TokenCipher;
  events: BrokerEvents;
}

/** The composition root of a deployed function that stores, seals and announces connections, without Wise. */
export function deployedStoreParts(settings: FunctionSettings = settingsFromEnvironment()): StoreParts {
  return {
    ...coreParts(settings),
    store: deployedTokenStore(settings),
    cipher: deployedTokenCipher(settings),
    events: deployedBrokerEvents(settings),
  };
}
