import { describe, expect, it } from 'vitest';
import type { ConnectionStatus } from '../../../client/index.ts';
import { json, useFakeBroker } from './fake-broker.ts';

const connectionId = 'acme:user-42.main';

function status(id: string, overrides: Partial<ConnectionStatus> = {}): ConnectionStatus {
  return {
    connectionId: id,
    status: 'active',
    profileId: 1234,
    grant: 'registration_code',
    accessTokenExpiresAt: '2026-11-26T13:00:00.000Z',
    nextRefreshAt: '2026-11-26T12:48:00.000Z',
    lastRefreshAt: null,
    lastError: null,
    ...overrides,
  };
}

describe('BrokerClient connection routes', () => {
  const env = useFakeBroker('/');

  it('creates a connect session with a signed POST /connect-sessions', async () => {
    const session = {
      startUrl: 'https://broker.example/oauth/start?state=s1',
      expiresAt: '2026-11-26T12:10:00.000Z',
    };
    env.broker.reply('POST /connect-sessions', () => json(201, session));

    const created = await env.client.createConnectSession({
      connectionId,
      returnUrl: 'https://partner.example/done',
    });

    expect(created).toEqual(session);
    expect(env.broker.seen).toEqual([
      expect.objectContaining({
        routeKey: 'POST /connect-sessions',
        body: { connectionId, returnUrl: 'https://partner.example/done' },
      }),
    ]);
  });

  it('confirms a connection with its completion code on the connection’s own path', async () => {
    env.broker.reply('POST /connections/{id}/completion', ({ pathParameters }) =>
      json(200, status(pathParameters.id ?? '')),
    );

    const confirmed = await env.client.completeConnection(connectionId, 'completion-code-1234');

    expect(confirmed.connectionId).toBe(connectionId);
    expect(env.broker.seen).toEqual([
      expect.objectContaining({
        routeKey: 'POST /connections/{id}/completion',
        pathParameters: { id: connectionId },
        body: { completionCode: 'completion-code-1234' },
      }),
    ]);
  });

  it('registers with a code on the connection’s own path, the id decoded intact', async () => {
    env.broker.reply('POST /connections/{id}/registration-code', ({ pathParameters }) =>
      json(201, status(pathParameters.id ?? '')),
    );
    const body = { email: 'someone@example.com', registrationCode: 'not-a-real-code', signup: true };

    const registered = await env.client.registerWithCode(connectionId, body);

    expect(registered).toEqual(status(connectionId));
    expect(env.broker.seen[0]).toMatchObject({ pathParameters: { id: connectionId }, body });
  });

  it('reads one connection’s status', async () => {
    const lastError = {
      code: 'invalid_grant',
      message: 'Wise refused the refresh token.',
      at: '2026-11-26T11:00:00.000Z',
    };
    env.broker.reply('GET /connections/{id}', () =>
      json(200, status(connectionId, { status: 'needs_reauth', lastError })),
    );

    const found = await env.client.getConnection(connectionId);

    expect(found).toEqual(status(connectionId, { status: 'needs_reauth', lastError }));
    expect(env.broker.seen[0]?.pathParameters).toEqual({ id: connectionId });
  });

  it('lists connections across every page, passing the status and each nextToken back unchanged', async () => {
    const nextToken = 'eyJrIjoiYTpiIn0+/=';
    env.broker.reply('GET /connections', ({ query }) =>
      query.nextToken === undefined
        ? json(200, { connections: [status('a'), status('b')], nextToken })
        : json(200, { connections: [status('c')] }),
    );

    const connections = await env.client.listConnections({ status: 'active' });

    expect(connections.map((connection) => connection.connectionId)).toEqual(['a', 'b', 'c']);
    expect(env.broker.seen.map((request) => request.query)).toEqual([
      { status: 'active' },
      { status: 'active', nextToken },
    ]);
  });

  it('deletes a connection with DELETE and resolves on 204', async () => {
    env.broker.reply('DELETE /connections/{id}', () => ({ statusCode: 204 }));

    await expect(env.client.deleteConnection(connectionId)).resolves.toBeUndefined();

    expect(env.broker.seen).toEqual([expect.objectContaining({ routeKey: 'DELETE /connections/{id}' })]);
  });

  it('rejects a delete the broker answers with 404', async () => {
    env.broker.reply('DELETE /connections/{id}', () =>
      json(404, { error: 'connection_not_found', message: `No connection "${connectionId}" exists.` }),
    );

    await expect(env.client.deleteConnection(connectionId)).rejects.toMatchObject({
      status: 404,
      code: 'connection_not_found',
    });
  });

  it.each(['.', '..'])(
    'refuses the connection id "%s", which a URL path cannot carry, without a request',
    async (id) => {
      await expect(env.client.getConnection(id)).rejects.toMatchObject({
        status: 0,
        code: 'invalid_request',
      });

      expect(env.broker.seen).toHaveLength(0);
    },
  );
});
