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

/** Two admins of every connection that ends in -eu: a pattern without a literal prefix. */
const EU_ADMIN_ARN = 'arn:aws:iam::111122223333:role/eu-admin';
const EU_AUDITOR_ARN = 'arn:aws:iam::111122223333:role/eu-auditor';
const EU_CONNECTIONS = ['delta-1-eu', 'omega-2-eu'];
const HIDDEN = Array.from({ length: 12 }, (_, index) => `alpha-secret-customer-${index + 1}`);

let broker: BrokerHarness;
let routes: ReturnType<typeof connectRoutes>;

beforeAll(async () => {
  broker = await startBroker({
    config: {
      callers: [
        { principal: 'arn:aws:iam::111122223333:role/partner-app', use: ['acme-*', 'beta-*'] },
        { principal: ADMIN_ARN, administer: ['acme-*'] },
        { principal: BETA_ADMIN_ARN, administer: ['beta-*'] },
        { principal: EU_ADMIN_ARN, administer: ['*-eu'] },
        { principal: EU_AUDITOR_ARN, administer: ['*-eu'] },
      ],
    },
  });
  routes = connectRoutes(broker);
  for (const id of ['acme-a', 'acme-b', 'acme-c', 'beta-a', 'beta-b']) {
    await broker.connect(id);
  }
  // Connections no admin covers, sorting before beta-*: a listing must never reveal their ids.
  for (const connectionId of [...HIDDEN, ...EU_CONNECTIONS]) {
    await broker.runtime.store.saveConnection(
      {
        connectionId,
        status: 'active',
        grant: 'authorization_code',
        generation: 1,
        dataKey: new TextEncoder().encode('key'),
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

function cursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Every page of one admin's listing, with every nextToken handed out on the way. */
async function everyPage(caller: string, limit: string) {
  const seen: string[] = [];
  const tokens: string[] = [];
  let nextToken: string | undefined;
  for (let page = 0; page < 30; page++) {
    const response = await admin(
      { method: 'GET', route: '/connections', query: { limit, ...(nextToken ? { nextToken } : {}) } },
      caller,
    );
    expect(response.statusCode).toBe(200);
    seen.push(...ids(response.json));
    nextToken = (response.json as { nextToken?: string }).nextToken;
    if (!nextToken) return { seen, tokens };
    tokens.push(nextToken);
  }
  throw new Error('the listing never ended');
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

  it('hand out, for a pattern without a literal prefix, sealed nextTokens whose bytes name no connection', async () => {
    const stored = (await broker.scanTable())
      .map((item) => item.connectionId)
      .filter((id): id is string => typeof id === 'string');
    const { seen, tokens } = await everyPage(EU_ADMIN_ARN, '1');

    expect(seen).toEqual(EU_CONNECTIONS);
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    expect(stored).toEqual(expect.arrayContaining([...HIDDEN, ...EU_CONNECTIONS, 'acme-a']));
    for (const token of tokens) {
      const bytes = Buffer.from(token, 'base64url');
      for (const id of stored) expect(bytes.includes(id)).toBe(false);
      // A KMS ciphertext of a small cursor: far below what a query string carries.
      expect(token.length).toBeLessThan(1024);
    }
  });

  it.each([
    ['a hand-written nextToken', () => cursor({ s: 'active', p: 'beta-*', a: 'alpha-secret-customer-1' })],
    [
      'a hand-written nextToken inside its own pattern',
      () => cursor({ s: 'active', p: 'beta-*', a: 'beta-a' }),
    ],
    ['random bytes', () => Buffer.from('not-a-sealed-cursor-at-all').toString('base64url')],
  ])('answer 400 to %s, never a 500', async (_, nextToken) => {
    const response = await admin(
      { method: 'GET', route: '/connections', query: { nextToken: nextToken() } },
      BETA_ADMIN_ARN,
    );

    expect(response.statusCode).toBe(400);
    expect(response.json).toMatchObject({
      error: 'invalid_request',
      message: expect.stringMatching(/^The nextToken .+\.$/),
    });
  });

  it("answer 400 to another admin's nextToken for the same pattern, and to an altered one", async () => {
    const { tokens } = await everyPage(EU_ADMIN_ARN, '1');
    const theirs = tokens[0] ?? '';
    const altered = Buffer.from(theirs, 'base64url');
    altered[altered.length - 1] = (altered[altered.length - 1] ?? 0) ^ 1;

    const borrowed = await admin(
      { method: 'GET', route: '/connections', query: { limit: '1', nextToken: theirs } },
      EU_AUDITOR_ARN,
    );
    const tampered = await admin(
      {
        method: 'GET',
        route: '/connections',
        query: { limit: '1', nextToken: altered.toString('base64url') },
      },
      EU_ADMIN_ARN,
    );
    const own = await admin(
      { method: 'GET', route: '/connections', query: { limit: '1', nextToken: theirs } },
      EU_ADMIN_ARN,
    );

    expect(theirs).not.toBe('');
    expect(borrowed.statusCode).toBe(400);
    expect(borrowed.json).toMatchObject({
      error: 'invalid_request',
      message: expect.stringMatching(/nextToken/),
    });
    expect(tampered.statusCode).toBe(400);
    expect(tampered.json).toMatchObject({ error: 'invalid_request' });
    expect(own.statusCode).toBe(200);
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
