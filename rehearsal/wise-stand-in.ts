import type { RunningSimulator } from '#local/simulator/index.ts';
import { type BrokerConfig, parseBrokerConfig } from '#shared/config/broker-config.ts';
import { type CloudAssembly, resources } from './assembly.ts';
import { RehearsalError } from './errors.ts';

/** The environment variable holding the broker's configuration (infra/broker-function.ts). */
const CONFIG_VARIABLE = 'BROKER_CONFIG';

/** The Wise application the simulator registers for the rehearsal, and what the deployer stores for it. */
export const WISE_STAND_IN = {
  clientId: 'rehearsal-client',
  clientSecret: 'rehearsal-client-secret',
  /**
   * What the deployer puts into a secret (README, "Put the Wise credentials into the secret"): the Wise
   * client's id and secret where the template's placeholder has those fields; any other secret keeps its value.
   */
  secretValue(config: BrokerConfig, templateValue: unknown): string {
    const text = typeof templateValue === 'string' ? templateValue : '{}';
    try {
      const placeholder = JSON.parse(text) as Record<string, unknown>;
      if ('clientId' in placeholder && 'clientSecret' in placeholder) {
        return JSON.stringify({
          clientId: config.wise.clientId ?? this.clientId,
          clientSecret: this.clientSecret,
        });
      }
    } catch {
      // Not JSON: not the Wise credentials.
    }
    return text;
  },
};

/** The broker's configuration as the template hands it to its functions. */
export function brokerConfigOf(assembly: CloudAssembly): BrokerConfig {
  for (const { stack, logicalId, resource } of resources(assembly, 'AWS::Lambda::Function')) {
    const variables = (
      resource.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined
    )?.Variables;
    const value = variables?.[CONFIG_VARIABLE];
    if (typeof value === 'string') {
      return parseBrokerConfig(JSON.parse(value), `${CONFIG_VARIABLE} of ${stack.name} ${logicalId}`);
    }
  }
  throw new RehearsalError(`No function of the assembly is given ${CONFIG_VARIABLE}.`);
}

/**
 * The callers the journey signs as: one that uses connections and the client token, one administrator, and
 * one that imports connections.
 */
export function callersOf(config: BrokerConfig): {
  user: JourneyIdentity;
  admin: JourneyIdentity;
  importer: JourneyIdentity;
} {
  const user =
    config.callers.find((caller) => caller.use.length > 0 && caller.clientToken) ??
    config.callers.find((caller) => caller.use.length > 0);
  const admin = config.callers.find((caller) => caller.administer.length > 0);
  const importer = config.callers.find((caller) => caller.import.length > 0);
  if (!user || !admin) {
    throw new RehearsalError(
      'The configuration needs a caller with "use" patterns and one with "administer" patterns for the journey (cdk.json has both).',
    );
  }
  if (!importer) {
    throw new RehearsalError(
      'The configuration needs a caller with "import" patterns for the journey to import a connection (the rehearsal adds one when it synthesizes and cdk.json has none).',
    );
  }
  return {
    user: { principal: user.principal, patterns: user.use },
    admin: { principal: admin.principal, patterns: admin.administer },
    importer: { principal: importer.principal, patterns: importer.import },
  };
}

/**
 * The return URL the journey's connect sessions name: the first the configuration allows, or none when it
 * connects without confirmation.
 */
export function returnUrlOf(config: BrokerConfig): string | undefined {
  const [first] = config.returnUrls;
  if (first !== undefined) return first;
  if (config.connectWithoutConfirmation) return undefined;
  throw new RehearsalError(
    'The configuration allows no return URL and connects only with confirmation, so no connect session can start: add one to "returnUrls".',
  );
}

/** A return URL the rehearsal adds to the configuration it synthesizes; the journey never opens it. */
export const REHEARSAL_RETURN_URL = 'https://partner.example/wise/connected';

/** A caller of the journey: its principal and the connection patterns of its grant. */
export interface JourneyIdentity {
  principal: string;
  patterns: string[];
}

/** Points the configuration in a function's environment at the Wise simulator instead of Wise's hosts. */
export function pointAtWise(environment: Record<string, string>, simulator: RunningSimulator): void {
  const text = environment[CONFIG_VARIABLE];
  if (text === undefined) return;
  const config = JSON.parse(text) as { wise?: Record<string, unknown> };
  config.wise = { ...config.wise, apiUrl: simulator.url, authorizeUrl: simulator.authorizeUrl, mtls: false };
  environment[CONFIG_VARIABLE] = JSON.stringify(config);
}
