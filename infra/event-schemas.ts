import { CfnRegistry, CfnSchema } from 'aws-cdk-lib/aws-eventschemas';
import { Construct } from 'constructs';
import { CONNECTION_EVENTS, connectionEventJsonSchema } from '#shared/domain/connection-event-schemas.ts';
import { type ConnectionEventKind, EVENT_SOURCE } from '#shared/domain/connection-events.ts';

/** The name of an event's schema in the registry, in EventBridge's own `source@DetailType` form. */
export function eventSchemaName(kind: ConnectionEventKind): string {
  return `${EVENT_SOURCE}@${CONNECTION_EVENTS[kind].detailType.replaceAll(' ', '')}`;
}

/** The JSON Schema (draft 4) of a whole EventBridge event of one kind: its envelope and its detail. */
export function eventSchemaDocument(kind: ConnectionEventKind): Record<string, unknown> {
  const { $schema: _schema, ...detail } = connectionEventJsonSchema(kind);
  return {
    $schema: 'http://json-schema.org/draft-04/schema#',
    title: CONNECTION_EVENTS[kind].detailType,
    type: 'object',
    properties: {
      version: { type: 'string' },
      id: { type: 'string' },
      source: { type: 'string', enum: [EVENT_SOURCE] },
      'detail-type': { type: 'string', enum: [CONNECTION_EVENTS[kind].detailType] },
      account: { type: 'string' },
      time: { type: 'string', format: 'date-time' },
      region: { type: 'string' },
      resources: { type: 'array', items: { type: 'string' } },
      detail,
    },
    required: ['source', 'detail-type', 'detail'],
  };
}

/**
 * An EventBridge schema registry of the broker's events, one schema per kind of connection event, so
 * consumers can read them in the console and generate code bindings from them.
 */
export class EventSchemas extends Construct {
  readonly registry: CfnRegistry;

  constructor(scope: Construct, id: string, props: { stage: string }) {
    super(scope, id);
    this.registry = new CfnRegistry(this, 'Registry', {
      registryName: `wise-broker-${props.stage}`,
      description: `The events of the Wise token broker (${props.stage})`,
    });
    for (const kind of Object.keys(CONNECTION_EVENTS) as ConnectionEventKind[]) {
      const schema = new CfnSchema(this, kind, {
        registryName: this.registry.attrRegistryName,
        schemaName: eventSchemaName(kind),
        type: 'JSONSchemaDraft4',
        description: `${CONNECTION_EVENTS[kind].detailType}, published by the broker on its event bus`,
        content: JSON.stringify(eventSchemaDocument(kind)),
      });
      schema.addResourceDependency(this.registry);
    }
  }
}
