import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_ARN,
  BETA_ADMIN_ARN,
  type BrokerHarness,
  invoke,
  PARTNER_ARN,
  PARTNER_SESSION_ARN,
  STRANGER_ARN,
  startBroker,
  type TestRequest,
} from '../../support/broker.ts';
import { connectRoutes } from './connect-support.ts';

let broker: BrokerHarness;
let routes: ReturnType<typeof connectRoutes>;
let pendingState: string;

beforeAll(async () => {
  broker = await startBroker();
  routes = connectRoutes(broker);
  await broker.connect('acme-1');
  pendingState = (await routes.startSession('acme-pending')).state;
});

afterAll(async () => {
  await broker?.close();
});

type Route = keyof ReturnType<typeof connectRoutes>['handlers'];

interface BadInput {
  name: string;
  route: Route;
  request: TestRequest;
  status: number;
  error: string;
  message: RegExp;
}

const CODE = 'rc-0123456789abcdef0123456789abcdef-ok';
const LONG_ID = 'a'.repeat(129);
const OVERSIZED = 'x'.repeat(17 * 1024);

const session = (body: unknown, caller: string | null = PARTNER_SESSION_ARN): TestRequest => ({
  method: 'POST',
  route: '/connect-sessions',
  body,
  ...(caller ? { caller } : {}),
});
const registration = (id: string, body: unknown, caller: string | null = PARTNER_ARN): TestRequest => ({
  method: 'POST',
  route: '/connections/{id}/registration-code',
  pathParameters: { id },
  body,
  ...(caller ? { caller } : {}),
});
const one = (method: 'GET' | 'DELETE', id: string, caller: string | null = ADMIN_ARN): TestRequest => ({
  method,
  route: '/connections/{id}',
  pathParameters: { id },
  ...(caller ? { caller } : {}),
});
const list = (query: Record<string, string>, caller: string | null = ADMIN_ARN): TestRequest => ({
  method: 'GET',
  route: '/connections',
  query,
  ...(caller ? { caller } : {}),
});

const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

const NO_IDENTITY = /signed with AWS SigV4 by an IAM principal/;
const ID_RULE = /1 to 128 characters of letters, digits, "\.", "_", ":" and "-"/;

