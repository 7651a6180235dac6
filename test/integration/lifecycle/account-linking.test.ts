import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOauthCallbackHandler } from '#functions/oauth-callback/handler.ts';
import { hashSecret } from '#shared/domain/secret-hash.ts';
import type { TokenStore } from '#shared/ports/token-store.ts';
import { COMPLETION_TTL_MS } from '#shared/use-cases/complete-authorization.ts';
import { browserCookieName } from '#shared/use-cases/start-authorization.ts';
import {
  type BrokerHarness,
  invoke,
  PARTNER_SESSION_ARN,
  startBroker,
  type TestResponse,
} from '../../support/broker.ts';
import { connectRoutes, itemText } from './connect-support.ts';

const RETURN_URL = 'https://app.example.com/return/';

/** A Wise user of the simulator, besides its default one. */
async function addWiseUser(broker: BrokerHarness, email: string): Promise<number> {
  const user = (await broker.control('users', { email })) as { id: number };
  return user.id;
}

function completionOf(response: TestResponse): string {
  expect(response.statusCode).toBe(303);
  const location = new URL(response.headers.location ?? '');
  expect(location.searchParams.get('status')).toBe('approved');
  return location.searchParams.get('completion') ?? '';
}

/** Everything a harness needs to play an attacker, a victim and the partner's service. */
function accountLinking(broker: BrokerHarness) {
  const routes = connectRoutes(broker);

  /** `POST /connect-sessions` by the partner's service, the start URL not yet opened by any browser. */
  const createSession = async (connectionId: string): Promise<string> => {
    const response = await invoke(routes.handlers.connectSessions, {
      method: 'POST',
      route: '/connect-sessions',
      caller: PARTNER_SESSION_ARN,
      body: { connectionId, returnUrl: RETURN_URL },
    });
    expect(response.statusCode).toBe(201);
    return (response.json as { startUrl: string }).startUrl;
  };

  /** A browser opens a start URL: its own cookie (`name=value`) and where it was sent. */
  const openInBrowser = async (startUrl: string) => {
    const response = await routes.openStartUrl(startUrl);
    expect(response.statusCode).toBe(303);
    return {
      cookie: response.cookies[0]?.split(';')[0] ?? '',
      authorizeUrl: response.headers.location ?? '',
      state: new URL(startUrl).searchParams.get('state') ?? '',
    };
  };

  /** The partner's service exchanges a completion code for the connection of its signed-in user. */
  const exchange = (connectionId: string, completionCode: string) =>
    invoke(routes.handlers.connectSessions, {
      method: 'POST',
      route: '/connections/{id}/completion',
      pathParameters: { id: connectionId },
      caller: PARTNER_SESSION_ARN,
      body: { completionCode },
    });

  return { routes, createSession, openInBrowser, exchange };
}

