import { createConnectSessionsHandler } from '#functions/connect-sessions/handler.ts';
import { createConnectionsHandler } from '#functions/connections/handler.ts';
import { createOauthCallbackHandler } from '#functions/oauth-callback/handler.ts';
import { createRegistrationHandler } from '#functions/registration/handler.ts';
import type { ConnectionRecord } from '#shared/domain/records.ts';
import { type BrokerHarness, invoke, PARTNER_SESSION_ARN, type TestResponse } from '../../support/broker.ts';
import { openStored } from '../../support/fake-envelope.ts';

/** The connect, callback, registration and admin handlers of a harness, and the steps tests repeat. */
export function connectRoutes(broker: BrokerHarness) {
  const runtime = () => broker.runtime;
  const handlers = {
    connectSessions: createConnectSessionsHandler(runtime),
    callback: createOauthCallbackHandler(runtime),
    registration: createRegistrationHandler(runtime),
    connections: createConnectionsHandler(runtime),
  };

  /** The browser's cookies: what the start URL set, sent with every callback unless a test says otherwise. */
  const cookieJar = new Map<string, string>();
  const keepCookies = (setCookies: readonly string[]) => {
    for (const setCookie of setCookies) {
      const [pair = '', ...attributes] = setCookie.split(';');
      const [name = '', value = ''] = pair.split('=');
      if (value === '' || attributes.some((attribute) => attribute.trim() === 'Max-Age=0')) {
        cookieJar.delete(name);
      } else {
        cookieJar.set(name, value);
      }
    }
  };

  /** Opens a start URL in the browser: keeps its cookie and answers where it redirected. */
  const openStartUrl = async (startUrl: string): Promise<TestResponse> => {
    const response = await invoke(handlers.callback, {
      method: 'GET',
      route: '/oauth/start',
      query: Object.fromEntries(new URL(startUrl).searchParams),
    });
    keepCookies(response.cookies);
    return response;
  };

  /**
   * A connect session created by the partner's service and opened by the browser at its start URL:
   * `authorizeUrl` is Wise's page the start URL redirected to, `cookie` the binding it set.
   */
  const startSession = async (
    connectionId: string,
    options: { returnUrl?: string; caller?: string } = {},
  ): Promise<{
    state: string;
    startUrl: string;
    authorizeUrl: string;
    cookie: string;
    expiresAt: string;
  }> => {
    const response = await invoke(handlers.connectSessions, {
      method: 'POST',
      route: '/connect-sessions',
      caller: options.caller ?? PARTNER_SESSION_ARN,
      body: { connectionId, ...(options.returnUrl ? { returnUrl: options.returnUrl } : {}) },
    });
    if (response.statusCode !== 201) throw new Error(`POST /connect-sessions answered ${response.body}`);
    const { startUrl, expiresAt } = response.json as { startUrl: string; expiresAt: string };
    const state = new URL(startUrl).searchParams.get('state') ?? '';
    const start = await openStartUrl(startUrl);
    if (start.statusCode !== 303) throw new Error(`GET /oauth/start answered ${start.statusCode}`);
    return {
      state,
      startUrl,
      expiresAt,
      authorizeUrl: start.headers.location ?? '',
      cookie: start.cookies[0]?.split(';')[0] ?? '',
    };
  };

  /**
   * The callback with the query Wise put on the redirect, from the browser holding the jar's cookies, or
   * with exactly `cookies` (`[]`: a browser without any).
   */
  const callback = async (
    query: Record<string, string>,
    options: { cookies?: string[] } = {},
  ): Promise<TestResponse> => {
    const cookies = options.cookies ?? [...cookieJar].map(([name, value]) => `${name}=${value}`);
    const response = await invoke(handlers.callback, {
      method: 'GET',
      route: '/oauth/callback',
      query,
      ...(cookies.length > 0 ? { cookies } : {}),
    });
    if (options.cookies === undefined) keepCookies(response.cookies);
    return response;
  };

  const queryOf = (location: URL): Record<string, string> => Object.fromEntries(location.searchParams);

  /** A session, the user's approval at the simulator and the callback: the whole browser journey. */
  const connectThroughCallback = async (
    connectionId: string,
    options: { returnUrl?: string; profileId?: number; userId?: number } = {},
  ) => {
    const session = await startSession(
      connectionId,
      options.returnUrl ? { returnUrl: options.returnUrl } : {},
    );
    const location = await broker.authorize({
      authorizeUrl: session.authorizeUrl,
      ...(options.profileId === undefined ? {} : { profileId: options.profileId }),
      ...(options.userId === undefined ? {} : { userId: options.userId }),
    });
    const response = await callback(queryOf(location));
    return { session, location, response };
  };

  /** The plaintext tokens of a stored connection, through the broker's own cipher. */
  const plaintextTokens = async (connection: ConnectionRecord | undefined) => {
    if (!connection) throw new Error('No connection is stored.');
    const record = { kind: 'connection' as const, connectionId: connection.connectionId };
    const { cipher } = broker.runtime;
    return {
      accessToken: await openStored(cipher, record, connection, 'access_token'),
      refreshToken: await openStored(cipher, record, connection, 'refresh_token'),
      registrationCode: await openStored(cipher, record, connection, 'registration_code'),
    };
  };

  return {
    handlers,
    startSession,
    openStartUrl,
    callback,
    queryOf,
    connectThroughCallback,
    plaintextTokens,
    cookieJar,
  };
}

/** Every way a secret could sit in a table item: as text, or inside binary as UTF-8 or base64. */
export function itemText(items: readonly Record<string, unknown>[]): string {
  return JSON.stringify(items, (_key, value) =>
    value instanceof Uint8Array
      ? `${Buffer.from(value).toString('utf8')} ${Buffer.from(value).toString('base64')}`
      : value,
  );
}
