import {
  CfnOutput,
  Duration,
  RemovalPolicy,
  SecretValue,
  Stack,
  type StackProps,
  Validations,
} from 'aws-cdk-lib';
import {
  AttributeType,
  Billing,
  type ITableV2,
  ProjectionType,
  TableEncryptionV2,
  type TablePropsV2,
  TableV2,
} from 'aws-cdk-lib/aws-dynamodb';
import { Key } from 'aws-cdk-lib/aws-kms';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import {
  CONNECTIONS_BY_STATUS_ATTRIBUTES,
  CONNECTIONS_BY_STATUS_INDEX,
  REFRESH_DUE_INDEX,
} from '#shared/adapters/dynamodb-token-store.ts';
import type { BrokerConfig } from '#shared/config/broker-config.ts';
import { type TokenKeyUser, tokenKeyPolicy } from './token-key.ts';

/**
 * What the Wise credentials secret holds. CloudFormation writes these empty values once; the deployer then
 * stores the real ones with `aws secretsmanager put-secret-value`, and later deployments leave them alone.
 * Empty values fail the functions' check with a message that says what to store, instead of reaching Wise.
 */
export const WISE_CREDENTIALS_PLACEHOLDER = { clientId: '', clientSecret: '' } as const;

/** The secret's full shape, for its description and the README. */
export const WISE_CREDENTIALS_SHAPE =
  '{"clientId","clientSecret","previousClientSecret"?,"mtls"?:{"certificate","privateKey","ca"?}} (PEM strings)';

/**
 * The broker table's keys and indexes: what the stateful stack creates, and what a table named by
 * `existingTableName` (a point-in-time restore of that table) has.
 */
export const BROKER_TABLE_SCHEMA = {
  partitionKey: { name: 'pk', type: AttributeType.STRING },
  sortKey: { name: 'sk', type: AttributeType.STRING },
  globalSecondaryIndexes: [
    {
      indexName: REFRESH_DUE_INDEX,
      partitionKey: { name: 'dueShard', type: AttributeType.STRING },
      sortKey: { name: 'dueAt', type: AttributeType.NUMBER },
      projectionType: ProjectionType.KEYS_ONLY,
    },
    {
      indexName: CONNECTIONS_BY_STATUS_INDEX,
      partitionKey: { name: 'status', type: AttributeType.STRING },
      sortKey: { name: 'connectionId', type: AttributeType.STRING },
      // The status fields only: no ciphertext, registration code or e-mail is copied into the index.
      projectionType: ProjectionType.INCLUDE,
      nonKeyAttributes: [...CONNECTIONS_BY_STATUS_ATTRIBUTES],
    },
  ],
} as const satisfies Pick<TablePropsV2, 'partitionKey' | 'sortKey' | 'globalSecondaryIndexes'>;

/** What the functions are given of the table: its name and ARN (a created or an existing table). */
export type BrokerTable = Pick<ITableV2, 'tableName' | 'tableArn'>;

export interface StatefulStackProps extends StackProps {
  readonly config: BrokerConfig;
  /** The function roles that may use the token key, and for which kinds of secret. */
  readonly tokenKeyUsers: readonly TokenKeyUser[];
}

/**
 * The broker's data, kept when the stack is deleted: two customer-managed keys, the table, the secret
 * holding the Wise client credentials, and the audit log group.
 *
 * - The data key encrypts the table at rest and the secret. Its policy is the account's default (the
 *   account's IAM decides), since DynamoDB and Secrets Manager use it on behalf of whoever may read them.
 * - The token key encrypts, record by record, every access token, refresh token, registration code and
 *   listing cursor the table holds. Its policy lets only the broker's function roles use it, each for the
 *   kinds it needs, so table, backup or export access and an administrator's `kms:Decrypt` on `*` reveal
 *   no token.
 */