const BAD_INPUTS: BadInput[] = [
  // POST /connect-sessions
  {
    name: 'no identity',
    route: 'connectSessions',
    request: session({ connectionId: 'acme-2' }, null),
    status: 403,
    error: 'forbidden',
    message: NO_IDENTITY,
  },
  {
    name: 'a caller the policy does not know',
    route: 'connectSessions',
    request: session({ connectionId: 'acme-2' }, STRANGER_ARN),
    status: 403,
    error: 'forbidden',
    message:
      /may not create connect sessions and registrations for, or vend the token of, connection "acme-2"/,
  },
  {
    name: "a connection outside the caller's patterns",
    route: 'connectSessions',
    request: session({ connectionId: 'beta-1' }),
    status: 403,
    error: 'forbidden',
    message: /one of this caller's "use" patterns/,
  },
  {
    name: 'a caller that only administers the connection',
    route: 'connectSessions',
    request: session({ connectionId: 'acme-2' }, ADMIN_ARN),
    status: 403,
    error: 'forbidden',
    message: /"use" patterns/,
  },
  {
    name: 'no body',
    route: 'connectSessions',
    request: session(undefined),
    status: 400,
    error: 'invalid_request',
    message: /needs a JSON body/,
  },
  {
    name: 'a body that is not JSON',
    route: 'connectSessions',
    request: session('{"connectionId":'),
    status: 400,
    error: 'invalid_request',
    message: /not valid JSON/,
  },
  {
    name: 'a body over 16 KiB',
    route: 'connectSessions',
    request: session({ connectionId: 'acme-2', returnUrl: OVERSIZED }),
    status: 400,
    error: 'invalid_request',
    message: /larger than 16384 bytes/,
  },
  {
    name: 'a body that is a list',
    route: 'connectSessions',
    request: session(['acme-2']),
    status: 400,
    error: 'invalid_request',
    message: /must be a JSON object with the fields "connectionId", "returnUrl"/,
  },
  {
    name: 'a missing connectionId',
    route: 'connectSessions',
    request: session({}),
    status: 400,
    error: 'invalid_request',
    message: /Field "connectionId": is required/,
  },
  {
    name: 'a connection id of 129 characters',
    route: 'connectSessions',
    request: session({ connectionId: LONG_ID }),
    status: 400,
    error: 'invalid_request',
    message: ID_RULE,
  },
  {
    name: 'a connection id with a slash',
    route: 'connectSessions',
    request: session({ connectionId: 'acme/2' }),
    status: 400,
    error: 'invalid_request',
    message: ID_RULE,
  },
  {
    name: 'a connection id that is a number',
    route: 'connectSessions',
    request: session({ connectionId: 42 }),
    status: 400,
    error: 'invalid_request',
    message: /Field "connectionId"/,
  },
  {
    name: 'an unknown field',
    route: 'connectSessions',
    request: session({ connectionId: 'acme-2', redirect: 'x' }),
    status: 400,
    error: 'invalid_request',
    message: /unknown field "redirect"/,
  },
  {
    name: 'a return URL that is not a string',
    route: 'connectSessions',
    request: session({ connectionId: 'acme-2', returnUrl: true }),
    status: 400,
    error: 'invalid_request',
    message: /Field "returnUrl": must be a URL string/,
  },
  {
    name: 'a return URL on a look-alike host',
    route: 'connectSessions',
    request: session({ connectionId: 'acme-2', returnUrl: 'https://app.example.com.evil.com/return/' }),
    status: 400,
    error: 'invalid_request',
    message: /Field "returnUrl": must be one of the configuration's returnUrls/,
  },
  {
    name: 'a protocol-relative return URL',
    route: 'connectSessions',
    request: session({ connectionId: 'acme-2', returnUrl: '//evil.example.com/' }),
    status: 400,
    error: 'invalid_request',
    message: /Field "returnUrl"/,
  },
  {
    name: 'a return URL with user info',
    route: 'connectSessions',
    request: session({ connectionId: 'acme-2', returnUrl: 'https://app.example.com@evil.com/return/' }),
    status: 400,
    error: 'invalid_request',
    message: /Field "returnUrl"/,
  },

  // POST /connections/{id}/registration-code
  {
    name: 'no identity',
    route: 'registration',
    request: registration('acme-r', { email: 'a@example.com', registrationCode: CODE }, null),
    status: 403,
    error: 'forbidden',
    message: NO_IDENTITY,
  },
  {
    name: 'a caller the policy does not know',
    route: 'registration',
    request: registration('acme-r', { email: 'a@example.com', registrationCode: CODE }, STRANGER_ARN),
    status: 403,
    error: 'forbidden',
    message: /may not create connect sessions and registrations for, or vend the token of, connection/,
  },
  {
    name: "a connection outside the caller's patterns",
    route: 'registration',
    request: registration('beta-r', { email: 'a@example.com', registrationCode: CODE }),
    status: 403,
    error: 'forbidden',
    message:
      /may not create connect sessions and registrations for, or vend the token of, connection "beta-r"/,
  },
  {
    name: 'a caller that only administers the connection',
    route: 'registration',
    request: registration('acme-r', { email: 'a@example.com', registrationCode: CODE }, ADMIN_ARN),
    status: 403,
    error: 'forbidden',
    message: /"use" patterns/,
  },
  {
    name: 'a path id of 129 characters',
    route: 'registration',
    request: registration(LONG_ID, { email: 'a@example.com', registrationCode: CODE }),
    status: 400,
    error: 'invalid_request',
    message: ID_RULE,
  },
  {
    name: 'a path id with a space',
    route: 'registration',
    request: registration('acme r', { email: 'a@example.com', registrationCode: CODE }),
    status: 400,
    error: 'invalid_request',
    message: /connection id in the path/,
  },
  {
    name: 'a missing email',
    route: 'registration',
    request: registration('acme-r', { registrationCode: CODE }),
    status: 400,
    error: 'invalid_request',
    message: /Field "email": is required/,
  },
  {
    name: 'an email that is not one',
    route: 'registration',
    request: registration('acme-r', { email: 'nobody', registrationCode: CODE }),
    status: 400,
    error: 'invalid_request',
    message: /Field "email": must be an e-mail address/,
  },
  {
    name: 'a registration code shorter than 32 characters',
    route: 'registration',
    request: registration('acme-r', { email: 'a@example.com', registrationCode: 'too-short' }),
    status: 400,
    error: 'invalid_request',
    message: /Field "registrationCode": must be at least 32 characters/,
  },
  {
    name: 'a registration code that is a number',
    route: 'registration',
    request: registration('acme-r', { email: 'a@example.com', registrationCode: 1234 }),
    status: 400,
    error: 'invalid_request',
    message: /Field "registrationCode": must be a string/,
  },
  {
    name: 'signup that is not a boolean',
    route: 'registration',
    request: registration('acme-r', { email: 'a@example.com', registrationCode: CODE, signup: 'yes' }),
    status: 400,
    error: 'invalid_request',
    message: /Field "signup": must be true or false/,
  },
  {
    name: 'an unknown field',
    route: 'registration',
    request: registration('acme-r', { email: 'a@example.com', registrationCode: CODE, password: 'x' }),
    status: 400,
    error: 'invalid_request',
    message: /unknown field "password"/,
  },
  {
    name: 'a body over 16 KiB',
    route: 'registration',
    request: registration('acme-r', { email: 'a@example.com', registrationCode: OVERSIZED }),
    status: 400,
    error: 'invalid_request',
    message: /larger than 16384 bytes/,
  },
  {
    name: 'a body that is not JSON',
    route: 'registration',
    request: registration('acme-r', 'email=a@example.com'),
    status: 400,
    error: 'invalid_request',
    message: /not valid JSON/,
  },

  // GET and DELETE /connections/{id}
  {
    name: 'no identity',
    route: 'connections',
    request: one('GET', 'acme-1', null),
    status: 403,
    error: 'forbidden',
    message: NO_IDENTITY,
  },
  {
    name: 'a caller that is no admin',
    route: 'connections',
    request: one('GET', 'acme-1', PARTNER_SESSION_ARN),
    status: 403,
    error: 'forbidden',
    message: /"administer" patterns/,
  },
  {
    name: 'an admin of other connections',
    route: 'connections',
    request: one('GET', 'acme-1', BETA_ADMIN_ARN),
    status: 403,
    error: 'forbidden',
    message: /may not list, read the status of or delete connection "acme-1"/,
  },
  {
    name: 'a path id of 129 characters',
    route: 'connections',
    request: one('GET', LONG_ID),
    status: 400,
    error: 'invalid_request',
    message: ID_RULE,
  },
  {
    name: 'an unknown connection',
    route: 'connections',
    request: one('GET', 'acme-unknown'),
    status: 404,
    error: 'connection_not_found',
    message: /No connection "acme-unknown" exists/,
  },
  {
    name: 'DELETE without identity',
    route: 'connections',
    request: one('DELETE', 'acme-1', null),
    status: 403,
    error: 'forbidden',
    message: NO_IDENTITY,
  },
  {
    name: 'DELETE by a caller that only uses the connection',
    route: 'connections',
    request: one('DELETE', 'acme-1', PARTNER_ARN),
    status: 403,
    error: 'forbidden',
    message: /may not list, read the status of or delete connection "acme-1".*"administer" patterns/,
  },
  {
    name: 'DELETE by an admin of other connections',
    route: 'connections',
    request: one('DELETE', 'acme-1', BETA_ADMIN_ARN),
    status: 403,
    error: 'forbidden',
    message: /administer/,
  },
  {
    name: 'DELETE of an unknown connection',
    route: 'connections',
    request: one('DELETE', 'acme-unknown'),
    status: 404,
    error: 'connection_not_found',
    message: /No connection/,
  },
  {
    name: 'DELETE with a malformed id',
    route: 'connections',
    request: one('DELETE', 'acme 1'),
    status: 400,
    error: 'invalid_request',
    message: ID_RULE,
  },

  {
    name: 'a method the route does not serve',
    route: 'connections',
    request: { method: 'POST', route: '/connections', caller: ADMIN_ARN, body: {}, offContract: true },
    status: 405,
    error: 'method_not_allowed',
    message: /accepts only GET/,
  },

  // GET /connections
  {
    name: 'a list without identity',
    route: 'connections',
    request: list({}, null),
    status: 403,
    error: 'forbidden',
    message: NO_IDENTITY,
  },
  {
    name: 'a list by a caller that is no admin',
    route: 'connections',
    request: list({}, PARTNER_ARN),
    status: 403,
    error: 'forbidden',
    message: /may not list connections/,
  },
  {
    name: 'a limit of 0',
    route: 'connections',
    request: list({ limit: '0' }),
    status: 400,
    error: 'invalid_request',
    message: /Field "limit": must be a whole number from 1 to 100/,
  },
  {
    name: 'a limit of 101',
    route: 'connections',
    request: list({ limit: '101' }),
    status: 400,
    error: 'invalid_request',
    message: /Field "limit"/,
  },
  {
    name: 'a limit that is no number',
    route: 'connections',
    request: list({ limit: 'all' }),
    status: 400,
    error: 'invalid_request',
    message: /Field "limit"/,
  },
  {
    name: 'the status disconnected',
    route: 'connections',
    request: list({ status: 'disconnected' }),
    status: 400,
    error: 'invalid_request',
    message: /Field "status": must be "active" or "needs_reauth"/,
  },
  {
    name: 'a nextToken this listing never returned',
    route: 'connections',
    request: list({ nextToken: 'bm90LWEtdG9rZW4' }),
    status: 400,
    error: 'invalid_request',
    message: /nextToken/,
  },
  {
    name: 'a nextToken that decodes to no bytes at all',
    route: 'connections',
    request: list({ nextToken: 'A' }),
    status: 400,
    error: 'invalid_request',
    message: /nextToken/,
  },
  {
    name: 'a hand-written nextToken naming a pattern and position of its own caller',
    route: 'connections',
    request: list({ nextToken: cursor({ s: 'active', p: 'acme-*', a: 'acme-1' }) }),
    status: 400,
    error: 'invalid_request',
    message: /nextToken/,
  },
  {
    name: 'a nextToken of empty strings',
    route: 'connections',
    request: list({
      nextToken: cursor({ s: 'active', k: { pk: '', sk: '', status: 'active', connectionId: '' } }),
    }),
    status: 400,
    error: 'invalid_request',
    message: /nextToken/,
  },
  {
    name: "a nextToken that jumps into another admin's connections",
    route: 'connections',
    request: list({ nextToken: cursor({ s: 'active', p: 'beta-*', a: 'beta-1' }) }),
    status: 400,
    error: 'invalid_request',
    message: /nextToken/,
  },
  {
    name: 'a nextToken positioned outside its pattern',
    route: 'connections',
    request: list({ nextToken: cursor({ s: 'active', p: 'acme-*', a: 'beta-1' }) }),
    status: 400,
    error: 'invalid_request',
    message: /nextToken/,
  },
  {
    name: 'an unknown parameter',
    route: 'connections',
    request: list({ offset: '10' }),
    status: 400,
    error: 'invalid_request',
    message: /unknown parameter "offset"/,
  },
];

