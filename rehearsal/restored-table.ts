import { rmSync } from 'node:fs';
import { App, Stack } from 'aws-cdk-lib';
import { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { BROKER_TABLE_SCHEMA } from '../infra/stateful-stack.ts';
import type { CloudAssembly } from './assembly.ts';
import { RehearsalError } from './errors.ts';
import type { ExistingTable } from './stand-ins.ts';

/** The stateful stack's output that names the data key, which a restored table is encrypted with. */
const DATA_KEY_OUTPUT = 'KeyArn';

/**
 * The table a deployment with `existingTableName` uses without declaring it, as the deployer restores it
 * (docs/restore-from-backup.md): the broker table's keys and indexes ({@link BROKER_TABLE_SCHEMA}, the
 * stateful stack's own, rendered by CDK as CloudFormation would create them), encrypted with the data key
 * of the stateful stack's `KeyArn` output.
 */
export function restoredTable(assembly: CloudAssembly, tableName: string): ExistingTable {
  const stack = assembly.stacks.find((entry) => entry.template.Outputs?.[DATA_KEY_OUTPUT] !== undefined);
  const keyArn = stack?.template.Outputs?.[DATA_KEY_OUTPUT]?.Value;
  if (!stack || keyArn === undefined) {
    throw new RehearsalError(
      `No stack of the assembly outputs ${DATA_KEY_OUTPUT}, the data key the table ${tableName} is restored with.`,
    );
  }
  return {
    stack,
    tableName,
    properties: { ...brokerTableProperties(), SSESpecification: { KMSMasterKeyId: keyArn } },
  };
}

/** The broker table's key schema and indexes as CDK synthesizes them. */
function brokerTableProperties(): Record<string, unknown> {
  const app = new App();
  const stack = new Stack(app, 'BrokerTableSchema');
  const table = new TableV2(stack, 'Table', BROKER_TABLE_SCHEMA);
  const cloudAssembly = app.synth();
  try {
    const template = cloudAssembly.getStackByName(stack.stackName).template as {
      Resources: Record<string, { Properties: Record<string, unknown> }>;
    };
    const resource = template.Resources[stack.getLogicalId(table.node.defaultChild as never)];
    if (!resource) throw new RehearsalError('CDK rendered no table for the broker table schema.');
    const { KeySchema, AttributeDefinitions, GlobalSecondaryIndexes } = resource.Properties;
    return { KeySchema, AttributeDefinitions, GlobalSecondaryIndexes };
  } finally {
    rmSync(cloudAssembly.directory, { recursive: true, force: true });
  }
}
