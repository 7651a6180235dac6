import { gunzipSync } from 'node:zlib';
import { AUDIT_MARKER } from '#shared/adapters/stdout-audit-trail.ts';
import * as z from '#shared/validation.ts';

/** One line for the audit log group: when it was written and the line itself. */
export interface AuditLogEvent {
  timestamp: number;
  message: string;
}

/** Writes lines to the audit log group, in one stream per source. */
export interface AuditLogWriter {
  write(stream: string, events: readonly AuditLogEvent[]): Promise<void>;
}

/** What CloudWatch Logs sends a subscription's Lambda destination, once decoded. */
const SubscriptionData = z.object({
  messageType: z.string(),
  logGroup: z.string(),
  logStream: z.string(),
  logEvents: z.array(z.object({ id: z.string(), timestamp: z.number(), message: z.string() })),
});

/** The Lambda event of a CloudWatch Logs subscription: gzip'd JSON in base64. */
export const SubscriptionEvent = z.object({ awslogs: z.object({ data: z.string() }) });
export type SubscriptionEvent = z.output<typeof SubscriptionEvent>;

/** What one forwarding did: the lines written and the lines left out (not audit lines). */
export interface ForwardSummary {
  stream?: string;
  forwarded: number;
  skipped: number;
}

/**
 * Copies the audit lines of one subscription delivery (the lines of a function's log group marked
 * `"audit": true`) into the audit log group, unchanged and in time order, in a stream named after their
 * source. Control messages (CloudWatch Logs' delivery test) and lines without the marker are skipped.
 * A write that fails throws, so Lambda retries the delivery and finally hands it to the dead-letter queue.
 */
export async function forwardAuditLines(
  writer: AuditLogWriter,
  event: SubscriptionEvent,
): Promise<ForwardSummary> {
  const data = SubscriptionData.parse(
    JSON.parse(gunzipSync(Buffer.from(event.awslogs.data, 'base64')).toString('utf8')),
  );
  if (data.messageType !== 'DATA_MESSAGE') return { forwarded: 0, skipped: data.logEvents.length };
  const lines = data.logEvents.filter((line) => isAuditLine(line.message));
  const skipped = data.logEvents.length - lines.length;
  if (lines.length === 0) return { forwarded: 0, skipped };
  const stream = streamName(data.logGroup, data.logStream);
  const events = lines
    .map((line) => ({ timestamp: line.timestamp, message: line.message.trimEnd() }))
    .sort((a, b) => a.timestamp - b.timestamp);
  await writer.write(stream, events);
  return { stream, forwarded: events.length, skipped };
}

/** A JSON object line whose audit marker is `true`. */
export function isAuditLine(message: string): boolean {
  try {
    const parsed = JSON.parse(message) as unknown;
    return (
      typeof parsed === 'object' &&
      parsed !== null &&
      (parsed as Record<string, unknown>)[AUDIT_MARKER] === true
    );
  } catch {
    return false;
  }
}

/**
 * The audit stream for a source: its log group's last path segment and its stream, without the `:` and
 * `*` that stream names may not hold.
 */
export function streamName(logGroup: string, logStream: string): string {
  const source =
    logGroup
      .split('/')
      .filter((part) => part !== '')
      .at(-1) ?? 'unknown';
  return `${source}/${logStream}`.replace(/[:*]/g, '_').slice(0, 512);
}
