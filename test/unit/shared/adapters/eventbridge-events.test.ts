import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { EventBridgeEvents } from '#shared/adapters/eventbridge-events.ts';
import { CONNECTION_EVENTS } from '#shared/domain/connection-event-schemas.ts';
import { BrokerError } from '#shared/domain/errors.ts';

const eventBridge = mockClient(EventBridgeClient);
const client = new EventBridgeClient({
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIAUNITTEST', secretAccessKey: 'unit-test-only' },
});
const event = { connectionId: 'acme-1', reason: 'invalid_grant', at: Date.UTC(2026, 10, 26, 12, 0, 0) };

beforeEach(() => {
  eventBridge.reset();
});

afterAll(() => {
  eventBridge.restore();
  client.destroy();
});

describe('EventBridgeEvents', () => {
  it('puts one reauthorization event on the bus with the connection, the reason and an ISO time', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });

    await new EventBridgeEvents({ client, eventBusName: 'broker-bus' }).reauthorizationRequired(event);

    expect(eventBridge.commandCalls(PutEventsCommand).map((call) => call.args[0].input)).toEqual([
      {
        Entries: [
          {
            EventBusName: 'broker-bus',
            Source: 'wise-token-broker',
            DetailType: 'Connection Reauthorization Required',
            Time: new Date('2026-11-26T12:00:00.000Z'),
            Detail: '{"connectionId":"acme-1","reason":"invalid_grant","at":"2026-11-26T12:00:00.000Z"}',
          },
        ],
      },
    ]);
  });

  it('uses the configured source', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });

    await new EventBridgeEvents({
      client,
      eventBusName: 'broker-bus',
      source: 'acme.broker',
    }).reauthorizationRequired(event);

    expect(eventBridge.commandCalls(PutEventsCommand)[0]?.args[0].input.Entries?.[0]?.Source).toBe(
      'acme.broker',
    );
  });

  it('throws when EventBridge did not accept the event', async () => {
    eventBridge.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }],
    });

    const publishing = new EventBridgeEvents({ client, eventBusName: 'broker-bus' }).reauthorizationRequired(
      event,
    );

    await expect(publishing).rejects.toBeInstanceOf(BrokerError);
    await expect(publishing).rejects.toThrow(
      'EventBridge bus "broker-bus" did not accept the "Connection Reauthorization Required" event for connection "acme-1" (InternalFailure: try again).',
    );
  });

  it.each([
    [
      'connected',
      (events: EventBridgeEvents) =>
        events.connected({
          connectionId: 'acme-1',
          grant: 'authorization_code',
          imported: true,
          generation: 3,
          previousStatus: 'needs_reauth',
          at: event.at,
        }),
      {
        connectionId: 'acme-1',
        grant: 'authorization_code',
        imported: true,
        profileId: null,
        generation: 3,
        previousStatus: 'needs_reauth',
      },
    ],
    [
      'recovered',
      (events: EventBridgeEvents) =>
        events.recovered({ connectionId: 'acme-1', failedRefreshes: 2, generation: 5, at: event.at }),
      { connectionId: 'acme-1', failedRefreshes: 2, lastErrorCode: null, generation: 5 },
    ],
    [
      'disconnected',
      (events: EventBridgeEvents) => events.disconnected({ connectionId: 'acme-1', at: event.at }),
      { connectionId: 'acme-1' },
    ],
  ] as const)(
    'puts a %s event whose detail fits its schema, absent values as null',
    async (kind, publish, detail) => {
      eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });

      await publish(new EventBridgeEvents({ client, eventBusName: 'broker-bus' }));

      const entry = eventBridge.commandCalls(PutEventsCommand)[0]?.args[0].input.Entries?.[0];
      expect(entry?.DetailType).toBe(CONNECTION_EVENTS[kind].detailType);
      const sent = JSON.parse(entry?.Detail ?? '{}');
      expect(sent).toEqual({ ...detail, at: '2026-11-26T12:00:00.000Z' });
      expect(CONNECTION_EVENTS[kind].detail.parse(sent)).toEqual(sent);
    },
  );
});
