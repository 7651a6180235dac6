import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
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

/** Where the local event bus appends its events, one JSON event a line, in a data folder. */
export const EVENTS_FILE = 'events.ndjson';

/**
 * A local stand-in for EventBridge's `PutEvents` (target prefix `AWSEvents`): it delivers nothing and
 * checks no rule; it records every entry in {@link LocalEventBus.events}, in the order received, and, with
 * a file, appends each as the event a rule's target would receive (`detail` parsed), one JSON a line.
 */
export class LocalEventBus implements LocalService {
  readonly targetPrefix = 'AWSEvents';
  readonly operations: ReadonlyMap<string, Operation>;
  readonly events: RecordedEvent[] = [];
  readonly #file: string | undefined;
  readonly #region: string;
  readonly #accountId: string;

  constructor(options: { file?: string; region?: string; accountId?: string } = {}) {
    this.operations = new Map<string, Operation>([['PutEvents', (input) => this.#putEvents(input)]]);
    this.#file = options.file;
    this.#region = options.region ?? 'us-east-1';
    this.#accountId = options.accountId ?? '000000000000';
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
    if (this.#file !== undefined && entries.length > 0) {
      appendFileSync(
        this.#file,
        entries.map((entry) => `${JSON.stringify(this.#delivered(entry))}\n`).join(''),
      );
    }
    return { FailedEntryCount: 0, Entries: entries.map((entry) => ({ EventId: entry.eventId })) };
  }

  /** An entry as EventBridge delivers it to a rule's target. */
  #delivered(entry: RecordedEvent): Record<string, unknown> {
    let detail: unknown = entry.detail;
    try {
      detail = entry.detail === undefined ? {} : JSON.parse(entry.detail);
    } catch {
      // Kept as sent: EventBridge itself refuses a Detail that is not JSON.
    }
    return {
      version: '0',
      id: entry.eventId,
      'detail-type': entry.detailType,
      source: entry.source,
      account: this.#accountId,
      time: entry.time.toISOString(),
      region: this.#region,
      resources: entry.resources,
      'event-bus-name': entry.eventBusName,
      detail,
    };
  }
}
