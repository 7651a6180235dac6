import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOauthCallbackHandler } from '#functions/oauth-callback/handler.ts';
import { MetricName, metrics } from '#shared/observability.ts';
import type { TokenStore } from '#shared/ports/token-store.ts';
import type { WiseOAuth } from '#shared/ports/wise-oauth.ts';
import { browserCookieName } from '#shared/use-cases/start-authorization.ts';
import { WiseUnavailableError } from '#shared/wise/errors.ts';
import { type BrokerHarness, invoke, startBroker, TEST_CLIENT_SECRET } from '../../support/broker.ts';
import { connectRoutes } from './connect-support.ts';

let broker: BrokerHarness;
let routes: ReturnType<typeof connectRoutes>;

beforeAll(async () => {
  broker = await startBroker();
  routes = connectRoutes(broker);
});

afterAll(async () => {
  await broker?.close();
});

afterEach(() => {
  vi.restoreAllMocks();
});

const RETURN_URL = 'https://app.example.com/return/journey';

/** The page's outcome and the link back it offers, if any. */
function pageOf(body: string) {
  const status = /<main id="outcome" data-status="([a-z]+)">/.exec(body)?.[1];
  const link = /id="return-link"[^>]*href="([^"]+)"/.exec(body)?.[1]?.replaceAll('&amp;', '&');
  return { status, link };
}

describe('the OAuth callback refuses', () => {
  it('a state no session has, with a page that says so and no link', async () => {
    const state = 'x'.repeat(43);

    const response = await routes.callback(
      { state, code: 'some-code' },
      { cookies: [`${browserCookieName(state)}=${'b'.repeat(43)}`] },
    );

    expect(response.statusCode).toBe(400);
    expect(pageOf(response.body)).toEqual({ status: 'error', link: undefined });
    expect(response.body).toContain('or was never issued');
  });

  it('a state used twice: the second callback is refused and Wise sees one exchange', async () => {
    const { location, response: first } = await routes.connectThroughCallback('acme-twice');
    const grantsBefore = broker.simulator.stats().grants.authorization_code;

    const second = await routes.callback(routes.queryOf(location));

    expect(first.statusCode).toBe(200);
    expect(second.statusCode).toBe(400);
    expect(pageOf(second.body).status).toBe('error');
    expect(broker.simulator.stats().grants.authorization_code).toBe(grantsBefore);
  });

  it('an expired state, after the clock moved past ten minutes, with a link back that says error', async () => {
    const session = await routes.startSession('acme-late', { returnUrl: RETURN_URL });
    const location = await broker.authorize({ state: session.state });
    broker.clock.advance(10 * 60 * 1000 + 1);

    const response = await routes.callback(routes.queryOf(location));

    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('This connection link has expired');
    expect(pageOf(response.body)).toEqual({
      status: 'error',
      link: `${RETURN_URL}?status=error&connectionId=acme-late`,
    });
    expect(await broker.runtime.store.getConnection('acme-late')).toBeUndefined();
  });

  it("denied consent, with a link back that says denied and without Wise's description", async () => {
    const session = await routes.startSession('acme-denied', { returnUrl: RETURN_URL });
    const location = await broker.authorize({ state: session.state, decision: 'deny' });
    const description = location.searchParams.get('error_description') ?? '';

    const response = await routes.callback(routes.queryOf(location));

    expect(location.searchParams.get('error')).toBe('access_denied');
    expect(response.statusCode).toBe(400);
    expect(pageOf(response.body)).toEqual({
      status: 'denied',
      link: `${RETURN_URL}?status=denied&connectionId=acme-denied`,
    });
    expect(description).not.toBe('');
    expect(response.body).not.toContain(description);
    expect(await broker.runtime.store.getConnection('acme-denied')).toBeUndefined();
  });

  it('a code Wise already used, leaving the connection it made alone', async () => {
    const { location } = await routes.connectThroughCallback('acme-code');
    const usedCode = location.searchParams.get('code') ?? '';
    const stored = await broker.runtime.store.getConnection('acme-code');
    const session = await routes.startSession('acme-code');

    const response = await routes.callback({ state: session.state, code: usedCode });

    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('Wise did not accept this authorization');
    expect(response.body).not.toContain(usedCode);
    expect(await broker.runtime.store.getConnection('acme-code')).toEqual(stored);
  });

  it("a profile that is not the user's", async () => {
    const other = (await broker.control('users', { email: 'someone.else@example.com' })) as {
      profiles: Array<{ id: number }>;
    };
    const session = await routes.startSession('acme-profile');
    const location = await broker.authorize({ state: session.state });
    const query = { ...routes.queryOf(location), profileId: String(other.profiles[0]?.id) };

    const response = await routes.callback(query);

    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('does not belong to the Wise account that signed in');
    expect(await broker.runtime.store.getConnection('acme-profile')).toBeUndefined();
  });

  it('with 503 and Retry-After when Wise is unavailable, and says to try again', async () => {
    const session = await routes.startSession('acme-down', { returnUrl: RETURN_URL });
    const location = await broker.authorize({ state: session.state });
    // Every attempt the client makes (four) meets a 503 with a short Retry-After.
    await broker.control('faults', { status: 503, count: 4, retryAfter: 0 });

    const response = await routes.callback(routes.queryOf(location));

    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toMatch(/^\d+$/);
    expect(response.body).toContain('Wise is not available right now');
    expect(pageOf(response.body)).toEqual({
      status: 'error',
      link: `${RETURN_URL}?status=error&connectionId=acme-down`,
    });
    expect(await broker.runtime.store.getConnection('acme-down')).toBeUndefined();
  });

  it('a query that is not an answer from Wise, keeping the session usable', async () => {
    const session = await routes.startSession('acme-kept');
    const location = await broker.authorize({ state: session.state });

    const malformed = await routes.callback({ state: session.state });
    const real = await routes.callback(routes.queryOf(location));

    expect(malformed.statusCode).toBe(400);
    expect(malformed.body).toContain('This link is incomplete');
    expect(real.statusCode).toBe(200);
  });
});

