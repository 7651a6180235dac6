import { App, type AppProps } from 'aws-cdk-lib';
import {
  type BrokerConfig,
  brokerConfigSchema,
  ConfigurationError,
  parseBrokerConfigWith,
} from '#shared/config/broker-config.ts';
import { readConfigurationJson } from '#shared/config/broker-config-file.ts';
import { StatefulStack } from './stateful-stack.ts';
import { StatelessStack, tokenKeyUsers } from './stateless-stack.ts';

/** A configuration that names the AWS account and region to deploy to. */
export type DeployableConfig = BrokerConfig & { env: NonNullable<BrokerConfig['env']> };

/** The context key naming a configuration file that replaces the top-level context keys. */
export const CONFIG_FILE_CONTEXT_KEY = 'configFile';

const CONFIG_KEYS = Object.keys(brokerConfigSchema.shape);

/**
 * Reads the deployment's configuration from CDK context: the file named by `-c configFile=path.json`, or
 * else the top-level context keys of the schema (`stage`, `callers`, ...; cdk.json holds an example). A
 * value given on the command line as JSON text (`-c refresh='{"fraction":0.7}'`) is parsed first.
 *
 * @throws ConfigurationError when the configuration is not valid or names no AWS account and region
 */
export function brokerConfigFromContext(app: App): DeployableConfig {
  const configFile = app.node.tryGetContext(CONFIG_FILE_CONTEXT_KEY);
  let input: unknown;
  let source: string;
  if (configFile !== undefined) {
    if (typeof configFile !== 'string' || configFile === '') {
      throw new ConfigurationError('the CDK context', [
        {
          path: CONFIG_FILE_CONTEXT_KEY,
          message: 'must be the path of a JSON file, as in -c configFile=prod.json',
        },
      ]);
    }
    source = configFile;
    input = readConfigurationJson(configFile);
  } else {
    source = 'the CDK context (cdk.json and -c options)';
    const keys: Record<string, unknown> = {};
    for (const key of CONFIG_KEYS) {
      const value = app.node.tryGetContext(key);
      if (value !== undefined) keys[key] = fromCommandLine(value);
    }
    input = keys;
  }
  // A missing env is reported with every other problem, not only once the rest is fixed.
  const config = parseBrokerConfigWith(input, source, (raw) =>
    typeof raw === 'object' && raw !== null && (raw as { env?: unknown }).env !== undefined
      ? []
      : [
          {
            path: 'env',
            message:
              'is required to deploy: give the AWS account and region, as in "env": {"account": "123456789012", "region": "eu-west-1"}',
          },
        ],
  );
  return config as DeployableConfig;
}

/** `-c key=value` gives text; a value that is JSON text for an object or list is parsed. */
function fromCommandLine(value: unknown): unknown {
  if (typeof value !== 'string' || !/^\s*[[{]/.test(value)) return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** The names of a deployment's two stacks. */
export function stackNames(stage: string): { stateful: string; stateless: string } {
  return { stateful: `WiseBroker-${stage}-Stateful`, stateless: `WiseBroker-${stage}-Stateless` };
}

/** The broker's two stacks in a CDK app, configured from the app's context. */
export function createBrokerApp(props: AppProps = {}): {
  app: App;
  config: DeployableConfig;
  stateful: StatefulStack;
  stateless: StatelessStack;
} {
  const app = new App({
    ...props,
    // Strong references (exports) stop the stateful stack from being deleted while the functions use it.
    context: { '@aws-cdk/core:defaultCrossStackReferences': 'strong', ...props.context },
  });
  const config = brokerConfigFromContext(app);
  const names = stackNames(config.stage);
  const env = config.env;
  const stateful = new StatefulStack(app, names.stateful, {
    config,
    tokenKeyUsers: tokenKeyUsers(config.stage),
    env,
    description: `Wise token broker (${config.stage}): keys, table, Wise credentials and audit trail (retained)`,
  });
  const stateless = new StatelessStack(app, names.stateless, {
    config,
    env,
    description: `Wise token broker (${config.stage}): functions, API, refresh schedule and alarms`,
    table: stateful.table,
    key: stateful.key,
    tokenKey: stateful.tokenKey,
    secret: stateful.secret,
    auditLogGroup: stateful.auditLogGroup,
  });
  return { app, config, stateful, stateless };
}
