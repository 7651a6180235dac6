import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBridgeEvents } from '#shared/adapters/eventbridge-events.ts';
import { type TestLocalAws, testLocalAws } from '../../support/aws.ts';

let aws: TestLocalAws;

beforeAll(async () => {
  aws = await testLocalAws();
});

afterAll(async () => {
  await aws?.close();
});

describe('EventBridgeEvents on the local EventBridge', () => {
  it('records a reauthorization event on the named bus', async () => {
    const events = new EventBridgeEvents({ client: aws.events, eventBusName: 'broker-test-bus' });
    const at = Date.UTC(2026, 10, 26, 12, 30, 0);

    await events.reauthorizationRequired({ connectionId: 'acme-1', reason: 'invalid_grant', at });

    expect(aws.recordedEvents).toHaveLength(1);
    const [recorded] = aws.recordedEvents;
    expect(recorded).toMatchObject({
      eventBusName: 'broker-test-bus',
      source: 'wise-token-broker',
      detailType: 'Connection Reauthorization Required',
      time: new Date(at),
    });
    expect(JSON.parse(recorded?.detail ?? '{}')).toEqual({
      connectionId: 'acme-1',
      reason: 'invalid_grant',
      at: '2026-11-26T12:30:00.000Z',
    });
  });
});
