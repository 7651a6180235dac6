import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { HttpApi, HttpNoneAuthorizer, LogGroupLogDestination } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { EventBus, Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { type ILogGroup, LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { StringParameter } from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import {
  CONNECTIONS_BY_STATUS_INDEX,
  ITEM_PARTITION_KEYS,
  REFRESH_DUE_INDEX,
} from '#shared/adapters/dynamodb-token-store.ts';
import { type BrokerConfig, ConfigurationError } from '#shared/config/broker-config.ts';
import { EVENT_SOURCE } from '#shared/domain/connection-events.ts';
import type { CipherKind } from '#shared/domain/records.ts';
import { AuditTrail } from './audit-trail.ts';
import { type BrokerDeployment, BrokerFunction, functionRoleName } from './broker-function.ts';
import { CALLER_KINDS, CallerAccess } from './caller-access.ts';
import { CustomDomain } from './custom-domain.ts';
import { EventSchemas } from './event-schemas.ts';
import { Monitoring } from './monitoring.ts';
import { PrivateApi, type PrivateApiProps } from './private-api.ts';
import { BROKER_ROUTES, type FunctionName } from './routes.ts';
import type { BrokerTable } from './stateful-stack.ts';
import { type TokenKeyUser, tokenKeyStatements } from './token-key.ts';

/** DynamoDB actions on the table's items whose partition key matches one of `leadingKeys`. */
export interface ItemAccess {
  readonly actions: readonly string[];
  /** `dynamodb:LeadingKeys` patterns, from {@link ITEM_PARTITION_KEYS}. */
  readonly leadingKeys: readonly string[];
}

/** What one function may do; each function gets exactly this and nothing more. */
export interface FunctionAccess {
  /** DynamoDB actions on the table's items, each limited to the kinds of item it needs. */
  readonly items: readonly ItemAccess[];
  /** Indexes the function queries (`dynamodb:Query` on each). */
  readonly queryIndexes: readonly string[];
  /**
   * The kinds of secret (the encryption context's `kind`) the function encrypts with the token key
   * (`kms:Encrypt`).
   */
  readonly encrypts: readonly CipherKind[];
  /** The kinds of secret the function decrypts with the token key. */
  readonly decrypts: readonly CipherKind[];
  /**
   * Reads the Wise client credentials: always, or (`'client-id'`) only for the client id, which then comes
   * from the configuration's `wise.clientId` when it is set, and the secret stays out of reach.
   */
  readonly wiseCredentials: boolean | 'client-id';
  /** Publishes connection events on the broker's bus. */
  readonly putEvents: boolean;
}

interface FunctionSpec {
  readonly description: string;
  readonly access: FunctionAccess;
}

const { connection, client, connectSession, pendingCompletion, wiseUser } = ITEM_PARTITION_KEYS;

/**
 * What a function that may refresh a token uses (the refresh-record use case, for connections and for the
 * client token): the record, its fence (read with it in one Query) and its lease, Wise's credentials, the
 * record's data key opened and a new one for each write (every token and registration code is sealed under
 * the record's data key), and the "re-authorization required" event.
 */
const REFRESHES_TOKENS: FunctionAccess = {
  items: [
    {
      actions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'],
      leadingKeys: [connection, client],
    },
  ],
  queryIndexes: [],
  encrypts: ['data_key'],
  decrypts: ['data_key'],
  wiseCredentials: true,
  putEvents: true,
};

/** The broker's functions and what each one uses (read from their use cases). */
export const FUNCTIONS: Readonly<Record<FunctionName, FunctionSpec>> = {
  'connect-sessions': {
    description:
      "Starts a Wise authorization (a one-time state and the start URL) and confirms its connection with the partner's completion code",
    access: {
      items: [
        { actions: ['dynamodb:PutItem'], leadingKeys: [connectSession] },
        // The completion exchange: takes the pending grant once and stores it as the connection, links the
        // Wise user to it, and marks (with an event) the user's earlier connection.
        { actions: ['dynamodb:DeleteItem'], leadingKeys: [pendingCompletion] },
        { actions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'], leadingKeys: [connection] },
        { actions: ['dynamodb:PutItem'], leadingKeys: [wiseUser] },
      ],
      queryIndexes: [],
      // Seals the pending grant again when its connection was refreshed or disconnected since the callback.
      encrypts: ['data_key'],
      decrypts: ['data_key'],
      // The start URL's function builds the authorize URL: sessions and completions need nothing of Wise.
      wiseCredentials: false,
      putEvents: true,
    },
  },
  'oauth-callback': {
    description:
      "Binds a Wise authorization to the browser that starts it, then completes it: consumes the state, exchanges the code, stores the user's tokens",
    access: {
      // Binds (UpdateItem) and consumes connect sessions, keeps a grant waiting for its completion code
      // (PutItem), and writes connections; no other item, and no delete of a connection. It links the Wise
      // user to the connection, and marks (with an event) the user's earlier connection.
      items: [
        { actions: ['dynamodb:DeleteItem', 'dynamodb:UpdateItem'], leadingKeys: [connectSession] },
        { actions: ['dynamodb:PutItem'], leadingKeys: [pendingCompletion] },
        { actions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'], leadingKeys: [connection] },
        { actions: ['dynamodb:PutItem'], leadingKeys: [wiseUser] },
      ],
      queryIndexes: [],
      // A data key for the connection's write; it never opens a stored one.
      encrypts: ['data_key'],
      decrypts: [],
      wiseCredentials: true,
      putEvents: true,
    },
  },
  registration: {
    description: 'Connects a partner-created Wise user with the registration_code grant',
    access: {
      ...REFRESHES_TOKENS,
      // Stores the new connection with its code and links the Wise user to it; reads (and mints) the client
      // token for the signup.
      items: [...REFRESHES_TOKENS.items, { actions: ['dynamodb:PutItem'], leadingKeys: [wiseUser] }],
    },
  },
  tokens: {
    description: 'Vends the current access token of a connection or the client-credentials token',
    access: REFRESHES_TOKENS,
  },
  connections: {
    description: 'Lists, reads the status of and disconnects connections',
    access: {
      // Reads a connection with its fence (one Query); a disconnect also removes the Wise user's link.
      items: [
        { actions: ['dynamodb:Query', 'dynamodb:UpdateItem'], leadingKeys: [connection] },
        { actions: ['dynamodb:DeleteItem'], leadingKeys: [wiseUser] },
      ],
      queryIndexes: [CONNECTIONS_BY_STATUS_INDEX],
      // Seals and opens the listing's nextToken, and nothing else: no stored token.
      encrypts: ['list_cursor'],
      decrypts: ['list_cursor'],
      wiseCredentials: false,
      putEvents: true,
    },
  },
  import: {
    description:
      'Imports an existing Wise connection: refreshes its token once at Wise and stores the new tokens',
    access: {
      // Reads the connection (is it already there?) and writes it, and links the Wise user to it (marking the
      // user's earlier connection); never a session, the client token or a delete.
      items: [
        { actions: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'], leadingKeys: [connection] },
        { actions: ['dynamodb:PutItem'], leadingKeys: [wiseUser] },
      ],
      queryIndexes: [],
      // A data key for the connection's write; it never opens a stored one: the refresh token it refreshes
      // arrives in the request.
      encrypts: ['data_key'],
      decrypts: [],
      wiseCredentials: true,
      putEvents: true,
    },
  },
  refresh: {
    description: 'Refreshes every token whose refresh is due (the EventBridge schedule)',
    access: { ...REFRESHES_TOKENS, queryIndexes: [REFRESH_DUE_INDEX] },
  },
};

/**
 * Who may use the token key, and for which kinds: each function's role by its fixed name. The stateful
 * stack writes these into the key's policy; the stateless stack gives the same roles the same rights.
 */
export function tokenKeyUsers(stage: string): TokenKeyUser[] {
  return (Object.keys(FUNCTIONS) as FunctionName[])
    .map((functionName) => {
      const { encrypts, decrypts } = FUNCTIONS[functionName].access;
      return { functionName, roleName: functionRoleName(stage, functionName), encrypts, decrypts };
    })
    .filter((user) => user.encrypts.length > 0 || user.decrypts.length > 0);
}

/** The SSM parameter a stage writes its API URL to: `/wise-broker/<stage>/api-url`. */
export function apiUrlParameterName(stage: string): string {
  return `/wise-broker/${stage}/api-url`;
}

/** Two sweeps at most at once: one running late and the next; the rest of the account stays free. */
export const REFRESH_RESERVED_CONCURRENCY = 2;

export interface StatelessStackProps extends StackProps {
  readonly config: BrokerConfig;
  readonly table: BrokerTable;
  /** The data key: the table and the secret are encrypted with it, and functions use it only through them. */
  readonly key: Key;
  /** The token key, which encrypts every token, registration code and listing cursor. */
  readonly tokenKey: Key;
  readonly secret: Secret;
  readonly auditLogGroup: ILogGroup;
}

/**
 * The broker's code and wiring, safe to delete and redeploy: the functions, the HTTP API, the refresh
 * schedule, the event bus, the calling services' policies, and the alarms and dashboard.
 */
export class StatelessStack extends Stack {
  readonly api: HttpApi;
  readonly eventBus: EventBus;
  /** The schema registry of the connection events published on {@link eventBus}. */
  readonly eventSchemas: EventSchemas;
  readonly functions: Readonly<Record<FunctionName, BrokerFunction>>;
  readonly callerAccess: CallerAccess;
  /** The private REST API of the IAM routes, when the configuration chooses private access. */
  readonly privateApi: PrivateApi | undefined;
  readonly deadLetterQueue: Queue;
  readonly monitoring: Monitoring;
  readonly auditTrail: AuditTrail;
  /** The SSM parameter holding the API's base URL, `/wise-broker/<stage>/api-url`. */
  readonly apiUrlParameter: StringParameter;
  /** The broker's own domain, when the configuration names one. */
  readonly customDomain: CustomDomain | undefined;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    const { config } = props;
    const { stage } = config;
    const removalPolicy = config.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;

    this.eventBus = new EventBus(this, 'EventBus', { eventBusName: `wise-broker-${stage}` });
    this.eventSchemas = new EventSchemas(this, 'EventSchemas', { stage });

    const accessLogs = new LogGroup(this, 'ApiAccessLogs', {
      retention: RetentionDays.THREE_MONTHS,
      removalPolicy,
    });
    this.api = new HttpApi(this, 'Api', {
      apiName: `wise-broker-${stage}`,
      description: `Wise token broker (${stage})`,
      createDefaultStage: false,
      // With its own domain the broker has one address: the execute-api host would be a second, unbranded one.
      ...(config.domain === undefined ? {} : { disableExecuteApiEndpoint: true }),
    });
    const defaultStage = this.api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: config.api.throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            time: '$context.requestTime',
            routeKey: '$context.routeKey',
            status: '$context.status',
            callerArn: '$context.identity.userArn',
            sourceIp: '$context.identity.sourceIp',
            latencyMs: '$context.responseLatency',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    this.customDomain =
      config.domain === undefined
        ? undefined
        : new CustomDomain(this, 'CustomDomain', {
            domain: config.domain,
            api: this.api,
            stage: defaultStage,
          });
    // The HTTP API's base URL (the OAuth pages, and every route unless private access moves the IAM ones).
    const httpApiUrl = this.customDomain?.url ?? this.api.apiEndpoint;
    const callbackUrl = `${httpApiUrl}/oauth/callback`;

    const deployment: BrokerDeployment = {
      config,
      redirectUri: config.redirectUri ?? callbackUrl,
      tableName: props.table.tableName,
      keyArn: props.tokenKey.keyArn,
      secretArn: props.secret.secretArn,
      eventBusName: this.eventBus.eventBusName,
    };
    const sweepSeconds = config.refresh.sweepSeconds;
    const unknownMemory = Object.keys(config.functions.memorySizes).filter((name) => !(name in FUNCTIONS));
    if (unknownMemory.length > 0) {
      throw new ConfigurationError('the deployment configuration', [
        {
          path: 'functions.memorySizes',
          message: `names ${unknownMemory.join(', ')}, which is not a broker function: use ${Object.keys(FUNCTIONS).join(', ')}`,
        },
      ]);
    }
    const make = (name: FunctionName): BrokerFunction => {
      const memorySize = config.functions.memorySizes[name];
      const fn = new BrokerFunction(this, name, {
        entry: `functions/${name}/handler.ts`,
        description: FUNCTIONS[name].description,
        deployment,
        ...(memorySize === undefined ? {} : { memorySize }),
        roleName: functionRoleName(stage, name),
        ...(name === 'refresh'
          ? {
              // A sweep stops starting refreshes before its time runs out; the next one follows.
              timeout: Duration.seconds(Math.min(900, sweepSeconds)),
              reservedConcurrentExecutions: REFRESH_RESERVED_CONCURRENCY,
            }
          : {}),
      });
      this.grantAccess(fn, FUNCTIONS[name].access, props);
      return fn;
    };
    this.functions = {
      'connect-sessions': make('connect-sessions'),
      'oauth-callback': make('oauth-callback'),
      registration: make('registration'),
      tokens: make('tokens'),
      connections: make('connections'),
      import: make('import'),
      refresh: make('refresh'),
    };

    // With private access the IAM routes live on the private REST API; the browser's pages stay here.
    this.privateApi =
      config.privateAccess === undefined
        ? undefined
        : new PrivateApi(this, 'PrivateApi', {
            stage,
            access: config.privateAccess,
            callers: config.callers,
            functions: Object.fromEntries(
              Object.entries(this.functions).map(([name, fn]) => [name, fn.function]),
            ) as Record<string, IFunction> as PrivateApiProps['functions'],
            throttle: config.api.throttle,
            removalPolicy,
          });
    const iam = new HttpIamAuthorizer();
    const integrations = new Map<FunctionName, HttpLambdaIntegration>();
    for (const route of BROKER_ROUTES) {
      if (this.privateApi && route.access !== 'public') continue;
      let integration = integrations.get(route.handler);
      if (!integration) {
        integration = new HttpLambdaIntegration(
          `${route.handler}-integration`,
          this.functions[route.handler].function,
        );
        integrations.set(route.handler, integration);
      }
      const routes = this.api.addRoutes({
        path: route.path,
        methods: [route.method],
        integration,
        authorizer: route.access === 'public' ? new HttpNoneAuthorizer() : iam,
      });
      if (route.access === 'public') {
        for (const publicRoute of routes) {
          Validations.of(publicRoute).acknowledge({
            id: 'AwsSolutions-APIG4',
            reason:
              "The user's browser comes here (from the partner's app, or redirected by Wise) and cannot sign requests; the one-time, expiring state, bound by a cookie to the browser that opened the start URL, is the credential, checked by the function.",
          });
        }
      }
    }

    this.deadLetterQueue = new Queue(this, 'RefreshScheduleDeadLetters', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter queue of the refresh schedule (an EventBridge target).',
    });
    const refreshFunction = this.functions.refresh.function;
    new Rule(this, 'RefreshSchedule', {
      description: `Runs the refresh sweep of the Wise token broker (${stage})`,
      schedule: Schedule.rate(Duration.seconds(sweepSeconds)),
      targets: [
        new LambdaFunction(refreshFunction, {
          retryAttempts: 2,
          maxEventAge: Duration.seconds(sweepSeconds),
          deadLetterQueue: this.deadLetterQueue,
        }),
      ],
    });
    // A failed or throttled sweep is not retried: the next one is at most one period away.
    refreshFunction.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.seconds(sweepSeconds) });

    this.callerAccess = new CallerAccess(this, 'CallerAccess', {
      apiId: this.privateApi?.api.restApiId ?? this.api.apiId,
      stage,
      callers: config.callers,
      resourcePolicy: this.privateApi !== undefined,
    });

    this.auditTrail = new AuditTrail(this, 'AuditTrail', {
      deployment,
      logGroup: props.auditLogGroup,
      sources: this.functions,
    });

    this.monitoring = new Monitoring(this, 'Monitoring', {
      stage,
      functions: Object.fromEntries(
        Object.entries({ ...this.functions, 'audit-forwarder': this.auditTrail.forwarder }).map(
          ([name, fn]) => [name, fn.function],
        ),
      ),
      api: this.api,
      deadLetterQueue: this.deadLetterQueue,
      auditDeadLetterQueue: this.auditTrail.deadLetterQueue,
      alarmEmail: config.alarmEmail,
    });

    this.privateApi?.addDashboardWidgets(this.monitoring.dashboard);

    const apiUrl = this.privateApi?.url ?? httpApiUrl;
    new CfnOutput(this, 'ApiUrl', {
      value: apiUrl,
      description: this.privateApi
        ? "The broker's IAM routes: the private API, reachable through the configured VPC endpoints only"
        : 'The broker API',
    });
    if (this.privateApi) {
      new CfnOutput(this, 'PrivateApiId', {
        value: this.privateApi.api.restApiId,
        description:
          'The private API: callers in other accounts allow execute-api:Invoke on its routes in their own policies',
      });
    }
    // Callers (and their pipelines) read the URL here rather than from this stack's outputs.
    this.apiUrlParameter = new StringParameter(this, 'ApiUrlParameter', {
      parameterName: apiUrlParameterName(stage),
      stringValue: apiUrl,
      description: `The base URL of the Wise token broker's API (${stage})`,
    });
    new CfnOutput(this, 'ApiUrlParameterName', {
      value: this.apiUrlParameter.parameterName,
      description: 'The SSM parameter holding the API URL',
    });
    new CfnOutput(this, 'CallbackUrl', {
      value: deployment.redirectUri,
      description: 'The redirect URI to register with Wise',
    });
    for (const kind of CALLER_KINDS) {
      new CfnOutput(this, `${kind}-policy-arn`, {
        value: this.callerAccess.policies[kind].managedPolicyArn,
        description: `Attach to a calling service's role: the ${kind} routes`,
      });
    }
    new CfnOutput(this, 'EventBusName', {
      value: this.eventBus.eventBusName,
      description: `Connection events (source ${EVENT_SOURCE}): connected, reauthorization required, recovered, disconnected`,
    });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.monitoring.topic.topicArn, description: 'Alarms' });
  }

  /** Writes the narrow statements for one function: its table actions, keys, secret and bus. */
  private grantAccess(fn: BrokerFunction, access: FunctionAccess, props: StatelessStackProps): void {
    const { region } = this;
    const role = fn.role;
    const tableArn = props.table.tableArn;
    for (const items of access.items) {
      role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: [...items.actions],
          resources: [tableArn],
          conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...items.leadingKeys] } },
        }),
      );
    }
    if (access.queryIndexes.length > 0) {
      role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['dynamodb:Query'],
          resources: access.queryIndexes.map((index) => `${tableArn}/index/${index}`),
        }),
      );
    }
    // DynamoDB uses the table's customer-managed key with the caller's permissions, and only through itself.
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'],
        resources: [props.key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${region}.amazonaws.com` } },
      }),
    );
    // The token key's own policy allows the same, for this role only: both must allow a use.
    for (const statement of tokenKeyStatements(props.config.stage, access)) {
      role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: [...statement.actions],
          resources: [props.tokenKey.keyArn],
          conditions: statement.conditions,
        }),
      );
    }
    const readsSecret =
      access.wiseCredentials === 'client-id'
        ? props.config.wise.clientId === undefined
        : access.wiseCredentials;
    if (readsSecret) {
      role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['secretsmanager:GetSecretValue'],
          resources: [props.secret.secretArn],
        }),
      );
      role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: [props.key.keyArn],
          conditions: {
            StringEquals: {
              'kms:ViaService': `secretsmanager.${region}.amazonaws.com`,
              'kms:EncryptionContext:SecretARN': props.secret.secretArn,
            },
          },
        }),
      );
    }
    if (access.putEvents) {
      role.addToPrincipalPolicy(
        new PolicyStatement({ actions: ['events:PutEvents'], resources: [this.eventBus.eventBusArn] }),
      );
    }
  }
}
