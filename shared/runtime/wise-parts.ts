import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretsManagerCredentials } from '#shared/adapters/secrets-manager-credentials.ts';
import { logger } from '#shared/observability.ts';
import type { Clock } from '#shared/ports/clock.ts';
import type { WiseOAuth } from '#shared/ports/wise-oauth.ts';
import { WiseOAuthClient } from '#shared/wise/wise-oauth-client.ts';
import { deployedClientConfig } from './aws-client-config.ts';
import { deployedStoreParts } from './aws-parts.ts';
import { type FunctionConfig, settingsFromEnvironment } from './function-environment.ts';
import type { Runtime } from './runtime.ts';

/** What the Wise client is built from. */
export interface WiseSettings {
  config: Pick<FunctionConfig, 'wise'>;
  redirectUri: string;
  secretId: string;
  clock: Clock;
  /** How long Wise credentials are cached before Secrets Manager is asked again. */
  credentialsMaxAgeSeconds?: number;
}

/** The Wise OAuth client, with the Wise credentials read from Secrets Manager through `client`. */
export function wiseOf(client: SecretsManagerClient, settings: WiseSettings): WiseOAuth {
  const { wise } = settings.config;
  const credentials = new SecretsManagerCredentials({
    client,
    secretId: settings.secretId,
    ...(settings.credentialsMaxAgeSeconds === undefined
      ? {}
      : { maxAgeSeconds: settings.credentialsMaxAgeSeconds }),
  });
  return new WiseOAuthClient({
    apiUrl: wise.apiUrl,
    authorizeUrl: wise.authorizeUrl,
    ...(wise.versionPrefix ? { versionPrefix: wise.versionPrefix } : {}),
    ...(wise.clientId === undefined ? {} : { clientId: wise.clientId }),
    redirectUri: settings.redirectUri,
    credentials,
    now: () => settings.clock.now(),
    logger: {
      info: (message, attributes = {}) => logger.info(message, attributes),
      warn: (message, attributes = {}) => logger.warn(message, attributes),
      error: (message, attributes = {}) => logger.error(message, attributes),
    },
  });
}

/** The Wise client of a deployed function, reading the credentials through its own Secrets Manager client. */
export function deployedWise(settings: WiseSettings): WiseOAuth {
  return wiseOf(new SecretsManagerClient(deployedClientConfig()), settings);
}

/** The composition root of a deployed function that reaches Wise: every adapter, Secrets Manager included. */
export function deployedRuntime(): Runtime {
  const settings = settingsFromEnvironment();
  const parts = deployedStoreParts(settings);
  return { ...parts, wise: deployedWise({ ...settings, clock: parts.clock }) };
}
