import { createHash } from 'node:crypto';
import {
  type AttributeDefinition,
  CreateTableCommand,
  DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { type EmbeddedDynamoDb, startEmbeddedDynamoDb } from '#local/aws/dynamodb.ts';
import { type LocalAws, startLocalAws } from '#local/aws/local-aws.ts';
import { type AssemblyStack, type CloudAssembly, resources, type TemplateResource } from './assembly.ts';
import { RehearsalError } from './errors.ts';
import { type PhysicalResource, ReferenceResolver } from './references.ts';

const TABLE_TYPES = new Set(['AWS::DynamoDB::Table', 'AWS::DynamoDB::GlobalTable']);

/** The credentials the rehearsal itself uses on the stand-ins, to create what the template declares. */
const SETUP_CREDENTIALS = { accessKeyId: 'AKIAREHEARSALSETUP00', secretAccessKey: 'rehearsal-setup' };

/** What the secrets hold once the deployer has filled them in (README, "Put the Wise credentials"). */
export type SecretValues = (stack: AssemblyStack, logicalId: string, templateValue: unknown) => string;

/** The local stand-ins of every stateful resource of an assembly, and the names of all the others. */
export interface StandIns {
  account: string;
  region: string;
  dynamodb: EmbeddedDynamoDb;
  aws: LocalAws;
  resolver: ReferenceResolver;
  physical(stack: AssemblyStack, logicalId: string): PhysicalResource | undefined;
  /** Secret ARNs by every name a caller may use for them (name, full ARN). */
  secretArn(secretId: string): string | undefined;
  /** The name of the table's partition key attribute. */
  tablePartitionKey(tableName: string): string | undefined;
  /** The table's customer-managed key ARN, when it has one. */
  tableKeyArn(tableName: string): string | undefined;
  /** The secret's key ARN, when it has a customer-managed one. */
  secretKeyArn(secretArn: string): string | undefined;
  close(): Promise<void>;
}

export interface StandInOptions {
  /** The local URL of each HTTP API, by logical id; one for every `AWS::ApiGatewayV2::Api`. */
  apiEndpoint: (stack: AssemblyStack, logicalId: string) => string;
  secretValue: SecretValues;
  /** Tables the templates use by name without declaring them (a restored table), to create as well. */
  existingTables?: readonly ExistingTable[];
}

/**
 * A table that exists before the deployment: its name, and its properties as a template would declare them
 * (references resolved in `stack`).
 */
export interface ExistingTable {
  stack: AssemblyStack;
  tableName: string;
  properties: Record<string, unknown>;
}

/**
 * Starts the embedded DynamoDB and the local KMS / Secrets Manager / EventBridge endpoint in the
 * assembly's account and region, and creates in them what the templates declare: every table with its key
 * schema and indexes, every KMS key, every secret (holding what the deployer stores there).
 */
export async function startStandIns(assembly: CloudAssembly, options: StandInOptions): Promise<StandIns> {
  const [first] = assembly.stacks;
  if (!first) throw new RehearsalError('The assembly holds no stack.');
  for (const stack of assembly.stacks) {
    if (stack.account !== first.account || stack.region !== first.region) {
      throw new RehearsalError(
        `Stacks ${first.name} and ${stack.name} deploy to different accounts or regions; the rehearsal runs one environment.`,
      );
    }
  }
  const { account, region } = first;
  const keyIds = new Map<string, string>();
  for (const { stack, logicalId } of resources(assembly, 'AWS::KMS::Key')) {
    keyIds.set(`${stack.name}/${logicalId}`, keyIdOf(stack.name, logicalId));
  }
  const dynamodb = await startEmbeddedDynamoDb();
  const aws = await startLocalAws({ region, accountId: account, keys: [...keyIds.values()] });
  const secretArns = new Map<string, string>();
  const physicalSecrets = new Map<string, string>();
  const tableKeys = new Map<string, string>();
  const partitionKeys = new Map<string, string>();
  const secretKeys = new Map<string, string>();

  const physical = (stack: AssemblyStack, logicalId: string): PhysicalResource | undefined => {
    const resource = stack.template.Resources?.[logicalId];
    if (!resource) return undefined;
    return physicalOf(stack, logicalId, resource, {
      keyId: keyIds.get(`${stack.name}/${logicalId}`),
      secretArn: physicalSecrets.get(`${stack.name}/${logicalId}`),
      apiEndpoint: () => options.apiEndpoint(stack, logicalId),
      property: (name) => {
        const value = resource.Properties?.[name];
        if (value === undefined) return undefined;
        return resolver.resolveString(stack, value, `${stack.name} ${logicalId} ${name}`);
      },
    });
  };
  const resolver = new ReferenceResolver(assembly, physical);

  try {
    const secretsClient = new SecretsManagerClient({
      region,
      endpoint: aws.endpoint,
      credentials: SETUP_CREDENTIALS,
    });
    for (const { stack, logicalId, resource } of resources(assembly, 'AWS::SecretsManager::Secret')) {
      const where = `${stack.name} ${logicalId}`;
      const props = resource.Properties ?? {};
      const name =
        props.Name === undefined
          ? `${stack.name}-${logicalId}`
          : resolver.resolveString(stack, props.Name, where);
      await storeSecret(secretsClient, name, options.secretValue(stack, logicalId, props.SecretString));
      const described = await secretsClient.send(new DescribeSecretCommand({ SecretId: name }));
      const arn = described.ARN ?? '';
      physicalSecrets.set(`${stack.name}/${logicalId}`, arn);
      secretArns.set(name, arn);
      secretArns.set(arn, arn);
      if (props.KmsKeyId !== undefined)
        secretKeys.set(arn, keyArnOf(aws, resolver.resolveString(stack, props.KmsKeyId, where)));
    }
    secretsClient.destroy();

    const dynamoClient = new DynamoDBClient({
      region,
      endpoint: dynamodb.endpoint,
      credentials: SETUP_CREDENTIALS,
    });
    const createTable = async (stack: AssemblyStack, tableName: string, declared: unknown, where: string) => {
      const props = resolver.resolve(stack, declared, where) as TableProperties;
      await dynamoClient.send(
        new CreateTableCommand({
          TableName: tableName,
          KeySchema: props.KeySchema,
          AttributeDefinitions: props.AttributeDefinitions,
          BillingMode: 'PAY_PER_REQUEST',
          ...(props.GlobalSecondaryIndexes?.length
            ? {
                GlobalSecondaryIndexes: props.GlobalSecondaryIndexes.map((index) => ({
                  IndexName: index.IndexName,
                  KeySchema: index.KeySchema,
                  Projection: index.Projection,
                })),
              }
            : {}),
        }),
      );
      await waitUntilTableExists({ client: dynamoClient, maxWaitTime: 30 }, { TableName: tableName });
      const hash = props.KeySchema.find((element) => element.KeyType === 'HASH')?.AttributeName;
      if (hash) partitionKeys.set(tableName, hash);
      const keyArn =
        props.Replicas?.find((replica) => replica.Region === region)?.SSESpecification?.KMSMasterKeyId ??
        props.SSESpecification?.KMSMasterKeyId;
      if (keyArn) tableKeys.set(tableName, keyArnOf(aws, keyArn));
    };
    for (const { stack, logicalId, resource } of resources(assembly)) {
      if (!TABLE_TYPES.has(resource.Type)) continue;
      const tableName = physical(stack, logicalId)?.ref ?? '';
      await createTable(stack, tableName, resource.Properties ?? {}, `${stack.name} ${logicalId}`);
    }
    for (const table of options.existingTables ?? []) {
      await createTable(
        table.stack,
        table.tableName,
        table.properties,
        `the existing table ${table.tableName}`,
      );
    }
    dynamoClient.destroy();
  } catch (error) {
    await Promise.allSettled([aws.close(), dynamodb.close()]);
    throw error;
  }

  return {
    account,
    region,
    dynamodb,
    aws,
    resolver,
    physical,
    secretArn: (secretId) => secretArns.get(secretId),
    tableKeyArn: (tableName) => tableKeys.get(tableName),
    tablePartitionKey: (tableName) => partitionKeys.get(tableName),
    secretKeyArn: (secretArn) => secretKeys.get(secretArn),
    close: async () => {
      await Promise.allSettled([aws.close(), dynamodb.close()]);
    },
  };
}

interface TableProperties {
  KeySchema: KeySchemaElement[];
  AttributeDefinitions: AttributeDefinition[];
  GlobalSecondaryIndexes?: GlobalSecondaryIndex[];
  SSESpecification?: { KMSMasterKeyId?: string };
  Replicas?: { Region?: string; SSESpecification?: { KMSMasterKeyId?: string } }[];
}

/** Writes a secret's value as the deployer would (`put-secret-value`), creating it when missing. */
async function storeSecret(client: SecretsManagerClient, name: string, value: string): Promise<void> {
  try {
    await client.send(new CreateSecretCommand({ Name: name, SecretString: value }));
  } catch (error) {
    if (!(error instanceof ResourceExistsException)) throw error;
    await client.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
  }
}

function keyArnOf(aws: LocalAws, reference: string): string {
  try {
    return aws.keyArn(reference);
  } catch {
    throw new RehearsalError(`${reference} names no KMS key of the assembly.`);
  }
}

/** A key id shaped as KMS's (a UUID), stable for a stack and logical id. */
function keyIdOf(stackName: string, logicalId: string): string {
  const hex = createHash('sha256').update(`${stackName}/${logicalId}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function shortId(stackName: string, logicalId: string, length: number): string {
  return createHash('sha256').update(`${stackName}/${logicalId}`).digest('hex').slice(0, length);
}

/** A generated physical name as CloudFormation makes one: the stack name, the logical id, a suffix. */
function generatedName(stack: AssemblyStack, logicalId: string, maxLength: number): string {
  const suffix = shortId(stack.name, logicalId, 12).toUpperCase();
  const prefix = `${stack.name}-${logicalId}`.slice(0, maxLength - suffix.length - 1);
  return `${prefix}-${suffix}`;
}

/** The `Ref` and `Fn::GetAtt` values of a resource, as AWS would give them. */
function physicalOf(
  stack: AssemblyStack,
  logicalId: string,
  resource: TemplateResource,
  local: {
    keyId: string | undefined;
    secretArn: string | undefined;
    apiEndpoint: () => string;
    /** A property that names the resource, its references resolved. */
    property: (name: string) => string | undefined;
  },
): PhysicalResource {
  const { account, region } = stack;
  const arn = (service: string, rest: string, withRegion = true) =>
    `arn:aws:${service}:${withRegion ? region : ''}:${account}:${rest}`;
  switch (resource.Type) {
    case 'AWS::DynamoDB::Table':
    case 'AWS::DynamoDB::GlobalTable': {
      const name = local.property('TableName') ?? generatedName(stack, logicalId, 255);
      const tableArn = arn('dynamodb', `table/${name}`);
      return { ref: name, attributes: { Arn: tableArn, StreamArn: `${tableArn}/stream/local` } };
    }
    case 'AWS::KMS::Key': {
      const keyId = local.keyId ?? '';
      return { ref: keyId, attributes: { Arn: arn('kms', `key/${keyId}`), KeyId: keyId } };
    }
    case 'AWS::KMS::Alias':
      return { ref: local.property('AliasName') ?? logicalId, attributes: {} };
    case 'AWS::SecretsManager::Secret': {
      const secretArn = local.secretArn ?? arn('secretsmanager', `secret:${logicalId}`);
      return { ref: secretArn, attributes: { Id: secretArn } };
    }
    case 'AWS::Events::EventBus': {
      const name = local.property('Name') ?? generatedName(stack, logicalId, 256);
      return { ref: name, attributes: { Name: name, Arn: arn('events', `event-bus/${name}`) } };
    }
    case 'AWS::Events::Rule': {
      const name = local.property('Name') ?? generatedName(stack, logicalId, 64);
      return { ref: name, attributes: { Arn: arn('events', `rule/${name}`) } };
    }
    case 'AWS::IAM::Role': {
      const name = local.property('RoleName') ?? generatedName(stack, logicalId, 64);
      const path = local.property('Path') ?? '/';
      return {
        ref: name,
        attributes: {
          Arn: arn('iam', `role${path}${name}`, false),
          RoleId: `AROA${shortId(stack.name, logicalId, 17).toUpperCase()}`,
        },
      };
    }
    case 'AWS::IAM::ManagedPolicy': {
      const name = local.property('ManagedPolicyName') ?? generatedName(stack, logicalId, 128);
      const policyArn = arn('iam', `policy/${name}`, false);
      return { ref: policyArn, attributes: { PolicyArn: policyArn } };
    }
    case 'AWS::Lambda::Function': {
      const name = local.property('FunctionName') ?? generatedName(stack, logicalId, 64);
      return { ref: name, attributes: { Arn: arn('lambda', `function:${name}`) } };
    }
    case 'AWS::Logs::LogGroup': {
      const name = local.property('LogGroupName') ?? generatedName(stack, logicalId, 512);
      return { ref: name, attributes: { Arn: arn('logs', `log-group:${name}:*`) } };
    }
    case 'AWS::ApiGatewayV2::Api': {
      const apiId = shortId(stack.name, logicalId, 10);
      return { ref: apiId, attributes: { ApiEndpoint: local.apiEndpoint(), ApiId: apiId } };
    }
    case 'AWS::SQS::Queue': {
      const name = local.property('QueueName') ?? generatedName(stack, logicalId, 80);
      return {
        ref: `https://sqs.${region}.amazonaws.com/${account}/${name}`,
        attributes: {
          Arn: arn('sqs', name),
          QueueName: name,
          QueueUrl: `https://sqs.${region}.amazonaws.com/${account}/${name}`,
        },
      };
    }
    case 'AWS::SNS::Topic': {
      const name = local.property('TopicName') ?? generatedName(stack, logicalId, 256);
      return { ref: arn('sns', name), attributes: { TopicArn: arn('sns', name), TopicName: name } };
    }
    default:
      return { ref: logicalId, attributes: { Arn: arn(serviceOf(resource.Type), logicalId) } };
  }
}

function serviceOf(type: string): string {
  return (type.split('::')[1] ?? 'unknown').toLowerCase();
}
