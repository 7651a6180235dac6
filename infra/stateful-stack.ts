import {
  CfnOutput,
  Duration,
  RemovalPolicy,
  SecretValue,
  Stack,
  type StackProps,
  Validations,
} from 'aws-cdk-lib';
import { AttributeType, Billing, ProjectionType, TableEncryptionV2, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import {
  CONNECTIONS_BY_STATUS_ATTRIBUTES,
  CONNECTIONS_BY_STATUS_INDEX,
  REFRESH_DUE_INDEX,
} from '#shared/adapters/dynamodb-token-store.ts';
import type { BrokerConfig } from '#shared/config/broker-config.ts';

/**
 * What the Wise credentials secret holds. CloudFormation writes these empty values once; the deployer then
 * stores the real ones with `aws secretsmanager put-secret-value`, and later deployments leave them alone.
 * Empty values fail the functions' check with a message that says what to store, instead of reaching Wise.
 */
export const WISE_CREDENTIALS_PLACEHOLDER = { clientId: '', clientSecret: '' } as const;

/** The secret's full shape, for its description and the README. */
export const WISE_CREDENTIALS_SHAPE =
  '{"clientId","clientSecret","previousClientSecret"?,"mtls"?:{"certificate","privateKey","ca"?}} (PEM strings)';

export interface StatefulStackProps extends StackProps {
  readonly config: BrokerConfig;
}

/**
 * The broker's data, kept when the stack is deleted: the customer-managed key, the table encrypted with it,
 * and the secret holding the Wise client credentials.
 */
export class StatefulStack extends Stack {
  readonly key: Key;
  readonly table: TableV2;
  readonly secret: Secret;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props);
    const { stage } = props.config;
    const retain = props.config.removalPolicy === 'retain';
    const removalPolicy = retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.key = new Key(this, 'Key', {
      alias: `alias/wise-broker-${stage}`,
      description: `Wise token broker (${stage}): encrypts the table, the Wise credentials and every stored token`,
      enableKeyRotation: true,
      removalPolicy,
      ...(retain ? {} : { pendingWindow: Duration.days(7) }),
    });

    this.table = new TableV2(this, 'Table', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      billing: Billing.onDemand(),
      encryption: TableEncryptionV2.customerManagedKey(this.key),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: retain,
      timeToLiveAttribute: 'ttl',
      removalPolicy,
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

    new CfnOutput(this, 'TableName', { value: this.table.tableName, description: 'The broker table' });
    new CfnOutput(this, 'KeyArn', { value: this.key.keyArn, description: 'The customer-managed KMS key' });
    new CfnOutput(this, 'WiseCredentialsSecretArn', {
      value: this.secret.secretArn,
      description: `Put the Wise credentials here: ${WISE_CREDENTIALS_SHAPE}`,
    });
  }
}
