import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_ARN,
  BETA_ADMIN_ARN,
  type BrokerHarness,
  invoke,
  startBroker,
  type TestRequest,
} from '../../support/broker.ts';
import { connectRoutes } from './connect-support.ts';

let broker: BrokerHarness;
let routes: ReturnType<typeof connectRoutes>;

beforeAll(async () => {
  broker = await startBroker({
    config: {
      callers: [
        { principal: 'arn:aws:iam::111122223333:role/partner-app', connections: ['acme-*', 'beta-*'] },
        { principal: ADMIN_ARN, connections: ['acme-*'], admin: true },
        { principal: BETA_ADMIN_ARN, connections: ['beta-*'], admin: true },
      ],
    },
  });
  routes = connectRoutes(broker);
  for (const id of ['acme-a', 'acme-b', 'acme-c', 'beta-a', 'beta-b']) {
    await broker.connect(id);
  }
  // Connections no admin covers, sorting before beta-*: a listing must never reveal their ids.
  for (let index = 1; index <= 12; index++) {
    await broker.runtime.store.saveConnection(
      {
        connectionId: `alpha-secret-customer-${index}`,
        status: 'active',
        grant: 'authorization_code',
        accessToken: new TextEncoder().encode('sealed'),
        accessTokenExpiresAt: broker.clock.now() + 3_600_000,
        nextRefreshAt: broker.clock.now() + 3_000_000,
      },
      { expectedVersion: undefined, now: broker.clock.now() },
    );
  }
});

afterAll(async () => {
  await broker?.close();
});

function admin(request: Omit<TestRequest, 'caller'>, caller = ADMIN_ARN) {
  return invoke(routes.handlers.connections, { ...request, caller });
}

function ids(body: unknown): string[] {
  return (body as { connections: Array<{ connectionId: string }> }).connections.map((c) => c.connectionId);
}

describe('the connections admin routes', () => {
  it('list only the connections the admin covers', async () => {
    const acme = await admin({ method: 'GET', route: '/connections' });
    const beta = await admin({ method: 'GET', route: '/connections' }, BETA_ADMIN_ARN);

    expect(acme.statusCode).toBe(200);
    expect(ids(acme.json)).toEqual(['acme-a', 'acme-b', 'acme-c']);
    expect(ids(beta.json)).toEqual(['beta-a', 'beta-b']);
    expect(JSON.stringify(acme.json)).not.toMatch(/accessToken"|refreshToken|registrationCode/);
  });

  it('page through the list with limit and nextToken', async () => {
    const seen: string[] = [];
    let nextToken: string | undefined;
    for (let page = 0; page < 10; page++) {
      const response = await admin({
        method: 'GET',
        route: '/connections',
        query: { limit: '2', ...(nextToken ? { nextToken } : {}) },
      });
      expect(response.statusCode).toBe(200);
      expect(ids(response.json).length).toBeLessThanOrEqual(2);
      seen.push(...ids(response.json));
      nextToken = (response.json as { nextToken?: string }).nextToken;
      if (!nextToken) break;
    }

    expect(seen).toEqual(['acme-a', 'acme-b', 'acme-c']);
  });

  it("hand out nextTokens that reveal no connection outside the admin's patterns", async () => {
    const seen: string[] = [];
    const tokens: string[] = [];
    let nextToken: string | undefined;
    for (let page = 0; page < 20; page++) {
      const response = await admin(
        { method: 'GET', route: '/connections', query: { limit: '1', ...(nextToken ? { nextToken } : {}) } },
        BETA_ADMIN_ARN,
      );
      expect(response.statusCode).toBe(200);
      seen.push(...ids(response.json));
      nextToken = (response.json as { nextToken?: string }).nextToken;
      if (!nextToken) break;
      tokens.push(nextToken);
    }

    expect(seen).toEqual(['beta-a', 'beta-b']);
    expect(tokens.length).toBeGreaterThan(0);
    for (const token of tokens) {
      expect(Buffer.from(token, 'base64url').toString()).not.toMatch(/alpha|acme/);
    }
  });

  it('answer 400 to a nextToken that points outside the admin patterns', async () => {
    const crafted = Buffer.from(
      JSON.stringify({ s: 'active', p: 'beta-*', a: 'alpha-secret-customer-1' }),
    ).toString('base64url');

    const response = await admin(
      { method: 'GET', route: '/connections', query: { nextToken: crafted } },
      BETA_ADMIN_ARN,
    );

    expect(response.statusCode).toBe(400);
    expect(response.json).toMatchObject({
      error: 'invalid_request',
      message: expect.stringMatching(/nextToken/),
    });
  });

  it('filter the list by status', async () => {
    const active = await admin({ method: 'GET', route: '/connections', query: { status: 'active' } });
    const reauth = await admin({ method: 'GET', route: '/connections', query: { status: 'needs_reauth' } });

    expect(ids(active.json)).toEqual(['acme-a', 'acme-b', 'acme-c']);
    expect(reauth.json).toEqual({ connections: [] });
  });

  it("refuse a connection outside the admin's patterns with 403", async () => {
    const response = await admin({
      method: 'GET',
      route: '/connections/{id}',
      pathParameters: { id: 'beta-a' },
    });

    expect(response.statusCode).toBe(403);
    expect(response.json).toMatchObject({ error: 'forbidden' });
  });

  it('disconnect: 204, a tombstone without tokens, then 404 on GET and on a second DELETE', async () => {
    const target = { route: '/connections/{id}', pathParameters: { id: 'acme-b' } };

    const deleted = await admin({ method: 'DELETE', ...target });

    expect(deleted.statusCode).toBe(204);
    expect(deleted.body).toBe('');
    const tombstone = (await broker.scanTable()).find((item) => item.pk === 'CONNECTION#acme-b');
    expect(tombstone).toMatchObject({ status: 'disconnected' });
    expect(tombstone).not.toHaveProperty('accessToken');
    expect(tombstone).not.toHaveProperty('refreshToken');
    expect(tombstone).not.toHaveProperty('dueAt');
    expect(tombstone).not.toHaveProperty('userId');
    expect(tombstone).not.toHaveProperty('profileId');
    expect(tombstone).not.toHaveProperty('email');
    const read = await admin({ method: 'GET', ...target });
    expect(read.statusCode).toBe(404);
    expect(read.json).toMatchObject({ error: 'connection_not_found' });
    const again = await admin({ method: 'DELETE', ...target });
    expect(again.statusCode).toBe(404);
    const list = await admin({ method: 'GET', route: '/connections' });
    expect(ids(list.json)).toEqual(['acme-a', 'acme-c']);
  });

  it('let a new connect session connect a disconnected id again', async () => {
    await admin({ method: 'DELETE', route: '/connections/{id}', pathParameters: { id: 'acme-c' } });
    const tombstone = await broker.runtime.store.getConnection('acme-c');

    const { response } = await routes.connectThroughCallback('acme-c');

    expect(response.statusCode).toBe(200);
    const status = await admin({
      method: 'GET',
      route: '/connections/{id}',
      pathParameters: { id: 'acme-c' },
    });
    expect(status.json).toMatchObject({ connectionId: 'acme-c', status: 'active' });
    expect((await broker.runtime.store.getConnection('acme-c'))?.generation).toBe(
      (tombstone?.generation ?? 0) + 1,
    );
  });
});