describe('account linking without PKCE (Wise as documented)', () => {
  let broker: BrokerHarness;
  let linking: ReturnType<typeof accountLinking>;
  let victimWiseUser: number;
  let attackerWiseUser: number;

  beforeAll(async () => {
    broker = await startBroker({ config: { connectWithoutConfirmation: false } });
    linking = accountLinking(broker);
    victimWiseUser = (await broker.defaultUser()).id;
    attackerWiseUser = await addWiseUser(broker, 'attacker@example.com');
  });

  afterAll(async () => {
    await broker?.close();
  });

  it("refuses Wise's link an attacker forwards: the victim's browser has no cookie, and no connection is made", async () => {
    const attacker = await linking.openInBrowser(await linking.createSession('acme-att-1'));
    const location = await broker.authorize({ authorizeUrl: attacker.authorizeUrl, userId: victimWiseUser });

    const response = await linking.routes.callback(linking.routes.queryOf(location), { cookies: [] });

    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('Finish connecting in the browser where you started');
    await expect(broker.runtime.store.getConnection('acme-att-1')).resolves.toBeUndefined();
    expect((await broker.scanTable()).filter((item) => String(item.pk).startsWith('COMPLETION#'))).toEqual(
      [],
    );
  });

  it("ends a start URL an attacker forwards with a completion the victim's partner session cannot use", async () => {
    const startUrl = await linking.createSession('acme-att-2');
    const victim = await linking.openInBrowser(startUrl);
    const location = await broker.authorize({ authorizeUrl: victim.authorizeUrl, userId: victimWiseUser });
    const completion = completionOf(
      await linking.routes.callback(linking.routes.queryOf(location), { cookies: [victim.cookie] }),
    );

    // The victim lands in the partner's app signed in as themselves: it confirms their own connection.
    const asVictim = await linking.exchange('acme-vic-2', completion);
    const asAttacker = await linking.exchange('acme-att-2', completion);

    expect(asVictim.statusCode).toBe(400);
    expect(asVictim.json).toMatchObject({ error: 'invalid_request' });
    expect(asAttacker.statusCode).toBe(400);
    await expect(broker.runtime.store.getConnection('acme-att-2')).resolves.toBeUndefined();
    await expect(broker.runtime.store.getConnection('acme-vic-2')).resolves.toBeUndefined();
  });

  it("refuses an attacker's own code delivered with the victim's state, with no cookie or a forged one; the victim still connects their own account", async () => {
    const victim = await linking.openInBrowser(await linking.createSession('acme-vic-3'));
    const attackerLocation = await broker.authorize({ state: victim.state, userId: attackerWiseUser });
    const forged = linking.routes.queryOf(attackerLocation);

    const withoutCookie = await linking.routes.callback(forged, { cookies: [] });
    const withForgedCookie = await linking.routes.callback(forged, {
      cookies: [`${browserCookieName(victim.state)}=${hashSecret('browser', victim.state)}`],
    });

    expect(withoutCookie.statusCode).toBe(400);
    expect(withForgedCookie.statusCode).toBe(400);
    expect(withForgedCookie.body).toContain('or was never issued');
    await expect(broker.runtime.store.getConnection('acme-vic-3')).resolves.toBeUndefined();
    const victimLocation = await broker.authorize({
      authorizeUrl: victim.authorizeUrl,
      userId: victimWiseUser,
    });
    const completion = completionOf(
      await linking.routes.callback(linking.routes.queryOf(victimLocation), { cookies: [victim.cookie] }),
    );
    const confirmed = await linking.exchange('acme-vic-3', completion);
    expect(confirmed.statusCode).toBe(200);
    await expect(broker.runtime.store.getConnection('acme-vic-3')).resolves.toMatchObject({
      status: 'active',
      userId: victimWiseUser,
    });
  });

  it('opens a start URL once: a second browser gets a refusal page and no cookie', async () => {
    const startUrl = await linking.createSession('acme-once');
    await linking.openInBrowser(startUrl);

    const second = await linking.routes.openStartUrl(startUrl);

    expect(second.statusCode).toBe(400);
    expect(second.cookies).toEqual([]);
  });

  it('answers a start it cannot make with a 500 page that says nothing of the cause, and sets no cookie', async () => {
    const startUrl = await linking.createSession('acme-start-fails');
    const store: TokenStore = Object.create(broker.runtime.store);
    store.startConnectSession = async () => {
      throw new Error('table unavailable at dynamodb.internal:8000');
    };
    const handler = createOauthCallbackHandler(() => ({ ...broker.runtime, store }));

    const response = await invoke(handler, {
      method: 'GET',
      route: '/oauth/start',
      query: Object.fromEntries(new URL(startUrl).searchParams),
    });

    expect(response.statusCode).toBe(500);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.body).not.toContain('dynamodb');
    expect(response.cookies).toEqual([]);
  });

  it('sets a __Host- cookie that is Secure, HttpOnly, SameSite=Lax on / and refuses framing of the start', async () => {
    const response = await linking.routes.openStartUrl(await linking.createSession('acme-cookie'));

    expect(response.cookies).toHaveLength(1);
    const [pair, ...attributes] = (response.cookies[0] ?? '').split('; ');
    expect(pair).toMatch(/^__Host-wise-connect-[A-Za-z0-9_-]{16}=[A-Za-z0-9_-]{43}$/);
    expect(attributes).toEqual(['Max-Age=600', 'Path=/', 'Secure', 'HttpOnly', 'SameSite=Lax']);
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  });

  it('leaves no connection while the completion code is not exchanged, and refuses it once expired', async () => {
    const { response } = await linking.routes.connectThroughCallback('acme-late', { returnUrl: RETURN_URL });
    const completion = completionOf(response);

    await expect(broker.runtime.store.getConnection('acme-late')).resolves.toBeUndefined();
    broker.clock.advance(COMPLETION_TTL_MS);
    const late = await linking.exchange('acme-late', completion);

    expect(late.statusCode).toBe(400);
    expect(late.json).toMatchObject({ error: 'invalid_request' });
    expect((late.json as { message: string }).message).toContain('Field "completionCode"');
    await expect(broker.runtime.store.getConnection('acme-late')).resolves.toBeUndefined();
  });

  it('confirms a connection with its completion code exactly once', async () => {
    const { response } = await linking.routes.connectThroughCallback('acme-ok', { returnUrl: RETURN_URL });
    const completion = completionOf(response);

    const first = await linking.exchange('acme-ok', completion);
    const second = await linking.exchange('acme-ok', completion);

    expect(first.statusCode).toBe(200);
    expect(first.json).toMatchObject({
      connectionId: 'acme-ok',
      status: 'active',
      grant: 'authorization_code',
    });
    expect(second.statusCode).toBe(400);
    await expect(broker.runtime.store.getConnection('acme-ok')).resolves.toMatchObject({ generation: 1 });
  });

  it('publishes Connection Connected when the completion code is exchanged, not when Wise approves', async () => {
    const connectedEvents = () =>
      broker.aws.recordedEvents.filter(
        (event) =>
          event.detailType === 'Connection Connected' &&
          JSON.parse(event.detail ?? '{}').connectionId === 'acme-event',
      );
    const { response } = await linking.routes.connectThroughCallback('acme-event', { returnUrl: RETURN_URL });
    const approved = connectedEvents().length;

    const exchanged = await linking.exchange('acme-event', completionOf(response));

    expect(exchanged.statusCode).toBe(200);
    expect(approved).toBe(0);
    expect(connectedEvents().map((event) => JSON.parse(event.detail ?? '{}'))).toEqual([
      expect.objectContaining({ connectionId: 'acme-event', imported: false, previousStatus: null }),
    ]);
  });

  it('keeps no state, browser secret or completion code in the table, only their hashes', async () => {
    const startUrl = await linking.createSession('acme-hashes');
    const browser = await linking.openInBrowser(startUrl);
    const pendingTable = await broker.scanTable();
    const location = await broker.authorize({ authorizeUrl: browser.authorizeUrl });
    const completion = completionOf(
      await linking.routes.callback(linking.routes.queryOf(location), { cookies: [browser.cookie] }),
    );
    const approvedTable = await broker.scanTable();
    const browserSecret = browser.cookie.split('=')[1] ?? '';

    expect(pendingTable.map((item) => item.pk)).toContain(`SESSION#${hashSecret('state', browser.state)}`);
    expect(approvedTable.map((item) => item.pk)).toContain(
      `COMPLETION#${hashSecret('completion', completion)}`,
    );
    for (const table of [itemText(pendingTable), itemText(approvedTable)]) {
      for (const secret of [browser.state, browserSecret, completion]) expect(table).not.toContain(secret);
    }
  });
});

