import {
  CloudWatchLogsClient,
  CreateLogStreamCommand,
  PutLogEventsCommand,
  ResourceAlreadyExistsException,
} from '@aws-sdk/client-cloudwatch-logs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { CloudWatchAuditLog } from '#shared/adapters/cloudwatch-audit-log.ts';

const logs = mockClient(CloudWatchLogsClient);
const client = new CloudWatchLogsClient({
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIAUNITTEST', secretAccessKey: 'unit-test-only' },
});
const GROUP = '/wise-broker/test/audit';

beforeEach(() => {
  logs.reset();
  logs.on(CreateLogStreamCommand).resolves({});
  logs.on(PutLogEventsCommand).resolves({});
});

afterAll(() => {
  logs.restore();
  client.destroy();
});

describe('CloudWatchAuditLog', () => {
  it('creates a stream once and puts the events into it', async () => {
    const auditLog = new CloudWatchAuditLog({ client, logGroupName: GROUP });

    await auditLog.write('tokens/s-1', [{ timestamp: 1, message: '{"audit":true}' }]);
    await auditLog.write('tokens/s-1', [{ timestamp: 2, message: '{"audit":true}' }]);

    expect(logs.commandCalls(CreateLogStreamCommand).map((call) => call.args[0].input)).toEqual([
      { logGroupName: GROUP, logStreamName: 'tokens/s-1' },
    ]);
    expect(logs.commandCalls(PutLogEventsCommand).map((call) => call.args[0].input)).toEqual([
      {
        logGroupName: GROUP,
        logStreamName: 'tokens/s-1',
        logEvents: [{ timestamp: 1, message: '{"audit":true}' }],
      },
      {
        logGroupName: GROUP,
        logStreamName: 'tokens/s-1',
        logEvents: [{ timestamp: 2, message: '{"audit":true}' }],
      },
    ]);
  });

  it('writes into a stream that already exists', async () => {
    logs
      .on(CreateLogStreamCommand)
      .rejects(new ResourceAlreadyExistsException({ message: 'exists', $metadata: {} }));

    await new CloudWatchAuditLog({ client, logGroupName: GROUP }).write('tokens/s-1', [
      { timestamp: 1, message: 'x' },
    ]);

    expect(logs.commandCalls(PutLogEventsCommand)).toHaveLength(1);
  });

  it('splits what PutLogEvents cannot take at once into batches of at most 1 MB', async () => {
    const message = 'x'.repeat(300_000);

    await new CloudWatchAuditLog({ client, logGroupName: GROUP }).write(
      'tokens/s-1',
      [1, 2, 3, 4].map((timestamp) => ({ timestamp, message })),
    );

    const batches = logs.commandCalls(PutLogEventsCommand).map((call) => call.args[0].input.logEvents ?? []);
    expect(batches.map((batch) => batch.map((event) => event.timestamp))).toEqual([[1, 2, 3], [4]]);
  });
});