export class StatefulStack extends Stack {
  /** The data key: the table and the secret. */
  readonly key: Key;
  /** The token key: every token, registration code and listing cursor. */
  readonly tokenKey: Key;
  /**
   * The broker table: created here, or, when the configuration names `existingTableName` (a table restored
   * from point-in-time recovery), that table, which this stack then references without managing it.
   */
  readonly table: BrokerTable;
  readonly secret: Secret;
  /** The audit trail of token access, kept `audit.retentionDays` (a year by default). */
  readonly auditLogGroup: LogGroup;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props);
    const { stage } = props.config;
    const retain = props.config.removalPolicy === 'retain';
    const removalPolicy = retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.key = new Key(this, 'Key', {
      alias: `alias/wise-broker-${stage}`,
      description: `Wise token broker (${stage}): encrypts the table and the Wise credentials secret at rest`,
      enableKeyRotation: true,
      removalPolicy,
      ...(retain ? {} : { pendingWindow: Duration.days(7) }),
    });

    this.tokenKey = new Key(this, 'TokenKey', {
      alias: `alias/wise-broker-${stage}-tokens`,
      description: `Wise token broker (${stage}): encrypts every stored token and registration code; only the broker's functions may use it`,
      enableKeyRotation: true,
      policy: tokenKeyPolicy(this, stage, props.tokenKeyUsers),
      removalPolicy,
      ...(retain ? {} : { pendingWindow: Duration.days(7) }),
    });

    this.table =
      props.config.existingTableName === undefined
        ? this.createTable(retain, removalPolicy)
        : TableV2.fromTableAttributes(this, 'Table', {
            tableName: props.config.existingTableName,
            // Restored with the data key (docs/restore-from-backup.md): the functions' grants name it.
            encryptionKey: this.key,
            globalIndexes: [REFRESH_DUE_INDEX, CONNECTIONS_BY_STATUS_INDEX],
          });

    this.secret = new Secret(this, 'WiseCredentials', {
      secretName: `wise-broker/${stage}/wise-credentials`,
      description: `Wise client credentials for the token broker (${stage}) as JSON: ${WISE_CREDENTIALS_SHAPE}`,
      encryptionKey: this.key,
      // Empty placeholders, not a secret: nothing secret is generated into the template.
      secretStringValue: SecretValue.unsafePlainText(JSON.stringify(WISE_CREDENTIALS_PLACEHOLDER)),
      removalPolicy,
    });
    Validations.of(this.secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        "The Wise client secret is rotated in Wise's Developer Hub, which no rotation Lambda can reach; the broker reads the secret with a short cache and accepts previousClientSecret during a rotation.",
    });

    this.auditLogGroup = new LogGroup(this, 'AuditLogs', {
      logGroupName: auditLogGroupName(stage),
      retention: props.config.audit.retentionDays as RetentionDays,
      removalPolicy,
    });

    new CfnOutput(this, 'TableName', { value: this.table.tableName, description: 'The broker table' });
    new CfnOutput(this, 'KeyArn', {
      value: this.key.keyArn,
      description: 'The data key: encrypts the table and the secret at rest',
    });
    new CfnOutput(this, 'TokenKeyArn', {
      value: this.tokenKey.keyArn,
      description: "The token key: encrypts every stored token; only the broker's functions may use it",
    });
    new CfnOutput(this, 'WiseCredentialsSecretArn', {
      value: this.secret.secretArn,
      description: `Put the Wise credentials here: ${WISE_CREDENTIALS_SHAPE}`,
    });
    new CfnOutput(this, 'AuditLogGroupName', {
      value: this.auditLogGroup.logGroupName,
      description: 'The audit trail of token access (Logs Insights queries in the README)',
    });
  }

  /** The broker table, with its indexes, point-in-time recovery and the data key. */
  private createTable(retain: boolean, removalPolicy: RemovalPolicy): TableV2 {
    return new TableV2(this, 'Table', {
      ...BROKER_TABLE_SCHEMA,
      billing: Billing.onDemand(),
      encryption: TableEncryptionV2.customerManagedKey(this.key),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: retain,
      timeToLiveAttribute: 'ttl',
      removalPolicy,
    });
  }
}

/** The audit log group's name: one per stage, kept with the table. */
export function auditLogGroupName(stage: string): string {
  return `/wise-broker/${stage}/audit`;
}
