import { describe, expect, it } from 'vitest';
import { ConnectionNotFoundError, ForbiddenError, InvalidRequestError } from '#shared/domain/errors.ts';
import { parseValue } from '#shared/http/request.ts';
import { connectionIdFromPath, toConnectionStatus } from '#shared/use-cases/connection-status.ts';
import {
  disconnectConnection,
  getConnectionStatus,
  ListConnectionsQuery,
  listConnections,
} from '#shared/use-cases/connections-admin.ts';
import { ADMIN, fakeRuntime, OTHER_ADMIN, PARTNER, START, storedConnection } from './connect-fakes.ts';

describe('toConnectionStatus', () => {
  it('shows state and ISO times and nothing secret', () => {
    const record = storedConnection('acme-1', {
      registrationCode: new TextEncoder().encode('sealed-code'),
      email: 'jo@example.com',
      lastError: { code: 'provider_unavailable', message: 'Wise answered 503.', at: START + 1000 },
      lease: { owner: 'x', expiresAt: START + 5000 },
    });

    const status = toConnectionStatus(record);

    expect(status).toEqual({
      connectionId: 'acme-1',
      status: 'active',
      profileId: 16550001,
      grant: 'authorization_code',
      accessTokenExpiresAt: '2026-11-26T21:59:59.000Z',
      nextRefreshAt: '2026-11-26T19:26:40.000Z',
      lastRefreshAt: '2026-11-26T10:00:00.000Z',
      lastError: {
        code: 'provider_unavailable',
        message: 'Wise answered 503.',
        at: '2026-11-26T10:00:01.000Z',
      },
    });
  });

  it('shows null for what the connection does not have', () => {
    const record = storedConnection('acme-1', { status: 'needs_reauth' });
    delete record.nextRefreshAt;
    delete record.profileId;

    expect(toConnectionStatus(record)).toMatchObject({
      status: 'needs_reauth',
      nextRefreshAt: null,
      profileId: null,
    });
  });
});

describe('connectionIdFromPath', () => {
  it('returns a valid id', () => {
    expect(connectionIdFromPath({ id: 'acme:user-1.a_b' })).toBe('acme:user-1.a_b');
  });

  it.each([[{}], [undefined], [{ id: '' }], [{ id: 'a'.repeat(129) }], [{ id: 'acme user' }]])(
    'refuses %j naming the alphabet and the length',
    (parameters) => {
      expect(() => connectionIdFromPath(parameters)).toThrow(InvalidRequestError);
      expect(() => connectionIdFromPath(parameters)).toThrow(/1 to 128 characters of letters, digits/);
    },
  );
});

describe('getConnectionStatus', () => {
  it('shows a connection the admin covers', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1'));

    const status = await getConnectionStatus(runtime, { callerArn: ADMIN, connectionId: 'acme-1' });

    expect(status.connectionId).toBe('acme-1');
  });

  it('answers not found for a tombstone and for an unknown id', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1', { status: 'disconnected' }));

    await expect(getConnectionStatus(runtime, { callerArn: ADMIN, connectionId: 'acme-1' })).rejects.toThrow(
      ConnectionNotFoundError,
    );
    await expect(getConnectionStatus(runtime, { callerArn: ADMIN, connectionId: 'acme-2' })).rejects.toThrow(
      ConnectionNotFoundError,
    );
  });

  it('refuses a caller that is no admin, and an admin whose patterns do not cover the connection', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1'));

    await expect(
      getConnectionStatus(runtime, { callerArn: PARTNER, connectionId: 'acme-1' }),
    ).rejects.toThrow(ForbiddenError);
    await expect(
      getConnectionStatus(runtime, { callerArn: OTHER_ADMIN, connectionId: 'acme-1' }),
    ).rejects.toThrow(ForbiddenError);
  });
});

