import { describe, expect, it, vi } from 'vitest';
import { createConnectionsHandler } from '#functions/connections/handler.ts';
import { createImportHandler } from '#functions/import/handler.ts';
import { CONNECTION_EVENTS } from '#shared/domain/connection-event-schemas.ts';
import type { ConnectionEventKind } from '#shared/domain/connection-events.ts';
import { BACKOFF_CAP_MS } from '#shared/domain/refresh-rule.ts';
import { logger } from '#shared/observability.ts';
import { ADMIN_ARN, type BrokerHarness, invoke, TEST_CALLERS } from '../../support/broker.ts';
import { brokerPerTest, TOKEN_LIFETIME_MS } from './refresh-support.ts';

const IMPORTER_ARN = 'arn:aws:iam::111122223333:role/migration';
const connected = brokerPerTest();

/** The details of the recorded events of one kind, each checked against that kind's schema. */
function detailsOf(broker: BrokerHarness, kind: ConnectionEventKind): unknown[] {
  const { detailType, detail } = CONNECTION_EVENTS[kind];
  return broker.aws.recordedEvents
    .filter((event) => event.detailType === detailType)
    .map((event) => {
      expect(event.source).toBe('wise-token-broker');
      return detail.parse(JSON.parse(event.detail ?? '{}'));
    });
}

describe('the events of a connection', () => {
  it('publishes Connection Connected when the authorization page connects a new id', async () => {
    const { broker, connection } = await connected();

    expect(detailsOf(broker, 'connected')).toEqual([
      {
        connectionId: 'acme-1',
        grant: 'authorization_code',
        imported: false,
        profileId: connection.profileId ?? null,
        generation: connection.generation,
        previousStatus: null,
        at: new Date(connection.updatedAt).toISOString(),
      },
    ]);
  });

  it('publishes Connection Connected for an import, marked imported, with what it replaced', async () => {
    const { broker } = await connected({
      config: {
        callers: [...TEST_CALLERS, { principal: IMPORTER_ARN, import: ['acme-*'] }],
      },
    });
    // The old system's tokens: a second authorization of another user, outside the broker.
    const user = (await broker.control('users', { email: 'imported@example.com' })) as { id: number };
    const location = await broker.authorize({ state: 'old-system-state-000000', userId: user.id });
    const old = await broker.runtime.wise.exchangeCode({ code: location.searchParams.get('code') ?? '' });

    const response = await invoke(
      createImportHandler(() => broker.runtime),
      {
        method: 'POST',
        route: '/connections/{id}/import',
        pathParameters: { id: 'acme-1' },
        caller: IMPORTER_ARN,
        body: { refreshToken: old.refreshToken, replace: true },
      },
    );

    expect(response.statusCode).toBe(201);
    expect(detailsOf(broker, 'connected').at(-1)).toMatchObject({
      connectionId: 'acme-1',
      imported: true,
      previousStatus: 'active',
      generation: 2,
    });
  });

  it('publishes Connection Reauthorization Required when Wise refuses the refresh token', async () => {
    const { broker, routes } = await connected();
    await broker.control('revoke', { userId: (await broker.defaultUser()).id });
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);

    await routes.sweep();

    expect(detailsOf(broker, 'reauthorizationRequired')).toEqual([
      { connectionId: 'acme-1', reason: 'invalid_grant', at: new Date(broker.clock.now()).toISOString() },
    ]);
  });

  it('publishes Connection Recovered when a refresh succeeds after failed ones, and not for a refresh that never failed', async () => {
    const { broker, routes } = await connected();
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
    // One sweep's attempts at Wise, all answered 503.
    await broker.control('faults', { status: 503, count: 4, retryAfter: 0 });
    const failed = await routes.sweep();
    broker.clock.advance(BACKOFF_CAP_MS);

    const recovered = await routes.sweep();
    broker.clock.advance(0.8 * TOKEN_LIFETIME_MS);
    const plain = await routes.sweep();

    expect(failed).toMatchObject({ due: 1, failed: 1 });
    expect(recovered).toMatchObject({ due: 1, refreshed: 1 });
    expect(plain).toMatchObject({ due: 1, refreshed: 1 });
    const stored = await broker.runtime.store.getConnection('acme-1');
    expect(detailsOf(broker, 'recovered')).toEqual([
      {
        connectionId: 'acme-1',
        failedRefreshes: 1,
        lastErrorCode: expect.any(String),
        generation: (stored?.generation ?? 0) - 1,
        at: expect.any(String),
      },
    ]);
  });

  it('publishes Connection Disconnected when an administrator deletes the connection', async () => {
    const { broker } = await connected();

    const response = await invoke(
      createConnectionsHandler(() => broker.runtime),
      {
        method: 'DELETE',
        route: '/connections/{id}',
        pathParameters: { id: 'acme-1' },
        caller: ADMIN_ARN,
      },
    );

    expect(response.statusCode).toBe(204);
    expect(detailsOf(broker, 'disconnected')).toEqual([
      { connectionId: 'acme-1', at: new Date(broker.clock.now()).toISOString() },
    ]);
  });

  it('keeps the stored change when EventBridge refuses the event, and logs it', async () => {
    const { broker } = await connected();
    const runtime = {
      ...broker.runtime,
      events: {
        ...broker.runtime.events,
        reauthorizationRequired: async () => {},
        connected: async () => {},
        recovered: async () => {},
        disconnected: async () => {
          throw new Error('EventBridge is unavailable');
        },
      },
    };
    const errors = vi.spyOn(logger, 'error');

    const response = await invoke(
      createConnectionsHandler(() => runtime),
      {
        method: 'DELETE',
        route: '/connections/{id}',
        pathParameters: { id: 'acme-1' },
        caller: ADMIN_ARN,
      },
    );

    expect(response.statusCode).toBe(204);
    expect((await broker.runtime.store.getConnection('acme-1'))?.status).toBe('disconnected');
    expect(errors).toHaveBeenCalledWith(
      'The connection event was not published; the change it reports is stored',
      expect.objectContaining({ connectionId: 'acme-1', event: 'disconnected' }),
    );
    errors.mockRestore();
  });
});
