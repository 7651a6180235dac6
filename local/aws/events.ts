import { randomUUID } from 'node:crypto';
import {
  type JsonObject,
  type LocalService,
  type Operation,
  optionalString,
  optionalStringList,
  optionalTimestamp,
  requiredObjectList,
} from './json-protocol.ts';

/** One entry of a `PutEvents` call, as the local event bus received it. */
export interface RecordedEvent {
  /** The id answered to the caller for this entry. */
  eventId: string;
  /** The bus named in the entry, `default` when it named none. */
  eventBusName: string;
  source: string | undefined;
  detailType: string | undefined;
  /** The entry's `Detail`, a JSON text as sent; parse it to inspect it. */
  detail: string | undefined;
  resources: string[];
  /** The entry's `Time`, or the time it was received. */
  time: Date;
  traceHeader: string | undefined;
}

/**
 * A local stand-in for EventBridge's `PutEvents` (target prefix `AWSEvents`): it delivers nothing and
 * checks no rule; it records every entry in {@link LocalEventBus.events}, in the order received.
 */
export class LocalEventBus implements LocalService {
  readonly targetPrefix = 'AWSEvents';
  readonly operations: ReadonlyMap<string, Operation>;
  readonly events: RecordedEvent[] = [];

  constructor() {
    this.operations = new Map<string, Operation>([['PutEvents', (input) => this.#putEvents(input)]]);
  }

  #putEvents(input: JsonObject): JsonObject {
    const entries = requiredObjectList(input, 'Entries', { min: 1, max: 10 }).map((entry) => ({
      eventId: randomUUID(),
      eventBusName: optionalString(entry, 'EventBusName', { min: 1, max: 1600 }) ?? 'default',
      source: optionalString(entry, 'Source'),
      detailType: optionalString(entry, 'DetailType'),
      detail: optionalString(entry, 'Detail'),
      resources: optionalStringList(entry, 'Resources') ?? [],
      time: optionalTimestamp(entry, 'Time') ?? new Date(),
      traceHeader: optionalString(entry, 'TraceHeader'),
    }));
    this.events.push(...entries);
    return { FailedEntryCount: 0, Entries: entries.map((entry) => ({ EventId: entry.eventId })) };
  }
}