describe('listConnections', () => {
  function seeded() {
    const runtime = fakeRuntime();
    for (const id of ['acme-1', 'acme-2', 'beta-1', 'acme-3', 'beta-2', 'acme-4']) {
      runtime.store.seedConnection(storedConnection(id));
    }
    runtime.store.seedConnection(storedConnection('acme-5', { status: 'needs_reauth' }));
    runtime.store.seedConnection(storedConnection('acme-6', { status: 'disconnected' }));
    return runtime;
  }

  it('lists only the live connections the admin covers', async () => {
    const runtime = seeded();

    const page = await listConnections(runtime, { callerArn: ADMIN });

    expect(page.connections.map((c) => c.connectionId)).toEqual([
      'acme-1',
      'acme-2',
      'acme-3',
      'acme-4',
      'acme-5',
    ]);
    expect(page.nextToken).toBeUndefined();
  });

  it('filters by status', async () => {
    const runtime = seeded();

    const page = await listConnections(runtime, { callerArn: ADMIN, status: 'needs_reauth' });

    expect(page.connections.map((c) => c.connectionId)).toEqual(['acme-5']);
  });

  it('pages with nextToken, never returning more than the limit', async () => {
    const runtime = seeded();
    const seen: string[] = [];
    let nextToken: string | undefined;

    for (let page = 0; page < 10; page++) {
      const result = await listConnections(runtime, {
        callerArn: ADMIN,
        limit: 2,
        ...(nextToken ? { nextToken } : {}),
      });
      expect(result.connections.length).toBeLessThanOrEqual(2);
      seen.push(...result.connections.map((c) => c.connectionId));
      nextToken = result.nextToken;
      if (!nextToken) break;
    }

    expect(seen).toEqual(['acme-1', 'acme-2', 'acme-3', 'acme-4', 'acme-5']);
  });

  it('shows another admin only its own connections', async () => {
    const runtime = seeded();

    const page = await listConnections(runtime, { callerArn: OTHER_ADMIN });

    expect(page.connections.map((c) => c.connectionId)).toEqual(['beta-1', 'beta-2']);
  });

  it('refuses a caller that is no admin', async () => {
    await expect(listConnections(seeded(), { callerArn: PARTNER })).rejects.toThrow(ForbiddenError);
  });
});

describe('ListConnectionsQuery', () => {
  it('reads limit as a number', () => {
    expect(parseValue({ limit: '25', status: 'active' }, ListConnectionsQuery)).toEqual({
      limit: 25,
      status: 'active',
    });
  });

  it.each([
    [{ limit: '0' }, /Field "limit": must be a whole number from 1 to 100/],
    [{ limit: '101' }, /Field "limit": must be a whole number from 1 to 100/],
    [{ limit: 'ten' }, /Field "limit": must be a whole number from 1 to 100/],
    [{ limit: '2.5' }, /Field "limit": must be a whole number from 1 to 100/],
    [{ status: 'disconnected' }, /Field "status": must be "active" or "needs_reauth"/],
    [{ nextToken: '' }, /Field "nextToken"/],
    [{ page: '2' }, /unknown parameter "page"/],
  ])('refuses %j', (query, message) => {
    expect(() => parseValue(query, ListConnectionsQuery)).toThrow(message);
  });
});

describe('disconnectConnection', () => {
  it('leaves a tombstone without tokens, and a second disconnect finds nothing', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1'));

    await disconnectConnection(runtime, { callerArn: ADMIN, connectionId: 'acme-1' });

    const stored = await runtime.store.getConnection('acme-1');
    expect(stored?.status).toBe('disconnected');
    expect(stored?.accessToken).toBeUndefined();
    expect(stored?.refreshToken).toBeUndefined();
    await expect(disconnectConnection(runtime, { callerArn: ADMIN, connectionId: 'acme-1' })).rejects.toThrow(
      ConnectionNotFoundError,
    );
  });

  it('refuses an admin whose patterns do not cover the connection, leaving it alone', async () => {
    const runtime = fakeRuntime();
    runtime.store.seedConnection(storedConnection('acme-1'));

    await expect(
      disconnectConnection(runtime, { callerArn: OTHER_ADMIN, connectionId: 'acme-1' }),
    ).rejects.toThrow(ForbiddenError);
    expect((await runtime.store.getConnection('acme-1'))?.status).toBe('active');
  });
});
