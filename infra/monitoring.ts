import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { MetricName, REFUSAL_CLASSES } from '#shared/observability.ts';
import { METRICS_NAMESPACE, serviceName } from './broker-function.ts';

export interface MonitoringProps {
  readonly stage: string;
  readonly functions: Readonly<Record<string, IFunction>>;
  readonly api: HttpApi;
  readonly deadLetterQueue: IQueue;
  /** Where the audit forwarder keeps the deliveries it could not write. */
  readonly auditDeadLetterQueue: IQueue;
  /** Subscribed to the alarm topic by e-mail when given. */
  readonly alarmEmail?: string | undefined;
}

const FIVE_MINUTES = Duration.minutes(5);

/**
 * The refresh success ratio the `RefreshSuccessRatio` alarm holds the broker to: at least this share of
 * refresh attempts succeed in each of three consecutive 5-minute periods.
 */
export const REFRESH_SUCCESS_RATIO_TARGET = 0.9;

/** An alarm's name: `wise-broker-<stage>-<alarm>`, such as `wise-broker-prod-ConnectionsAtRisk`. */
export function alarmName(stage: string, alarm: string): string {
  return `wise-broker-${stage}-${alarm}`;
}

/** The error codes of the broker's 4xx answers: the `error` dimension of `RequestRefused`. */
export const REFUSED_REQUEST_CODES = [
  'invalid_request',
  'forbidden',
  'connection_not_found',
  'reauthorization_required',
  'connection_exists',
  'refresh_token_rejected',
  'method_not_allowed',
] as const;

/**
 * The broker's alarms, all sent to one encrypted SNS topic (with an optional e-mail subscription), and a
 * dashboard of the broker's metrics, its functions, its API and its dead-letter queue.
 */
export class Monitoring extends Construct {
  readonly topic: Topic;
  readonly alarms: Alarm[] = [];
  /** The broker's dashboard; a part added beside it (the private API) adds its own widgets. */
  readonly dashboard: Dashboard;
  private readonly stage: string;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.stage = props.stage;
    const stack = Stack.of(this);