describe('bad input to the connect, registration and admin routes', () => {
  it.each(
    BAD_INPUTS.map(
      (input) => [`${input.request.method} ${input.request.route}: ${input.name}`, input] as const,
    ),
  )('%s', async (_name, input) => {
    const before = await broker.scanTable();

    const response = await invoke(routes.handlers[input.route], input.request);

    expect(response.statusCode).toBe(input.status);
    expect(response.headers['content-type']).toBe('application/json');
    expect(Object.keys(response.json as object).sort()).toEqual(['error', 'message']);
    const { error, message } = response.json as { error: string; message: string };
    expect(error).toBe(input.error);
    expect(message).toMatch(input.message);
    // A sentence a person can act on: more than a word or two, ending with a full stop.
    expect(message).toMatch(/^\S.{19,}\.$/s);
    expect(await broker.scanTable()).toEqual(before);
  });
});

describe('bad input to the OAuth callback', () => {
  const CALLBACKS: Array<[string, () => Record<string, string>]> = [
    ['no query at all', () => ({})],
    ['a state too short to be one', () => ({ state: 'abc', code: 'x' })],
    ['a state of 200 characters', () => ({ state: 's'.repeat(200), code: 'x' })],
    ['a state with other characters', () => ({ state: `${pendingState.slice(0, 40)}<b>`, code: 'x' })],
    ['a real state without code or error', () => ({ state: pendingState })],
    [
      'a real state with both code and error',
      () => ({ state: pendingState, code: 'x', error: 'access_denied' }),
    ],
    ['a real state with a code of 3000 characters', () => ({ state: pendingState, code: 'c'.repeat(3000) })],
    [
      'a real state with a profileId that is no number',
      () => ({ state: pendingState, code: 'x', profileId: '12a' }),
    ],
    ['a real state with an error of odd characters', () => ({ state: pendingState, error: '<script>' })],
    ['an unknown state', () => ({ state: 'u'.repeat(43), code: 'some-code' })],
  ];

  it.each(CALLBACKS)('answers %s with a 400 page and changes nothing', async (_name, query) => {
    const before = await broker.scanTable();

    const response = await routes.callback(query());

    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.body).toContain('<main id="outcome" data-status="error">');
    expect(response.body).toMatch(/<p id="outcome-advice"[^>]*>[^<]*again[^<]*<\/p>/);
    expect(response.body).not.toContain('<script>');
    expect(await broker.scanTable()).toEqual(before);
  });

  it('still completes the pending session after all of them', async () => {
    const location = await broker.authorize({ state: pendingState });

    const response = await routes.callback(routes.queryOf(location));

    expect(response.statusCode).toBe(200);
  });
});
