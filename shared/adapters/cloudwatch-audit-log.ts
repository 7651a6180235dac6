import {
  type CloudWatchLogsClient,
  CreateLogStreamCommand,
  PutLogEventsCommand,
  ResourceAlreadyExistsException,
} from '@aws-sdk/client-cloudwatch-logs';
import type { AuditLogEvent, AuditLogWriter } from '#shared/use-cases/forward-audit.ts';

/** PutLogEvents takes at most this many events, and this many bytes (each event counts 26 more). */
const MAX_BATCH_EVENTS = 10_000;
const MAX_BATCH_BYTES = 1_048_576;
const EVENT_OVERHEAD_BYTES = 26;

/**
 * The audit log group in CloudWatch Logs: creates each stream once (an existing one is fine) and puts the
 * events in batches within PutLogEvents' limits.
 */
export class CloudWatchAuditLog implements AuditLogWriter {
  readonly #client: CloudWatchLogsClient;
  readonly #logGroupName: string;
  readonly #streams = new Set<string>();

  constructor(options: { client: CloudWatchLogsClient; logGroupName: string }) {
    this.#client = options.client;
    this.#logGroupName = options.logGroupName;
  }

  async write(stream: string, events: readonly AuditLogEvent[]): Promise<void> {
    await this.#ensureStream(stream);
    for (const batch of batches(events)) {
      await this.#client.send(
        new PutLogEventsCommand({
          logGroupName: this.#logGroupName,
          logStreamName: stream,
          logEvents: batch,
        }),
      );
    }
  }

  async #ensureStream(stream: string): Promise<void> {
    if (this.#streams.has(stream)) return;
    try {
      await this.#client.send(
        new CreateLogStreamCommand({ logGroupName: this.#logGroupName, logStreamName: stream }),
      );
    } catch (error) {
      if (!(error instanceof ResourceAlreadyExistsException)) throw error;
    }
    this.#streams.add(stream);
  }
}

function batches(events: readonly AuditLogEvent[]): AuditLogEvent[][] {
  const result: AuditLogEvent[][] = [];
  let batch: AuditLogEvent[] = [];
  let bytes = 0;
  for (const event of events) {
    const size = Buffer.byteLength(event.message) + EVENT_OVERHEAD_BYTES;
    if (batch.length > 0 && (batch.length >= MAX_BATCH_EVENTS || bytes + size > MAX_BATCH_BYTES)) {
      result.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push({ timestamp: event.timestamp, message: event.message });
    bytes += size;
  }
  if (batch.length > 0) result.push(batch);
  return result;
}
