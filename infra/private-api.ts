import { type RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import { type Dashboard, GraphWidget } from 'aws-cdk-lib/aws-cloudwatch';
import { InterfaceVpcEndpoint } from 'aws-cdk-lib/aws-ec2';
import { AnyPrincipal, ArnPrincipal, Effect, PolicyDocument, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { CallerConfig, PrivateAccessConfig } from '#shared/config/broker-config.ts';
import { CALLER_KINDS, type CallerKind, callerKinds } from './caller-access.ts';
import { BROKER_ROUTES, type BrokerRoute, type FunctionName, invokePath } from './routes.ts';

/** The stage of the private REST API: its URL ends in `/broker`. */
export const PRIVATE_API_STAGE = 'broker';

/** The IAM routes: on the private API when private access is chosen. */
export const IAM_ROUTES: readonly BrokerRoute[] = BROKER_ROUTES.filter((route) => route.access !== 'public');

export interface PrivateApiProps {
  readonly stage: string;
  readonly access: PrivateAccessConfig;
  readonly callers: readonly CallerConfig[];
  /** The function behind each IAM route's handler. */
  readonly functions: Readonly<Record<Exclude<FunctionName, 'refresh'>, IFunction>>;
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly removalPolicy: RemovalPolicy;
}

/**
 * The broker's IAM routes on a private REST API: reachable only through the partner's interface VPC
 * endpoints for `execute-api`, each method with IAM authorization and a Lambda proxy integration (payload
 * format 1.0). Its resource policy is the second lock: it refuses every request that does not come through
 * one of the configured endpoints, and, when an Organization is configured, every principal outside it;
 * and it lets each caller of the configuration invoke exactly the routes of its grants, which is what admits
 * a caller of another account (whose own account must allow it too).
 */
export class PrivateApi extends Construct {
  readonly api: RestApi;
  /** The base URL the calling services use, `https://{id}.execute-api.{region}.amazonaws.com/broker`. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: PrivateApiProps) {
    super(scope, id);
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: RetentionDays.THREE_MONTHS,
      removalPolicy: props.removalPolicy,
    });
    this.api = new RestApi(this, 'Api', {
      restApiName: `wise-broker-${props.stage}-private`,
      description: `Wise token broker (${props.stage}): the IAM routes, private to the partner's VPC endpoints`,
      endpointConfiguration: {
        types: [EndpointType.PRIVATE],
        vpcEndpoints: props.access.vpcEndpointIds.map((vpcEndpointId, index) =>
          InterfaceVpcEndpoint.fromInterfaceVpcEndpointAttributes(this, `Endpoint${index}`, {
            vpcEndpointId,
            port: 443,
          }),
        ),
      },
      policy: privateApiPolicy(props.access, props.callers),
      cloudWatchRole: false,
      deployOptions: {
        stageName: PRIVATE_API_STAGE,
        throttlingRateLimit: props.throttle.rateLimit,
        throttlingBurstLimit: props.throttle.burstLimit,
        loggingLevel: MethodLoggingLevel.OFF,
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            time: '$context.requestTime',
            resourcePath: '$context.resourcePath',
            httpMethod: '$context.httpMethod',
            status: '$context.status',
            callerArn: '$context.identity.userArn',
            vpceId: '$context.identity.vpceId',
            latencyMs: '$context.responseLatency',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    const integrations = new Map<FunctionName, LambdaIntegration>();
    for (const route of IAM_ROUTES) {
      let integration = integrations.get(route.handler);
      if (!integration) {
        // No test invocations from the console: the permission would let API Gateway's test-invoke stage in.
        integration = new LambdaIntegration(props.functions[route.handler], { allowTestInvoke: false });
        integrations.set(route.handler, integration);
      }
      this.api.root
        .resourceForPath(route.path)
        .addMethod(route.method, integration, { authorizationType: AuthorizationType.IAM });
    }
    // The stage's URL without the trailing slash, as the HTTP API's endpoint: `${ApiUrl}/tokens` works for both.
    const stack = Stack.of(this);
    this.url = `https://${this.api.restApiId}.execute-api.${stack.region}.${stack.urlSuffix}/${this.api.deploymentStage.stageName}`;

    Validations.of(this.api).acknowledge(
      {
        id: 'AwsSolutions-APIG2',
        reason:
          'Every function validates its request with a schema and answers 400 naming the field; a second, weaker validation at the API would only duplicate it.',
      },
      {
        id: 'AwsSolutions-APIG3',
        reason:
          "The API is private: only the partner's own VPC endpoints reach it (the resource policy refuses any other), and every method needs a SigV4 signature; there is no internet traffic for a web ACL to filter.",
      },
      {
        id: 'AwsSolutions-APIG6',
        reason:
          'Execution logging needs the account-wide API Gateway CloudWatch role, which the broker does not take over; every request is in the access log, and each function logs its own outcome.',
      },
      {
        id: 'AwsSolutions-COG4',
        reason: 'The callers are AWS services authenticated by IAM (SigV4), not Cognito users.',
      },
    );
  }

  /** Adds the private API's requests, errors and latency to the broker's dashboard. */
  addDashboardWidgets(dashboard: Dashboard): void {
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Private API (IAM routes)',
        width: 12,
        left: [this.api.metricCount(), this.api.metricClientError(), this.api.metricServerError()],
      }),
      new GraphWidget({
        title: 'Private API latency (p99)',
        width: 12,
        left: [this.api.metricLatency({ statistic: 'p99' })],
      }),
    );
  }
}

/**
 * The private API's resource policy: a deny for any request not through one of the VPC endpoints, a deny
 * for principals outside the Organization when one is configured, and for each kind of caller an allow
 * that names the configured callers holding it, on that kind's routes only. A principal named nowhere in
 * `callers` gets no allow here: in another account it is refused; in this account it still needs the
 * managed policy of the route (IAM allows a same-account caller when either policy does).
 */
export function privateApiPolicy(
  access: PrivateAccessConfig,
  callers: readonly CallerConfig[],
): PolicyDocument {
  const everyRoute = 'execute-api:/*';
  const statements = [
    new PolicyStatement({
      sid: 'OnlyThroughTheVpcEndpoints',
      effect: Effect.DENY,
      principals: [new AnyPrincipal()],
      actions: ['execute-api:Invoke'],
      resources: [everyRoute],
      conditions: { StringNotEquals: { 'aws:SourceVpce': [...access.vpcEndpointIds] } },
    }),
  ];
  if (access.organizationId !== undefined) {
    statements.push(
      new PolicyStatement({
        sid: 'OnlyTheOrganization',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['execute-api:Invoke'],
        resources: [everyRoute],
        conditions: { StringNotEquals: { 'aws:PrincipalOrgID': access.organizationId } },
      }),
    );
  }
  for (const kind of CALLER_KINDS) {
    const principals = [
      ...new Set(
        callers.filter((caller) => callerKinds(caller).includes(kind)).map((caller) => caller.principal),
      ),
    ];
    if (principals.length === 0) continue;
    statements.push(
      new PolicyStatement({
        sid: `Callers${kind[0]?.toUpperCase()}${kind.slice(1)}`,
        effect: Effect.ALLOW,
        principals: principals.map((principal) => new ArnPrincipal(principal)),
        actions: ['execute-api:Invoke'],
        resources: routesOf(kind).map((route) => `execute-api:/${PRIVATE_API_STAGE}/${invokePath(route)}`),
      }),
    );
  }
  return new PolicyDocument({ statements });
}

function routesOf(kind: CallerKind): BrokerRoute[] {
  return IAM_ROUTES.filter((route) => route.access === kind);
}
