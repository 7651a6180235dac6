import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WiseCredentials, WiseCredentialsProvider } from '#shared/ports/wise-oauth.ts';
import {
  WiseError,
  WiseInvalidClientError,
  WiseInvalidGrantError,
  WiseInvalidRequestError,
  WiseInvalidTokenError,
  WiseRateLimitedError,
  WiseUnavailableError,
} from '#shared/wise/errors.ts';
import { WiseOAuthClient, type WiseOAuthClientOptions } from '#shared/wise/wise-oauth-client.ts';
import { type ScriptedServer, startScriptedServer } from './scripted-server.ts';

const START = Date.parse('2026-11-26T10:00:00.000Z');
const SECRET = 'current-client-secret-0001';
const NEW_SECRET = 'rotated-client-secret-0002';
const PREVIOUS_SECRET = 'previous-client-secret-0003';
const CODE = 'code-4f1d2c7a9e0b';
const REFRESH = 'refresh-8c0e5d2b7a13';
const REGISTRATION = 'registration-code-0123456789abcdef0123456789';
const ACCESS = 'd2a9f0c4-71b3-4e5a-9c08-3f6b2e1d7a50';
const TOKEN_BODY = { access_token: ACCESS, token_type: 'bearer', expires_in: 43199, scope: 'transfers' };

let server: ScriptedServer;
const clients: WiseOAuthClient[] = [];

beforeAll(async () => {
  server = await startScriptedServer();
});

afterEach(async () => {
  server.reset();
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

afterAll(async () => {
  await server.close();
});

/** A credentials provider that serves `cached` until asked for fresh ones, then `fresh`. */
function provider(cached: WiseCredentials, fresh: WiseCredentials = cached) {
  const calls: Array<{ forceFresh?: boolean } | undefined> = [];
  const credentials: WiseCredentialsProvider = {
    get: async (options) => {
      calls.push(options);
      return options?.forceFresh ? fresh : cached;
    },
  };
  return { credentials, calls };
}

/** A client with a fake clock: sleeping advances it, and every sleep is recorded. */
function makeClient(overrides: Partial<WiseOAuthClientOptions> = {}) {
  let now = START;
  const sleeps: number[] = [];
  const logs: Array<{ level: string; message: string; attrs: Record<string, unknown> | undefined }> = [];
  const log = (level: string) => (message: string, attrs?: Record<string, unknown>) => {
    logs.push({ level, message, attrs });
  };
  const client = new WiseOAuthClient({
    apiUrl: server.url,
    authorizeUrl: 'https://wise.example/oauth/authorize/',
    redirectUri: 'https://broker.example/oauth/callback?tenant=a&x=%2F',
    credentials: provider({ clientId: 'partner-id', clientSecret: SECRET }).credentials,
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
    random: () => 0.5,
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
    ...overrides,
  });
  clients.push(client);
  return { client, sleeps, logs, advance: (ms: number) => (now += ms) };
}

function form(index = 0): URLSearchParams {
  return new URLSearchParams(server.requests[index]?.body ?? '');
}

function basicSecret(index: number): string {
  const header = String(server.requests[index]?.headers.authorization ?? '');
  return (
    Buffer.from(header.replace(/^Basic /, ''), 'base64')
      .toString('utf8')
      .split(':')[1] ?? ''
  );
}

async function failure(promise: Promise<unknown>): Promise<WiseError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof WiseError)) throw new Error(`expected a WiseError, got ${String(error)}`);
  return error;
}

