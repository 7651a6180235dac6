import { type LocalBroker, startLocalBroker } from '#local/local-broker.ts';
import { LocalSettings } from '#local/local-config.ts';
import { parseBrokerConfig } from '#shared/config/broker-config.ts';
import { BrokerClient } from '../../client/index.ts';
import { localBrokerStorage } from './aws.ts';
import { approveAtSimulator } from './local-broker.ts';

/** The IAM principal the callers of {@link startCallerBroker} sign as. */
export const CALLER_PRINCIPAL = 'arn:aws:iam::000000000000:role/payments';

/** Access keys of {@link CALLER_PRINCIPAL}, which may use connections `acme-*` and the client token. */
export const CALLER_KEYS = {
  accessKeyId: 'AKIACALLERPAYMENTS00',
  secretAccessKey: 'caller-payments-secret-access-key',
};

/**
 * A local broker, in memory, whose one caller signs with {@link CALLER_KEYS}: for tests of callers written
 * in other languages or packaged apart, and for the browser tests. `config` replaces fields of the default
 * deployment configuration (its callers included).
 */
export async function startCallerBroker(
  source: string,
  config: Record<string, unknown> = {},
): Promise<LocalBroker> {
  return startLocalBroker(
    {
      source,
      broker: parseBrokerConfig(
        {
          stage: 'caller-test',
          callers: [{ principal: CALLER_PRINCIPAL, use: ['acme-*'], clientToken: true }],
          // Sessions without a return URL connect at the callback: no partner app confirms here.
          connectWithoutConfirmation: true,
          ...config,
        },
        source,
      ),
      local: LocalSettings.parse({
        port: 0,
        dataDir: null,
        credentials: [{ ...CALLER_KEYS, principal: CALLER_PRINCIPAL }],
        simulator: { port: 0 },
      }),
    },
    { schedule: false, ...localBrokerStorage() },
  );
}

/** Connects the simulator's first Wise user to `connectionId`, as a person approving in a browser would. */
export async function connectAtSimulator(broker: LocalBroker, connectionId: string): Promise<void> {
  const client = new BrokerClient({ baseUrl: broker.url, region: 'us-east-1', credentials: CALLER_KEYS });
  const session = await client.createConnectSession({ connectionId });
  const { callback } = await approveAtSimulator(broker, session.startUrl);
  if (callback.status !== 200) throw new Error(`The callback answered ${callback.status}.`);
}
