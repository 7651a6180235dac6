import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  type AuditLogEvent,
  type AuditLogWriter,
  forwardAuditLines,
  isAuditLine,
  type SubscriptionEvent,
  streamName,
} from '#shared/use-cases/forward-audit.ts';

const LOG_GROUP = 'WiseBroker-test-Stateless-tokensLogs1A2B3C';
const LOG_STREAM = '2026/12/01/[$LATEST]0123456789abcdef';

class RecordingWriter implements AuditLogWriter {
  readonly writes: Array<{ stream: string; events: readonly AuditLogEvent[] }> = [];

  async write(stream: string, events: readonly AuditLogEvent[]): Promise<void> {
    this.writes.push({ stream, events });
  }
}

/** A delivery as CloudWatch Logs sends it to a subscription's Lambda destination. */
function delivery(messages: Array<{ timestamp: number; message: string }>, messageType = 'DATA_MESSAGE') {
  const data = {
    messageType,
    owner: '123456789012',
    logGroup: LOG_GROUP,
    logStream: LOG_STREAM,
    subscriptionFilters: ['audit-trail'],
    logEvents: messages.map((message, index) => ({ id: String(index), ...message })),
  };
  return { awslogs: { data: gzipSync(JSON.stringify(data)).toString('base64') } } satisfies SubscriptionEvent;
}

const vend = (time: number) =>
  JSON.stringify({ audit: true, time: new Date(time).toISOString(), action: 'vend', connectionId: 'acme-1' });

describe('forwardAuditLines', () => {
  it('writes the audit lines of a delivery, unchanged and in time order, to a stream named after the source', async () => {
    const writer = new RecordingWriter();

    const summary = await forwardAuditLines(
      writer,
      delivery([
        { timestamp: 2_000, message: `${vend(2_000)}\n` },
        { timestamp: 1_500, message: '{"level":"INFO","message":"Token vended","audit":"no"}' },
        { timestamp: 1_000, message: vend(1_000) },
      ]),
    );

    expect(writer.writes).toEqual([
      {
        stream: `${LOG_GROUP}/${LOG_STREAM}`,
        events: [
          { timestamp: 1_000, message: vend(1_000) },
          { timestamp: 2_000, message: vend(2_000) },
        ],
      },
    ]);
    expect(summary).toEqual({ stream: `${LOG_GROUP}/${LOG_STREAM}`, forwarded: 2, skipped: 1 });
  });

  it('writes nothing for CloudWatch Logs control messages', async () => {
    const writer = new RecordingWriter();

    const summary = await forwardAuditLines(
      writer,
      delivery(
        [{ timestamp: 1, message: 'CWL CONTROL MESSAGE: Checking health of destination' }],
        'CONTROL_MESSAGE',
      ),
    );

    expect(writer.writes).toEqual([]);
    expect(summary).toEqual({ forwarded: 0, skipped: 1 });
  });

  it('lets a failed write throw, so Lambda retries the delivery', async () => {
    const writer: AuditLogWriter = {
      write: async () => {
        throw new Error('ThrottlingException');
      },
    };

    await expect(forwardAuditLines(writer, delivery([{ timestamp: 1, message: vend(1) }]))).rejects.toThrow(
      'ThrottlingException',
    );
  });
});

describe('isAuditLine', () => {
  it.each([
    ['{"audit":true,"action":"vend"}', true],
    ['{"audit":"true","action":"vend"}', false],
    ['{"level":"INFO","message":"audit"}', false],
    ['2026-12-01T12:00:00Z request-1 INFO {"audit":true}', false],
    ['[{"audit":true}]', false],
  ])('says %s is an audit line: %s', (line, expected) => {
    expect(isAuditLine(line)).toBe(expected);
  });
});

describe('streamName', () => {
  it('names a stream after the last part of the log group and the stream, without ":" or "*"', () => {
    expect(streamName('/aws/lambda/tokens', '2026/12/01/[$LATEST]a:b*c')).toBe(
      'tokens/2026/12/01/[$LATEST]a_b_c',
    );
  });
});
