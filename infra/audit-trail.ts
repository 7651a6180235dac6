import { Duration, Validations } from 'aws-cdk-lib';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { FilterPattern, type ILogGroup, SubscriptionFilter } from 'aws-cdk-lib/aws-logs';
import { LambdaDestination } from 'aws-cdk-lib/aws-logs-destinations';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AUDIT_MARKER } from '#shared/adapters/stdout-audit-trail.ts';
import { type BrokerDeployment, BrokerFunction } from './broker-function.ts';

export interface AuditTrailProps {
  readonly deployment: BrokerDeployment;
  /** The audit log group (in the stateful stack, so it outlives the functions). */
  readonly logGroup: ILogGroup;
  /** The functions whose audit lines are forwarded. */
  readonly sources: Readonly<Record<string, BrokerFunction>>;
}

/**
 * The audit trail in AWS. The functions write each audit entry to standard output as a JSON line marked
 * `"audit": true` (no AWS call on the request's path, so a warm vend stays free of them); a subscription
 * filter on each function's log group sends exactly those lines to the forwarder, which writes them to the
 * audit log group with its own retention. A delivery the forwarder cannot write is retried twice by Lambda
 * and then kept in a dead-letter queue for 14 days; the lines also stay in the function's own log group.
 */
export class AuditTrail extends Construct {
  readonly forwarder: BrokerFunction;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: AuditTrailProps) {
    super(scope, id);
    this.deadLetterQueue = new Queue(this, 'DeadLetters', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter queue of the audit forwarder (its failed deliveries).',
    });

    this.forwarder = new BrokerFunction(this, 'audit-forwarder', {
      entry: 'functions/audit-forwarder/handler.ts',
      description: 'Copies the audit lines of the broker functions into the audit log group',
      deployment: props.deployment,
      environment: { AUDIT_LOG_GROUP: props.logGroup.logGroupName },
      timeout: Duration.seconds(30),
      memorySize: 256,
    });
    props.logGroup.grantWrite(this.forwarder.role);
    this.forwarder.function.configureAsyncInvoke({
      retryAttempts: 2,
      onFailure: new SqsDestination(this.deadLetterQueue),
    });

    const destination = new LambdaDestination(this.forwarder.function);
    for (const [name, source] of Object.entries(props.sources)) {
      new SubscriptionFilter(this, `${name}-audit`, {
        logGroup: source.logGroup,
        destination,
        filterPattern: FilterPattern.booleanValue(`$.${AUDIT_MARKER}`, true),
        filterName: 'audit-trail',
      });
    }
  }
}