    // CloudWatch cannot publish to a topic encrypted with the AWS managed SNS key, so the topic has its own.
    const topicKey = new Key(this, 'TopicKey', {
      alias: `alias/wise-broker-${props.stage}-alarms`,
      description: `Wise token broker (${props.stage}): encrypts the alarm topic`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    topicKey.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );
    this.topic = new Topic(this, 'AlarmTopic', {
      displayName: `Wise token broker (${props.stage}) alarms`,
      masterKey: topicKey,
      enforceSSL: true,
    });
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));

    const broker = (metricName: string, dimensions: Record<string, string> = {}) =>
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { service: serviceName(props.stage), ...dimensions },
        statistic: 'Sum',
        period: FIVE_MINUTES,
      });
    const refreshFailed = broker(MetricName.refreshFailed);
    const reauthorizationRequired = broker(MetricName.reauthorizationRequired);
    const invalidClient = broker(MetricName.invalidClient);

    this.alarm('RefreshFailing', refreshFailed, {
      description:
        'Refreshes have failed in each of the last 15 minutes; the broker keeps vending still-valid tokens, but look at the refresh logs (Wise unavailable, rate limited?).',
      evaluationPeriods: 3,
    });
    this.alarm('ReauthorizationRequired', reauthorizationRequired, {
      description:
        'A connection needs its Wise user to authorize again (invalid_grant); the event bus carries which one. Start a new connect session for it.',
    });
    this.alarm('InvalidClient', invalidClient, {
      description:
        'Wise rejected the client credentials (invalid_client): check the Wise credentials secret against the Developer Hub. No connection was marked.',
    });
    const atRisk = broker(MetricName.connectionsAtRisk).with({ statistic: 'Maximum' });
    this.alarm('ConnectionsAtRisk', atRisk, {
      description:
        'A refresh sweep left connections due and unrefreshed with less than refresh.atRiskShare of their token life left; their tokens expire soon. The refresh log line "Connections at risk" names them.',
    });
    const lostToCrash = broker(MetricName.connectionLostToCrash);
    this.alarm('ConnectionLostToCrash', lostToCrash, {
      description:
        'A connection was lost by the broker: Wise refused a refresh token an earlier attempt spent, whose answer was never stored (a crash between Wise and the write). Its user must connect again; the refresh log names the connection.',
    });
    const refreshSuccessRatio = new MathExpression({
      label: 'Refresh success ratio',
      expression: 'IF((FILL(s, 0) + FILL(f, 0)) > 0, FILL(s, 0) / (FILL(s, 0) + FILL(f, 0)), 1)',
      usingMetrics: { s: broker(MetricName.refreshSucceeded), f: refreshFailed },
      period: FIVE_MINUTES,
    });
    this.alarm('RefreshSuccessRatio', refreshSuccessRatio, {
      description: `Fewer than ${REFRESH_SUCCESS_RATIO_TARGET * 100} % of refreshes succeeded in each of the last 15 minutes. The RefreshRefused metric and the refresh logs say which class of failure dominates.`,
      evaluationPeriods: 3,
      threshold: REFRESH_SUCCESS_RATIO_TARGET,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
    });
    const auditDeadLetters = props.auditDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: FIVE_MINUTES,
      statistic: 'Maximum',
    });
    this.alarm('AuditDeliveryFailed', auditDeadLetters, {
      description:
        "The audit forwarder could not write some audit lines to the audit log group; they wait in its dead-letter queue (and stay in the functions' own log groups).",
    });
    for (const [name, fn] of Object.entries(props.functions)) {
      this.alarm(`${name}-errors`, fn.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }), {
        description: `The ${name} function failed; its log group says why.`,
      });
      this.alarm(`${name}-throttles`, fn.metricThrottles({ period: FIVE_MINUTES, statistic: 'Sum' }), {
        description: `The ${name} function was throttled; check its reserved concurrency and the account's Lambda quota.`,
      });
    }
    const deadLetters = props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: FIVE_MINUTES,
      statistic: 'Maximum',
    });
    this.alarm('RefreshScheduleDeadLetters', deadLetters, {
      description:
        'EventBridge could not deliver refresh sweeps to the refresh function; the messages in the dead-letter queue say why.',
    });

    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `wise-broker-${props.stage}`,
      widgets: [
        [new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 })],
        [
          new GraphWidget({
            title: 'Tokens',
            width: 12,
            left: [
              broker(MetricName.tokenVended).with({ label: 'Vended' }),
              broker(MetricName.refreshSucceeded).with({ label: 'Refreshed' }),
              refreshFailed.with({ label: 'Refresh failed' }),
              broker(MetricName.providerUnavailable).with({ label: 'Wise unavailable' }),
            ],
          }),
          new GraphWidget({
            title: 'Needs attention',
            width: 12,
            left: [
              reauthorizationRequired.with({ label: 'Re-authorization required' }),
              invalidClient.with({ label: 'invalid_client from Wise' }),
              deadLetters.with({ label: 'Undelivered sweeps' }),
              broker(MetricName.rejectionNotHonoured).with({ label: 'Rejections not honoured' }),
            ],
          }),
        ],
        [
          new GraphWidget({
            title: 'Refresh lateness and token life left (seconds)',
            width: 12,
            left: [
              broker(MetricName.refreshLateness).with({ statistic: 'p99', label: 'Late past due (p99)' }),
              broker(MetricName.refreshLateness).with({ statistic: 'Maximum', label: 'Late past due (max)' }),
            ],
            right: [
              broker(MetricName.tokenLifeLeftAtRefresh).with({
                statistic: 'Minimum',
                label: 'Life left at refresh (min)',
              }),
            ],
          }),
          new GraphWidget({
            title: 'Connections at risk and lost',
            width: 12,
            left: [
              atRisk.with({ label: 'At risk (max per sweep)' }),
              lostToCrash.with({ label: 'Lost to crashes' }),
            ],
          }),
        ],
        [
          new GraphWidget({
            title: 'Refresh success ratio',
            width: 8,
            left: [refreshSuccessRatio],
            leftYAxis: { min: 0, max: 1 },
          }),
          new GraphWidget({
            title: 'Refreshes refused, by class',
            width: 8,
            left: REFUSAL_CLASSES.map((refusal) =>
              broker(MetricName.refreshRefused, { class: refusal }).with({ label: refusal }),
            ),
          }),
          new GraphWidget({
            title: 'Requests refused, by error',
            width: 8,
            left: REFUSED_REQUEST_CODES.map((code) =>
              broker(MetricName.requestRefused, { error: code }).with({ label: code }),
            ),
          }),
        ],
        [
          this.perFunction('Invocations', props.functions, (fn) => fn.metricInvocations()),
          this.perFunction('Errors', props.functions, (fn) => fn.metricErrors()),
        ],
        [
          this.perFunction('Duration (p99)', props.functions, (fn) =>
            fn.metricDuration({ statistic: 'p99' }),
          ),
          this.perFunction('Throttles', props.functions, (fn) => fn.metricThrottles()),
        ],
        [
          new GraphWidget({
            title: 'API',
            width: 12,
            left: [props.api.metricCount(), props.api.metricClientError(), props.api.metricServerError()],
          }),
          new GraphWidget({
            title: 'API latency (p99)',
            width: 12,
            left: [props.api.metricLatency({ statistic: 'p99' })],
          }),
        ],
      ],
    });
  }

  private alarm(
    id: string,
    metric: IMetric,
    options: {
      description: string;
      evaluationPeriods?: number;
      threshold?: number;
      comparisonOperator?: ComparisonOperator;
    },
  ): void {
    const evaluationPeriods = options.evaluationPeriods ?? 1;
    const alarm = new Alarm(this, id, {
      // A fixed name: the e-mail and the console show it, and docs/runbook.md has an entry under it.
      alarmName: alarmName(this.stage, id),
      metric,
      threshold: options.threshold ?? 1,
      comparisonOperator: options.comparisonOperator ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods,
      datapointsToAlarm: evaluationPeriods,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: options.description,
    });
    alarm.addAlarmAction(new SnsAction(this.topic));
    alarm.addOkAction(new SnsAction(this.topic));
    this.alarms.push(alarm);
  }

  private perFunction(
    title: string,
    functions: Readonly<Record<string, IFunction>>,
    metric: (fn: IFunction) => Metric,
  ): GraphWidget {
    return new GraphWidget({
      title,
      width: 12,
      left: Object.entries(functions).map(([name, fn]) => metric(fn).with({ label: name })),
    });
  }
}
