import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalAws, startLocalAws } from '#local/aws/local-aws.ts';
import { main } from '#local/events-cli.ts';
import { EventBridgeEvents } from '#shared/adapters/eventbridge-events.ts';

let dataDir: string;
let aws: LocalAws;
let events: EventBridgeEvents;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'broker-events-'));
  // As the local broker starts it: the AWS stand-ins keep their data in the data folder's aws/.
  aws = await startLocalAws({ dataDir: join(dataDir, 'aws') });
  const client = new EventBridgeClient({
    region: 'us-east-1',
    endpoint: aws.endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  events = new EventBridgeEvents({ client, eventBusName: 'wise-broker-local' });
});

afterAll(async () => {
  await aws?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const AT = Date.UTC(2026, 11, 1, 9, 0, 0);

describe('the local event bus and npm run events', () => {
  it('appends every event to events.ndjson in the data folder as a rule target receives it', async () => {
    await events.connected({
      connectionId: 'acme-1',
      grant: 'authorization_code',
      imported: false,
      profileId: 7,
      generation: 1,
      at: AT,
    });

    const lines = (await readFile(join(dataDir, 'aws', 'events.ndjson'), 'utf8')).trim().split('\n');

    expect(JSON.parse(lines.at(-1) ?? '{}')).toMatchObject({
      version: '0',
      source: 'wise-token-broker',
      'detail-type': 'Connection Connected',
      time: '2026-12-01T09:00:00.000Z',
      'event-bus-name': 'wise-broker-local',
      detail: { connectionId: 'acme-1', grant: 'authorization_code', profileId: 7, previousStatus: null },
    });
  });

  it('prints the events so far, one line each, or the raw JSON with --json', async () => {
    const printed: string[] = [];
    const raw: string[] = [];

    expect(await main(['--data-dir', dataDir], { print: (line) => printed.push(line) })).toBe(0);
    expect(await main(['--data-dir', dataDir, '--json'], { print: (line) => raw.push(line) })).toBe(0);

    expect(printed[0]).toMatch(/^2026-12-01T09:00:00.000Z {2}Connection Connected {2}acme-1 {2}\{"grant"/);
    expect(JSON.parse(raw[0] ?? '{}')['detail-type']).toBe('Connection Connected');
  });

  it('follows new events as they arrive until stopped', async () => {
    const controller = new AbortController();
    const printed: string[] = [];
    let seen: () => void = () => {};
    const disconnectedSeen = new Promise<void>((resolve) => {
      seen = resolve;
    });
    const following = main(['--data-dir', dataDir, '--follow'], {
      signal: controller.signal,
      pollMs: 10,
      print: (line) => {
        printed.push(line);
        if (line.includes('Connection Disconnected')) seen();
      },
    });

    await events.disconnected({ connectionId: 'acme-1', at: AT + 1000 });
    await disconnectedSeen;
    controller.abort();

    expect(await following).toBe(0);
    expect(printed.filter((line) => line.includes('Connection Connected'))).toHaveLength(1);
    expect(printed.at(-1)).toMatch(/Connection Disconnected {2}acme-1/);
  });

  it('says where it looked when there are no events yet', async () => {
    const printed: string[] = [];

    await main(['--data-dir', join(dataDir, 'empty')], { print: (line) => printed.push(line) });

    expect(printed).toEqual([expect.stringMatching(/^No events yet in .*empty\/aws\/events\.ndjson/)]);
  });
});