describe('WiseOAuthClient token requests', () => {
  it('posts a form with Basic auth, JSON accept and a UUID correlation id', async () => {
    const { client } = makeClient();
    server.reply({ status: 200, body: TOKEN_BODY });

    await client.clientCredentials();

    const [request] = server.requests;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/oauth/token');
    expect(request?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(request?.headers.accept).toBe('application/json');
    expect(request?.headers.authorization).toBe(
      `Basic ${Buffer.from(`partner-id:${SECRET}`).toString('base64')}`,
    );
    expect(request?.headers['x-external-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(Object.fromEntries(form())).toEqual({ grant_type: 'client_credentials' });
  });

  it('puts the version prefix before /oauth/token', async () => {
    const { client } = makeClient({ versionPrefix: '2026Q3/' });
    server.reply({ status: 200, body: TOKEN_BODY });

    await client.clientCredentials();

    expect(server.requests[0]?.url).toBe('/2026Q3/oauth/token');
  });

  it('sends the given correlation id and keeps the trace id on the grant', async () => {
    const { client } = makeClient();
    server.reply({ status: 200, body: TOKEN_BODY, headers: { 'x-trace-id': 'trace-abc' } });

    const grant = await client.clientCredentials({ correlationId: 'c0ffee00-0000-4000-8000-000000000001' });

    expect(server.requests[0]?.headers['x-external-correlation-id']).toBe(
      'c0ffee00-0000-4000-8000-000000000001',
    );
    expect(grant).toEqual({
      accessToken: ACCESS,
      tokenType: 'bearer',
      expiresAt: START + 43199 * 1000,
      scope: 'transfers',
      traceId: 'trace-abc',
    });
  });

  it('replaces a correlation id longer than 36 characters with a UUID', async () => {
    const { client } = makeClient();
    server.reply({ status: 200, body: TOKEN_BODY });

    await client.clientCredentials({ correlationId: 'x'.repeat(37) });

    expect(server.requests[0]?.headers['x-external-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('exchanges a code with the client id and the redirect URI exactly as configured', async () => {
    const { client } = makeClient();
    server.reply({ status: 200, body: { ...TOKEN_BODY, refresh_token: REFRESH } });

    const grant = await client.exchangeCode({ code: CODE });

    expect(Object.fromEntries(form())).toEqual({
      grant_type: 'authorization_code',
      client_id: 'partner-id',
      code: CODE,
      redirect_uri: 'https://broker.example/oauth/callback?tenant=a&x=%2F',
    });
    expect(grant.refreshToken).toBe(REFRESH);
  });

  it('refreshes with the refresh token and leaves the refresh token out when none comes back', async () => {
    const { client } = makeClient();
    server.reply({ status: 200, body: TOKEN_BODY });

    const grant = await client.refresh({ refreshToken: REFRESH });

    expect(Object.fromEntries(form())).toEqual({ grant_type: 'refresh_token', refresh_token: REFRESH });
    expect(grant).not.toHaveProperty('refreshToken');
  });

  it('grants with a registration code', async () => {
    const { client } = makeClient();
    server.reply({ status: 200, body: { ...TOKEN_BODY, refresh_token: REFRESH } });

    await client.registrationCodeGrant({ email: 'new@example.com', registrationCode: REGISTRATION });

    expect(Object.fromEntries(form())).toEqual({
      grant_type: 'registration_code',
      client_id: 'partner-id',
      email: 'new@example.com',
      registration_code: REGISTRATION,
    });
  });

  it('does not follow a redirect, which would carry the credentials elsewhere', async () => {
    const { client } = makeClient();
    server.reply({ status: 307, headers: { location: `${server.url}/elsewhere` } });

    const error = await failure(client.refresh({ refreshToken: REFRESH }));

    expect(error).toBeInstanceOf(WiseInvalidRequestError);
    expect(server.requests).toHaveLength(1);
  });
});

describe('WiseOAuthClient.authorizationUrl', () => {
  it('builds the authorize URL with client id, redirect URI and state', async () => {
    const { client } = makeClient();

    const url = new URL(await client.authorizationUrl({ state: 'state-123' }));

    expect(`${url.origin}${url.pathname}`).toBe('https://wise.example/oauth/authorize/');
    expect(url.searchParams.get('client_id')).toBe('partner-id');
    expect(url.searchParams.get('redirect_uri')).toBe('https://broker.example/oauth/callback?tenant=a&x=%2F');
    expect(url.searchParams.get('state')).toBe('state-123');
  });

  it('takes a configured client id without reading the credentials', async () => {
    const unreadable: WiseCredentialsProvider = {
      get: async () => {
        throw new Error('the secret must not be read');
      },
    };
    const { client } = makeClient({ clientId: 'configured-id', credentials: unreadable });

    const url = new URL(await client.authorizationUrl({ state: 'state-123' }));

    expect(url.searchParams.get('client_id')).toBe('configured-id');
  });

  it("logs an error when the configured client id is not the secret's", async () => {
    const { client, logs } = makeClient({ clientId: 'configured-id' });
    server.reply({ status: 200, body: TOKEN_BODY });

    await client.clientCredentials();

    expect(logs).toContainEqual(
      expect.objectContaining({ level: 'error', message: expect.stringContaining('wise.clientId') }),
    );
  });
});

describe('WiseOAuthClient retries', () => {
  it('retries a 503 and returns the grant that follows', async () => {
    const { client, sleeps } = makeClient();
    server.reply({ status: 503 }, { status: 200, body: TOKEN_BODY });

    const grant = await client.clientCredentials();

    expect(grant.accessToken).toBe(ACCESS);
    expect(server.requests).toHaveLength(2);
    // Equal jitter on a 250 ms base: 125 ms plus half of the random 125 ms.
    expect(sleeps).toEqual([187]);
  });

  it('backs off exponentially with jitter', async () => {
    const { client, sleeps } = makeClient({ random: () => 0 });
    server.reply({ status: 500 }, { status: 502 }, { status: 504 }, { status: 200, body: TOKEN_BODY });

    await client.clientCredentials();

    expect(sleeps).toEqual([125, 250, 500]);
  });

  it('waits at least as long as Retry-After on a 429', async () => {
    const { client, sleeps } = makeClient({ random: () => 0.999 });
    server.reply({ status: 429, headers: { 'retry-after': '3' } }, { status: 200, body: TOKEN_BODY });

    await client.clientCredentials();

    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThanOrEqual(3000);
    expect(sleeps[0]).toBeLessThan(3250);
  });

  it('gives up without sleeping when Retry-After reaches past the deadline', async () => {
    const { client, sleeps } = makeClient({ totalDeadlineMs: 5000 });
    server.reply({ status: 429, headers: { 'retry-after': '30' } });

    const error = await failure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseRateLimitedError);
    expect((error as WiseRateLimitedError).retryAfterSeconds).toBe(30);
    expect(sleeps).toEqual([]);
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry a 429 when the caller asks so, and throws it at once', async () => {
    const { client, sleeps } = makeClient();
    server.reply({ status: 429, headers: { 'retry-after': '2' } }, { status: 200, body: TOKEN_BODY });

    const error = await failure(client.refresh({ refreshToken: REFRESH }, { retryRateLimited: false }));

    expect(error).toBeInstanceOf(WiseRateLimitedError);
    expect((error as WiseRateLimitedError).retryAfterSeconds).toBe(2);
    expect(server.requests).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('still retries a 503 when only 429s are not to be retried', async () => {
    const { client } = makeClient();
    server.reply({ status: 503 }, { status: 200, body: TOKEN_BODY });

    const grant = await client.refresh({ refreshToken: REFRESH }, { retryRateLimited: false });

    expect(grant.accessToken).toBe(ACCESS);
    expect(server.requests).toHaveLength(2);
  });

  it('tells onRateLimited of each 429 as it arrives, before the retry that succeeds', async () => {
    const heard: Array<{ retryAfterSeconds?: number; requestsSoFar: number }> = [];
    const { client } = makeClient();
    server.reply(
      { status: 429, headers: { 'retry-after': '1' } },
      { status: 429 },
      { status: 200, body: TOKEN_BODY },
    );

    const grant = await client.clientCredentials({
      onRateLimited: (answer) => heard.push({ ...answer, requestsSoFar: server.requests.length }),
    });

    expect(grant.accessToken).toBe(ACCESS);
    expect(heard).toEqual([{ retryAfterSeconds: 1, requestsSoFar: 1 }, { requestsSoFar: 2 }]);
  });

  it('goes on with the call when onRateLimited throws', async () => {
    const { client, logs } = makeClient();
    server.reply({ status: 429, headers: { 'retry-after': '1' } }, { status: 200, body: TOKEN_BODY });

    const grant = await client.clientCredentials({
      onRateLimited: () => {
        throw new Error('listener broke');
      },
    });

    expect(grant.accessToken).toBe(ACCESS);
    expect(logs.some((log) => log.message.includes('onRateLimited'))).toBe(true);
  });

  it('does not call onRateLimited for failures other than 429', async () => {
    let heard = 0;
    const { client } = makeClient();
    server.reply({ status: 503 }, { status: 200, body: TOKEN_BODY });

    await client.clientCredentials({ onRateLimited: () => (heard += 1) });

    expect(heard).toBe(0);
  });

  it("honours the caller's deadline when it is earlier than the client's own", async () => {
    const { client, sleeps } = makeClient({ totalDeadlineMs: 60_000 });
    server.reply({ status: 503, headers: { 'retry-after': '2' } });

    const error = await failure(client.clientCredentials({ deadlineMs: START + 1000 }));

    expect(error).toBeInstanceOf(WiseUnavailableError);
    expect((error as WiseUnavailableError).retryAfterSeconds).toBe(2);
    expect(sleeps).toEqual([]);
  });

  it('does not call Wise when the deadline has already passed', async () => {
    const { client } = makeClient();

    const error = await failure(client.clientCredentials({ deadlineMs: START - 1 }));

    expect(error).toBeInstanceOf(WiseUnavailableError);
    expect(server.requests).toHaveLength(0);
  });

  it('never sleeps past the deadline across several retries', async () => {
    const { client, sleeps } = makeClient({ totalDeadlineMs: 700, maxAttempts: 10, random: () => 0.999 });
    server.reply({ status: 503 }, { status: 503 }, { status: 503 }, { status: 503 });

    const error = await failure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseUnavailableError);
    expect(sleeps.reduce((total, ms) => total + ms, 0)).toBeLessThan(700);
    expect(server.requests).toHaveLength(sleeps.length + 1);
  });

  it('stops after maxAttempts and throws the last failure', async () => {
    const { client } = makeClient({ maxAttempts: 3 });
    server.reply({ status: 500 }, { status: 502 }, { status: 503, headers: { 'x-trace-id': 'last' } });

    const error = await failure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseUnavailableError);
    expect(error.status).toBe(503);
    expect(error.traceId).toBe('last');
    expect(server.requests).toHaveLength(3);
  });

  it('retries a dropped connection', async () => {
    const { client } = makeClient();
    server.reply({ drop: true }, { status: 200, body: TOKEN_BODY });

    const grant = await client.clientCredentials();

    expect(grant.accessToken).toBe(ACCESS);
    expect(server.requests).toHaveLength(2);
  });

  it('retries an answer cut off before the end of its body, as a dropped connection', async () => {
    const { client } = makeClient();
    server.reply({ cutOff: true }, { status: 200, body: TOKEN_BODY });

    const grant = await client.clientCredentials();

    expect(grant.accessToken).toBe(ACCESS);
    expect(server.requests).toHaveLength(2);
  });

  it('classifies an answer cut off on the last attempt as unavailable, saying the connection was reset', async () => {
    const { client } = makeClient({ maxAttempts: 1 });
    server.reply({ cutOff: true });

    const error = await failure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseUnavailableError);
    expect(error.message).toContain('could not be reached for the client credentials grant (ECONNRESET)');
  });

  it('gives each request its own timeout and retries after it', async () => {
    // Long enough for the second, answered request even on a busy machine.
    const { client } = makeClient({ requestTimeoutMs: 500 });
    server.reply({ hang: true }, { status: 200, body: TOKEN_BODY });

    const grant = await client.clientCredentials();

    expect(grant.accessToken).toBe(ACCESS);
    expect(server.requests).toHaveLength(2);
  });

  it('classifies a timeout on the last attempt as unavailable', async () => {
    const { client } = makeClient({ requestTimeoutMs: 50, maxAttempts: 1 });
    server.reply({ hang: true });

    const error = await failure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseUnavailableError);
    expect(error.message).toContain('50 ms');
  });

  it('classifies a refused connection as unavailable', async () => {
    const closed = await startScriptedServer();
    await closed.close();
    const { client } = makeClient({ apiUrl: closed.url, maxAttempts: 2 });

    const error = await failure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseUnavailableError);
    expect(error.message).toContain('ECONNREFUSED');
  });

  it.each([
    ['invalid_grant', 400, WiseInvalidGrantError],
    ['invalid_grant', 401, WiseInvalidGrantError],
    ['invalid_request', 400, WiseInvalidRequestError],
  ])('never retries %s (%i)', async (code, status, errorClass) => {
    const { client, sleeps } = makeClient();
    server.reply({ status, body: { error: code, error_description: 'Invalid user credentials.' } });

    const error = await failure(client.refresh({ refreshToken: REFRESH }));

    expect(error).toBeInstanceOf(errorClass);
    expect(server.requests).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('does not retry a 2xx it cannot read, since Wise may have acted on it', async () => {
    const { client } = makeClient();
    server.reply({ status: 200, body: '<html>maintenance</html>' }, { status: 200, body: TOKEN_BODY });

    const error = await failure(client.refresh({ refreshToken: REFRESH }));

    expect(error).toBeInstanceOf(WiseUnavailableError);
    expect(error.status).toBe(200);
    expect(server.requests).toHaveLength(1);
  });
});

describe('WiseOAuthClient on invalid_client', () => {
  const invalidClient = { status: 401, body: { error: 'invalid_client' } } as const;

  it('fetches fresh credentials once and retries with the new secret', async () => {
    const { credentials, calls } = provider(
      { clientId: 'partner-id', clientSecret: SECRET },
      { clientId: 'partner-id', clientSecret: NEW_SECRET },
    );
    const { client } = makeClient({ credentials });
    server.reply(invalidClient, { status: 200, body: TOKEN_BODY });

    const grant = await client.clientCredentials();

    expect(grant.accessToken).toBe(ACCESS);
    expect(calls).toEqual([undefined, { forceFresh: true }]);
    expect([basicSecret(0), basicSecret(1)]).toEqual([SECRET, NEW_SECRET]);
  });

  it('does not resend the same secret when the fresh one has not changed', async () => {
    const { credentials } = provider({ clientId: 'partner-id', clientSecret: SECRET });
    const { client, logs } = makeClient({ credentials });
    server.reply(invalidClient);

    const error = await failure(client.clientCredentials());

    expect(error).toBeInstanceOf(WiseInvalidClientError);
    expect(server.requests).toHaveLength(1);
    expect(logs.some((line) => line.level === 'error')).toBe(true);
  });

  it('tries the previous secret once when the current one is rejected', async () => {
    const { credentials } = provider({
      clientId: 'partner-id',
      clientSecret: SECRET,
      previousClientSecret: PREVIOUS_SECRET,
    });
    const { client, logs } = makeClient({ credentials });
    server.reply(invalidClient, { status: 200, body: TOKEN_BODY });

    const grant = await client.clientCredentials();

    expect(grant.accessToken).toBe(ACCESS);
    expect([basicSecret(0), basicSecret(1)]).toEqual([SECRET, PREVIOUS_SECRET]);
    expect(logs.some((line) => line.message.includes('previous client secret'))).toBe(true);
  });

  it('tries the fresh secret, then the previous one, then gives up', async () => {
    const { credentials } = provider(
      { clientId: 'partner-id', clientSecret: SECRET },
      { clientId: 'partner-id', clientSecret: NEW_SECRET, previousClientSecret: PREVIOUS_SECRET },
    );
    const { client } = makeClient({ credentials });
    server.reply(invalidClient, invalidClient, { status: 401 });

    const error = await failure(client.refresh({ refreshToken: REFRESH }));

    expect(error).toBeInstanceOf(WiseInvalidClientError);
    expect([basicSecret(0), basicSecret(1), basicSecret(2)]).toEqual([SECRET, NEW_SECRET, PREVIOUS_SECRET]);
  });

  it('stops the recovery at a failure other than invalid_client', async () => {
    const { credentials } = provider(
      { clientId: 'partner-id', clientSecret: SECRET },
      { clientId: 'partner-id', clientSecret: NEW_SECRET, previousClientSecret: PREVIOUS_SECRET },
    );
    const { client } = makeClient({ credentials });
    server.reply(invalidClient, { status: 400, body: { error: 'invalid_grant' } });

    const error = await failure(client.refresh({ refreshToken: REFRESH }));

    expect(error).toBeInstanceOf(WiseInvalidGrantError);
    expect(server.requests).toHaveLength(2);
  });
});

describe('WiseOAuthClient API calls', () => {
  it('reads the current user with the bearer token', async () => {
    const { client } = makeClient();
    server.reply({ status: 200, body: { id: 42, email: 'u@example.com', name: 'U Ser' } });

    const user = await client.getCurrentUser(ACCESS);

    expect(user).toEqual({ id: 42, email: 'u@example.com', name: 'U Ser' });
    expect(server.requests[0]?.url).toBe('/v1/me');
    expect(server.requests[0]?.headers.authorization).toBe(`Bearer ${ACCESS}`);
  });

  it('lists profiles', async () => {
    const { client } = makeClient();
    server.reply({ status: 200, body: [{ id: 1, type: 'PERSONAL', fullName: 'U Ser' }] });

    const profiles = await client.listProfiles(ACCESS);

    expect(profiles).toEqual([{ id: 1, type: 'PERSONAL', name: 'U Ser' }]);
    expect(server.requests[0]?.url).toBe('/v2/profiles');
  });

  it('does not put the version prefix on API paths', async () => {
    const { client } = makeClient({ versionPrefix: '/2026Q3' });
    server.reply({ status: 200, body: { id: 1 } });

    await client.getCurrentUser(ACCESS);

    expect(server.requests[0]?.url).toBe('/v1/me');
  });

  it('throws an invalid-token error whose message does not echo the token', async () => {
    const { client } = makeClient();
    server.reply({ status: 401, body: { error: 'invalid_token', error_description: ACCESS } });

    const error = await failure(client.getCurrentUser(ACCESS));

    expect(error).toBeInstanceOf(WiseInvalidTokenError);
    expect(error.message).not.toContain(ACCESS);
    expect(server.requests).toHaveLength(1);
  });

  it('signs a user up with a registration code as JSON with the client token', async () => {
    const { client } = makeClient();
    server.reply({ status: 200, body: { id: 7, email: 'new@example.com' } });

    await client.signUpWithRegistrationCode({
      email: 'new@example.com',
      registrationCode: REGISTRATION,
      language: 'en',
      clientAccessToken: ACCESS,
    });

    const [request] = server.requests;
    expect(request?.url).toBe('/v1/user/signup/registration_code');
    expect(request?.headers.authorization).toBe(`Bearer ${ACCESS}`);
    expect(request?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request?.body ?? '')).toEqual({
      email: 'new@example.com',
      registrationCode: REGISTRATION,
      language: 'en',
    });
  });

  it('classifies a refused signup as a request error', async () => {
    const { client } = makeClient();
    server.reply({ status: 409, body: { errors: [{ code: 'USER_EXISTS' }] } });

    const error = await failure(
      client.signUpWithRegistrationCode({
        email: 'e@example.com',
        registrationCode: REGISTRATION,
        clientAccessToken: ACCESS,
      }),
    );

    expect(error).toBeInstanceOf(WiseInvalidRequestError);
    expect(error.status).toBe(409);
    expect(error.wiseError).toBe('USER_EXISTS');
  });
});

describe('WiseOAuthClient secrecy', () => {
  const secrets = [SECRET, NEW_SECRET, PREVIOUS_SECRET, CODE, REFRESH, REGISTRATION, ACCESS];
  const echo = (status: number, error: string) => ({
    status,
    body: { error, error_description: `echo ${secrets.join(' ')}` },
  });

  it('keeps every token, code and secret out of error messages and log lines', async () => {
    const { credentials } = provider(
      { clientId: 'partner-id', clientSecret: SECRET },
      { clientId: 'partner-id', clientSecret: NEW_SECRET, previousClientSecret: PREVIOUS_SECRET },
    );
    const { client, logs } = makeClient({ credentials });
    server.reply(
      echo(400, 'invalid_grant'),
      echo(400, 'invalid_request'),
      echo(401, 'invalid_client'),
      echo(401, 'invalid_client'),
      echo(401, 'invalid_client'),
      echo(503, 'server_error'),
      echo(400, 'invalid_request'),
      echo(401, 'invalid_token'),
    );

    const errors = [
      await failure(client.exchangeCode({ code: CODE })),
      await failure(client.refresh({ refreshToken: REFRESH })),
      await failure(client.registrationCodeGrant({ email: 'e@example.com', registrationCode: REGISTRATION })),
      await failure(client.clientCredentials({ deadlineMs: START + 100 })),
      await failure(
        client.signUpWithRegistrationCode({
          email: 'e@example.com',
          registrationCode: REGISTRATION,
          clientAccessToken: ACCESS,
        }),
      ),
      await failure(client.getCurrentUser(ACCESS)),
    ];

    const written = JSON.stringify([errors.map((error) => error.message), logs]);
    for (const secret of secrets) expect(written).not.toContain(secret);
    expect(errors.map((error) => error.constructor)).toEqual([
      WiseInvalidGrantError,
      WiseInvalidRequestError,
      WiseInvalidClientError,
      WiseUnavailableError,
      WiseInvalidRequestError,
      WiseInvalidTokenError,
    ]);
  });
});