describe('account linking with PKCE (wise.pkce, honoured by the simulator)', () => {
  let broker: BrokerHarness;
  let linking: ReturnType<typeof accountLinking>;
  let attackerWiseUser: number;

  beforeAll(async () => {
    broker = await startBroker({ config: { connectWithoutConfirmation: false }, simulator: { pkce: true } });
    linking = accountLinking(broker);
    attackerWiseUser = await addWiseUser(broker, 'attacker@example.com');
  });

  afterAll(async () => {
    await broker?.close();
  });

  it("sends Wise an S256 challenge, and connects the victim's own approval", async () => {
    const { session, response } = await linking.routes.connectThroughCallback('acme-pkce', {
      returnUrl: RETURN_URL,
    });

    const query = new URL(session.authorizeUrl).searchParams;
    expect(query.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(query.get('code_challenge_method')).toBe('S256');
    await expect(linking.exchange('acme-pkce', completionOf(response))).resolves.toMatchObject({
      statusCode: 200,
    });
  });

  it.each([
    ['from his own start URL', true],
    ['from an authorize URL without a challenge', false],
  ])(
    "refuses an attacker's code (%s) injected into the victim's own browser: Wise rejects the verifier",
    async (_case, throughBroker) => {
      const victim = await linking.openInBrowser(await linking.createSession(`acme-vic-${throughBroker}`));
      const attackerCode = throughBroker
        ? await broker.authorize({
            authorizeUrl: (await linking.openInBrowser(await linking.createSession('acme-att-pkce')))
              .authorizeUrl,
            userId: attackerWiseUser,
          })
        : await broker.authorize({ state: 'attacker-state-0000000000', userId: attackerWiseUser });
      const injected = { ...linking.routes.queryOf(attackerCode), state: victim.state };

      const response = await linking.routes.callback(injected, { cookies: [victim.cookie] });

      expect(response.statusCode).toBe(400);
      expect(response.body).toContain('Wise did not accept this authorization');
      await expect(broker.runtime.store.getConnection(`acme-vic-${throughBroker}`)).resolves.toBeUndefined();
      expect((await broker.scanTable()).filter((item) => String(item.pk).startsWith('COMPLETION#'))).toEqual(
        [],
      );
    },
  );
});
