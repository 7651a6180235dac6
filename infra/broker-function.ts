import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { type BundlingOptions, LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { type BrokerConfig, ConfigurationError } from '#shared/config/broker-config.ts';

/** The folder holding package.json and package-lock.json; handler entries are relative to it. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The CloudWatch namespace of the broker's own metrics (the handlers' Powertools `Metrics`). */
export const METRICS_NAMESPACE = 'WiseTokenBroker';

/**
 * Lambda allows 4 KB of environment variables per function; the rest of the common variables (ARNs, names)
 * take well under 800 bytes, which leaves this much for `BROKER_CONFIG`.
 */
export const MAX_BROKER_CONFIG_CHARACTERS = 3200;

/** What every broker function is told about its deployment. */
export interface BrokerDeployment {
  readonly config: BrokerConfig;
  /** The redirect URI registered with Wise: the configured one or the API's callback URL. */
  readonly redirectUri: string;
  readonly tableName: string;
  /** The token key: every token, registration code and listing cursor is encrypted with it. */
  readonly keyArn: string;
  readonly secretArn: string;
  readonly eventBusName: string;
}

/**
 * The IAM role name of one broker function, such as `wise-broker-prod-tokens` (at most 49 characters). The
 * name is fixed so the token key's policy, in the stateful stack, can name the roles that may use it
 * (`aws:PrincipalArn`) before they exist and after the stateless stack is deployed again; like the
 * managed policies' names, it makes a stage one per account.
 */
export function functionRoleName(stage: string, functionName: string): string {
  return `wise-broker-${stage}-${functionName}`;
}

/** The Powertools service name, which is also the `service` dimension of every broker metric. */
export function serviceName(stage: string): string {
  return `wise-broker-${stage}`;
}

/**
 * The environment every broker function receives. `BROKER_CONFIG` is the validated configuration without
 * the sections only the deployment reads. `NODE_OPTIONS=--enable-source-maps` only with
 * `functions.sourceMaps`: Node.js then reads the bundle's source map at every cold start.
 */
export function commonEnvironment(deployment: BrokerDeployment): Record<string, string> {
  // What only the deployment reads (the local run, the CDK environment, throttling, memory, private access,
  // the domain) stays out.
  const {
    local: _local,
    env: _env,
    api: _api,
    functions: _functions,
    privateAccess: _privateAccess,
    domain: _domain,
    ...runtimeConfig
  } = deployment.config;
  const brokerConfig = JSON.stringify(runtimeConfig);
  if (brokerConfig.length > MAX_BROKER_CONFIG_CHARACTERS) {
    const inlineLogo = runtimeConfig.brand.logo?.startsWith('data:') === true;
    throw new ConfigurationError('the deployment configuration', [
      inlineLogo
        ? {
            path: 'brand.logo',
            message: `makes BROKER_CONFIG ${brokerConfig.length} characters with the inline image, over the ${MAX_BROKER_CONFIG_CHARACTERS} that fit in Lambda's 4 KB of environment: give the logo as an https:// URL, or a smaller image`,
          }
        : {
            path: 'callers',
            message: `makes BROKER_CONFIG ${brokerConfig.length} characters, over the ${MAX_BROKER_CONFIG_CHARACTERS} that fit in Lambda's 4 KB of environment: merge callers or use wider connection patterns`,
          },
    ]);
  }
  const stage = deployment.config.stage;
  return {
    BROKER_CONFIG: brokerConfig,
    REDIRECT_URI: deployment.redirectUri,
    TABLE_NAME: deployment.tableName,
    KMS_KEY_ID: deployment.keyArn,
    WISE_SECRET_ID: deployment.secretArn,
    EVENT_BUS_NAME: deployment.eventBusName,
    POWERTOOLS_SERVICE_NAME: serviceName(stage),
    POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    ...(deployment.config.functions.sourceMaps ? { NODE_OPTIONS: '--enable-source-maps' } : {}),
  };
}

/**
 * How every broker function is bundled: minified ESM for Node.js 24 with source maps, the AWS SDK included
 * (the functions then run the versions the tests ran), and the names of classes and functions kept through
 * minification, so an error in a log line or a metric is `InvalidRequestError`, not a mangled name. The
 * `index.mjs.map` beside every bundle is used at run time only with `functions.sourceMaps`; otherwise it
 * decodes a stack position offline.
 */
export const BUNDLING: BundlingOptions = {
  format: OutputFormat.ESM,
  target: 'node24',
  mainFields: ['module', 'main'],
  minify: true,
  keepNames: true,
  sourceMap: true,
  sourcesContent: false,
  externalModules: [],
  // Some CommonJS dependencies call require() for Node's built-ins, which ESM output lacks.
  banner: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);",
  forceDockerBundling: false,
  // esbuild's per-file size summary marks every bundle over 1 MB with a warning sign, though nothing is
  // wrong; its real warnings and errors still print.
  logLevel: LogLevel.WARNING,
};

export interface BrokerFunctionProps {
  /** The handler file relative to the project root, such as `functions/tokens/handler.ts`; it exports `handler`. */
  readonly entry: string;
  readonly description: string;
  readonly deployment: BrokerDeployment;
  /** The function's own variables, added to the common ones; a name the common ones use is an error. */
  readonly environment?: Readonly<Record<string, string>>;
  /** 28 seconds unless given: API Gateway gives up on an integration after 30. */
  readonly timeout?: Duration;
  /** `functions.memorySize` of the configuration (512 MB) unless given. */
  readonly memorySize?: number;
  readonly reservedConcurrentExecutions?: number;
  /** The role's name (see {@link functionRoleName}); CloudFormation names it when left out. */
  readonly roleName?: string;
}

/**
 * One broker Lambda function with the project's defaults: Node.js 24 on arm64, bundled locally by esbuild
 * as minified ESM with source maps and the source's names ({@link BUNDLING}), its own role (no managed
 * policies; callers add exactly what the function uses), its own log group with a retention, and active
 * X-Ray tracing.
 */
export class BrokerFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: BrokerFunctionProps) {
    super(scope, id);
    const common = commonEnvironment(props.deployment);
    const clashes = Object.keys(props.environment ?? {}).filter((name) => name in common);
    if (clashes.length > 0) {
      throw new Error(
        `${this.node.path}: the environment variables ${clashes.join(', ')} are set for every broker function; use other names.`,
      );
    }

    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      ...(props.roleName === undefined ? {} : { roleName: props.roleName }),
      description: `${props.description} (wise-broker ${props.deployment.config.stage})`,
    });
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: RetentionDays.THREE_MONTHS,
      removalPolicy:
        props.deployment.config.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry: join(PROJECT_ROOT, props.entry),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? props.deployment.config.functions.memorySize,
      timeout: props.timeout ?? Duration.seconds(28),
      role: this.role,
      logGroup: this.logGroup,
      tracing: Tracing.ACTIVE,
      ...(props.reservedConcurrentExecutions === undefined
        ? {}
        : { reservedConcurrentExecutions: props.reservedConcurrentExecutions }),
      environment: { ...props.environment, ...common },
      bundling: BUNDLING,
    });

    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Only the X-Ray statement (xray:PutTraceSegments, xray:PutTelemetryRecords) uses "*": X-Ray has no resource-level permissions.',
    });
  }
}
