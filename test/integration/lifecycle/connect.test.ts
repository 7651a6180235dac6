import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WiseInvalidGrantError } from '#shared/wise/errors.ts';
import {
  ADMIN_ARN,
  type BrokerHarness,
  invoke,
  PARTNER_SESSION_ARN,
  startBroker,
  TEST_CLIENT_ID,
} from '../../support/broker.ts';
import { connectRoutes, itemText } from './connect-support.ts';

let broker: BrokerHarness;
let routes: ReturnType<typeof connectRoutes>;

beforeAll(async () => {
  broker = await startBroker();
  routes = connectRoutes(broker);
});

afterAll(async () => {
  await broker?.close();
});

describe('connecting a Wise user through the authorization page', () => {
  it('answers a connect session with a start URL that redirects to Wise carrying the state', async () => {
    const session = await routes.startSession('acme-url');

    expect(session.startUrl).toBe(
      `http://127.0.0.1:3000/oauth/start?state=${encodeURIComponent(session.state)}`,
    );
    const url = new URL(session.authorizeUrl);
    expect(`${url.origin}${url.pathname}`).toBe(broker.simulator.authorizeUrl);
    expect(url.searchParams.get('state')).toBe(session.state);
    expect(url.searchParams.get('client_id')).toBe(TEST_CLIENT_ID);
    expect(url.searchParams.get('redirect_uri')).toBe(broker.runtime.redirectUri);
    expect(Date.parse(session.expiresAt)).toBe(broker.clock.now() + 10 * 60 * 1000);
  });

  it('stores the connection encrypted, with no plaintext token, code or state anywhere in the table', async () => {
    const { session, location, response } = await routes.connectThroughCallback('acme-1');

    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.body).toContain('data-status="connected"');
    const stored = await broker.runtime.store.getConnection('acme-1');
    expect(stored).toMatchObject({ status: 'active', grant: 'authorization_code', generation: 1 });
    const tokens = await routes.plaintextTokens(stored);
    expect(tokens.accessToken).toEqual(expect.any(String));
    expect(tokens.refreshToken).toEqual(expect.any(String));
    const item = (await broker.scanTable()).find((candidate) => candidate.pk === 'CONNECTION#acme-1');
    expect(item?.accessToken).toBeInstanceOf(Uint8Array);
    expect(item?.refreshToken).toBeInstanceOf(Uint8Array);
    const table = itemText(await broker.scanTable());
    const code = location.searchParams.get('code') ?? 'missing';
    for (const secret of [tokens.accessToken, tokens.refreshToken, code, session.state]) {
      expect(table).not.toContain(secret);
      expect(response.body).not.toContain(secret);
    }
  });

  it('shows the new connection to an admin, without secrets', async () => {
    await routes.connectThroughCallback('acme-2');
    const user = await broker.defaultUser();
    const personal = user.profiles.find((profile) => profile.type === 'PERSONAL');

    const response = await invoke(routes.handlers.connections, {
      method: 'GET',
      route: '/connections/{id}',
      pathParameters: { id: 'acme-2' },
      caller: ADMIN_ARN,
    });

    expect(response.statusCode).toBe(200);
    expect(response.json).toEqual({
      connectionId: 'acme-2',
      status: 'active',
      profileId: personal?.id,
      grant: 'authorization_code',
      accessTokenExpiresAt: new Date(broker.clock.now() + 43_199_000).toISOString(),
      nextRefreshAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      lastRefreshAt: new Date(broker.clock.now()).toISOString(),
      lastError: null,
    });
  });

  it('keeps the business profile the user chose on the authorization page', async () => {
    const user = await broker.defaultUser();
    const business = user.profiles.find((profile) => profile.type === 'BUSINESS');

    await routes.connectThroughCallback('acme-business', { profileId: business?.id ?? 0 });

    expect((await broker.runtime.store.getConnection('acme-business'))?.profileId).toBe(business?.id);
  });

  it('redirects to the return URL with status approved and a completion code, connecting nothing yet', async () => {
    const user = (await broker.control('users', { email: 'redirected@example.com' })) as { id: number };

    const { response } = await routes.connectThroughCallback('acme-3', {
      returnUrl: 'https://app.example.com/return/acme-3?step=2',
      userId: user.id,
    });

    expect(response.statusCode).toBe(303);
    const location = new URL(response.headers.location ?? '');
    expect(`${location.origin}${location.pathname}`).toBe('https://app.example.com/return/acme-3');
    expect(Object.fromEntries(location.searchParams)).toEqual({
      step: '2',
      status: 'approved',
      connectionId: 'acme-3',
      completion: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    await expect(broker.runtime.store.getConnection('acme-3')).resolves.toBeUndefined();
  });

  it('says so when the Wise user was connected under another id: the answer, the earlier status and an event', async () => {
    const user = (await broker.control('users', { email: 'twice@example.com' })) as { id: number };
    await routes.connectThroughCallback('acme-first', { userId: user.id });
    const eventsBefore = broker.aws.recordedEvents.length;
    const { response: approved } = await routes.connectThroughCallback('acme-second', {
      userId: user.id,
      returnUrl: 'https://app.example.com/return/',
    });
    const completionCode = new URL(approved.headers.location ?? '').searchParams.get('completion') ?? '';

    const completed = await invoke(routes.handlers.connectSessions, {
      method: 'POST',
      route: '/connections/{id}/completion',
      pathParameters: { id: 'acme-second' },
      caller: PARTNER_SESSION_ARN,
      body: { completionCode },
    });
    const status = await invoke(routes.handlers.connections, {
      method: 'GET',
      route: '/connections/{id}',
      pathParameters: { id: 'acme-first' },
      caller: ADMIN_ARN,
    });

    expect(completed.statusCode).toBe(200);
    expect(completed.json).toMatchObject({
      connectionId: 'acme-second',
      status: 'active',
      replacedConnectionId: 'acme-first',
    });
    expect(status.json).toMatchObject({
      connectionId: 'acme-first',
      status: 'needs_reauth',
      lastError: { code: 'replaced_by_connection', message: expect.stringContaining('"acme-second"') },
    });
    const published = broker.aws.recordedEvents
      .slice(eventsBefore)
      .map((event) => JSON.parse(event.detail ?? '{}'))
      .filter((detail) => detail.reason !== undefined);
    expect(published).toEqual([
      {
        connectionId: 'acme-first',
        reason: 'replaced_by_connection',
        replacedBy: 'acme-second',
        at: new Date(broker.clock.now()).toISOString(),
      },
    ]);
  });

  it('shows the replacement on the page when there is no return URL', async () => {
    const user = (await broker.control('users', { email: 'twice-paged@example.com' })) as { id: number };
    await routes.connectThroughCallback('acme-paged-1', { userId: user.id });

    const { response } = await routes.connectThroughCallback('acme-paged-2', { userId: user.id });

    expect(response.statusCode).toBe(200);
    expect(response.body).toContain('connected before as &quot;acme-paged-1&quot;');
  });

  it('replaces the tokens on a reconnect: the old refresh token is dead at Wise and the generation grew', async () => {
    await routes.connectThroughCallback('acme-again');
    const first = await broker.runtime.store.getConnection('acme-again');
    const old = await routes.plaintextTokens(first);
    broker.clock.advance(60_000);

    const { response } = await routes.connectThroughCallback('acme-again');

    expect(response.statusCode).toBe(200);
    const second = await broker.runtime.store.getConnection('acme-again');
    const fresh = await routes.plaintextTokens(second);
    expect(second?.generation).toBe((first?.generation ?? 0) + 1);
    expect(fresh.accessToken).not.toBe(old.accessToken);
    expect(fresh.refreshToken).not.toBe(old.refreshToken);
    await expect(broker.runtime.wise.refresh({ refreshToken: old.refreshToken ?? '' })).rejects.toThrow(
      WiseInvalidGrantError,
    );
  });
});