describe('the OAuth callback when Wise refuses the broker or its lookups', () => {
  it('shows a 500-class page for invalid_client and counts it for the operator alarm', async () => {
    const addMetric = vi.spyOn(metrics, 'addMetric').mockImplementation(() => metrics);
    const session = await routes.startSession('acme-client', { returnUrl: RETURN_URL });
    const location = await broker.authorize({ state: session.state });
    await broker.control('client-secret', { clientSecret: 'rotated-elsewhere-0001' });
    try {
      const response = await routes.callback(routes.queryOf(location));

      expect(response.statusCode).toBe(500);
      expect(response.body).toContain('The operators have been told');
      expect(pageOf(response.body)).toEqual({
        status: 'error',
        link: `${RETURN_URL}?status=error&connectionId=acme-client`,
      });
      expect(addMetric).toHaveBeenCalledWith(MetricName.invalidClient, 'Count', 1);
      expect(await broker.runtime.store.getConnection('acme-client')).toBeUndefined();
    } finally {
      await broker.control('client-secret', { clientSecret: TEST_CLIENT_SECRET });
    }
  });

  it('keeps the good grant when /v1/me and /v2/profiles stay unavailable, without the unverified profile', async () => {
    const real = broker.runtime.wise;
    const unavailable = async () => {
      throw new WiseUnavailableError('Wise answered 503 to every attempt.', { status: 503 });
    };
    const wise = new Proxy(real, {
      get: (target, property) => {
        if (property === 'getCurrentUser' || property === 'listProfiles') return unavailable;
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) satisfies WiseOAuth;
    const handler = createOauthCallbackHandler(() => ({ ...broker.runtime, wise }));
    const user = await broker.defaultUser();
    const profileId = user.profiles[0]?.id ?? 0;
    const session = await routes.startSession('acme-lookups');
    const location = await broker.authorize({ state: session.state, profileId });

    const response = await invoke(handler, {
      method: 'GET',
      route: '/oauth/callback',
      query: routes.queryOf(location),
      cookies: [session.cookie],
    });

    expect(response.statusCode).toBe(200);
    expect(pageOf(response.body).status).toBe('connected');
    const stored = await broker.runtime.store.getConnection('acme-lookups');
    expect(stored).toMatchObject({ status: 'active' });
    expect(stored).not.toHaveProperty('userId');
    expect(stored).not.toHaveProperty('profileId');
    const tokens = await routes.plaintextTokens(stored);
    await expect(real.getCurrentUser(tokens.accessToken ?? '')).resolves.toMatchObject({ id: user.id });
  });
});

describe('the OAuth callback pages', () => {
  it('never show a token, a code or a state, and carry the security headers', async () => {
    const { session, location, response } = await routes.connectThroughCallback('acme-page');
    const tokens = await routes.plaintextTokens(await broker.runtime.store.getConnection('acme-page'));

    for (const secret of [
      session.state,
      location.searchParams.get('code'),
      tokens.accessToken,
      tokens.refreshToken,
    ]) {
      expect(response.body).not.toContain(secret);
    }
    expect(response.headers['content-security-policy']).toContain("default-src 'none'");
    expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.body).not.toMatch(/<script/i);
  });

  it('show a 500 page that says nothing of the cause when the broker itself fails', async () => {
    const store: TokenStore = Object.create(broker.runtime.store);
    store.consumeConnectSession = async () => {
      throw new Error('table unavailable at dynamodb.internal:8000');
    };
    const handler = createOauthCallbackHandler(() => ({ ...broker.runtime, store }));

    const response = await invoke(handler, {
      method: 'GET',
      route: '/oauth/callback',
      query: { state: 'z'.repeat(43), code: 'some-code' },
      cookies: [`${browserCookieName('z'.repeat(43))}=${'b'.repeat(43)}`],
    });

    expect(response.statusCode).toBe(500);
    expect(pageOf(response.body).status).toBe('error');
    expect(response.body).toContain('Please try again in a few minutes');
    expect(response.body).not.toContain('dynamodb');
  });

  it("speak the language the browser prefers among the brand's, in the brand's name", async () => {
    const brand = { name: 'Acme Payments', languages: ['en', 'de'] as ('en' | 'de')[] };
    const handler = createOauthCallbackHandler(() => ({
      ...broker.runtime,
      config: { ...broker.runtime.config, brand },
    }));
    const unknownStart = (acceptLanguage: string) =>
      invoke(handler, {
        method: 'GET',
        route: '/oauth/start',
        query: { state: 'q'.repeat(43) },
        headers: { 'accept-language': acceptLanguage },
      });

    const german = await unknownStart('de-AT,de;q=0.9,en;q=0.5');
    const english = await unknownStart('fr-FR,en;q=0.5');

    expect(german.statusCode).toBe(400);
    expect(german.body).toContain('<html lang="de">');
    expect(german.body).toContain('Dieser Verbindungslink ist ungültig');
    expect(german.body).toContain('Kehren Sie zu Acme Payments zurück');
    expect(english.body).toContain('<html lang="en">');
    expect(english.body).toContain('Go back to Acme Payments');
  });

  it('are unbranded and English when the runtime cannot be built, and still say what to do', async () => {
    const handler = createOauthCallbackHandler(() => {
      throw new Error('BROKER_CONFIG is not valid');
    });

    const response = await invoke(handler, {
      method: 'GET',
      route: '/oauth/start',
      query: { state: 'r'.repeat(43) },
      headers: { 'accept-language': 'de' },
    });

    expect(response.statusCode).toBe(500);
    expect(response.body).toContain('<html lang="en">');
    expect(response.body).toContain('Please try again in a few minutes');
    expect(response.body).not.toContain('BROKER_CONFIG');
  });
});
