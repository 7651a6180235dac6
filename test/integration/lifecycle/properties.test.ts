import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokensHandler } from '#functions/tokens/handler.ts';
import {
  ADMIN_ARN,
  type BrokerHarness,
  CLIENT_TOKEN_ARN,
  invoke,
  PARTNER_SESSION_ARN,
  STRANGER_ARN,
  startBroker,
  type TestRequest,
  type TestResponse,
} from '../../support/broker.ts';
import { connectRoutes } from './connect-support.ts';

/**
 * Property-based tests of every route and every body and query field: whatever a caller sends, the answer
 * is a success or a 4xx with a sentence a person can act on, never a 5xx, and a 4xx changes nothing stored
 * (the whole table is compared before and after). Inputs mix the documented fields with values of every
 * JSON type, near-valid values (real connection ids, e-mail addresses, long codes) so that requests reach
 * the use cases and Wise, and unknown fields, raw text and JSON that is not an object.
 */

const RUNS_PER_ROUTE = 60;

let broker: BrokerHarness;
let handlers: ReturnType<typeof connectRoutes>['handlers'] & {
  tokens: ReturnType<typeof createTokensHandler>;
};
const tried: Record<string, number> = {};
const statuses: Record<string, number> = {};
const serverErrors: string[] = [];

beforeAll(async () => {
  broker = await startBroker();
  const runtime = () => broker.runtime;
  handlers = { ...connectRoutes(broker).handlers, tokens: createTokensHandler(runtime) };
  await broker.connect('acme-1');
});

afterAll(async () => {
  await broker?.close();
  const total = Object.values(tried).reduce((sum, count) => sum + count, 0);
  const byRoute = Object.entries(tried)
    .map(([route, count]) => `${route} ${count}`)
    .join(', ');
  const answers = Object.entries(statuses)
    .sort()
    .map(([family, count]) => `${count} ${family}`)
    .join(', ');
  console.log(
    `Property tests: ${total} inputs tried (${byRoute}); answers ${answers}; 5xx seen: ${serverErrors.length}`,
  );
});

/** Any JSON value, small. */
const anyJson = fc.jsonValue({ maxDepth: 2 });
/** Strings of every sort: printable, unicode, escapes, slashes and dots, long. */
const anyText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', ' ', '.', '..', '/', '%2F', '..%2f', '\\', ';', '\u0000', 'acme-1', 'acme-1/../x', '*'),
  fc.string({ minLength: 129, maxLength: 300 }),
);
/** A value for a field: mostly text, sometimes any other JSON type. */
const anyValue = fc.oneof({ weight: 3, arbitrary: anyText }, { weight: 2, arbitrary: anyJson });
const connectionIds = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('acme-1', 'acme-2', 'acme:x.y_z', 'beta-1', 'other') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/) },
  { weight: 1, arbitrary: anyText },
);
const callers = fc.constantFrom<string | undefined>(
  PARTNER_SESSION_ARN,
  PARTNER_SESSION_ARN,
  ADMIN_ARN,
  CLIENT_TOKEN_ARN,
  STRANGER_ARN,
  undefined,
);
const emails = fc.oneof(fc.emailAddress(), anyValue);
const registrationCodes = fc.oneof(
  fc.string({ minLength: 32, maxLength: 64, unit: 'binary-ascii' }),
  anyValue,
);

/** A record with some of the given fields (each maybe left out) and maybe an unknown one. */
function someOf(fields: Record<string, fc.Arbitrary<unknown>>) {
  return fc
    .tuple(
      fc.record(fields, { requiredKeys: [] }),
      fc.oneof(
        { weight: 4, arbitrary: fc.constant(undefined) },
        {
          weight: 1,
          arbitrary: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), anyJson, { maxKeys: 2 }),
        },
      ),
    )
    .map(([known, unknown]) => ({ ...unknown, ...known }));
}

/** A body: usually the route's fields, sometimes raw text or JSON that is not an object. */
function bodies(fields: Record<string, fc.Arbitrary<unknown>>) {
  return fc.oneof(
    { weight: 8, arbitrary: someOf(fields) },
    { weight: 1, arbitrary: anyJson },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((text) => `{${text}`) },
  );
}

/** A query: some of the route's parameters (always strings, as API Gateway hands them). */
function queries(fields: string[]): fc.Arbitrary<Record<string, string>> {
  return fc
    .record(
      Object.fromEntries(fields.map((field) => [field, anyText])) as Record<string, fc.Arbitrary<string>>,
      {
        requiredKeys: [],
      },
    )
    .map(
      (query) =>
        Object.fromEntries(Object.entries(query).filter(([, value]) => value !== undefined)) as Record<
          string,
          string
        >,
    );
}

/**
 * The arguments of a property: one time in four, an input that should succeed (so the suite also walks the
 * paths past validation); otherwise the anything-goes one.
 */
function oftenValid<A, B>(
  anything: [fc.Arbitrary<A>, fc.Arbitrary<B>],
  valid: [fc.Arbitrary<A>, fc.Arbitrary<B>],
): fc.Arbitrary<[A, B]> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.tuple(...anything) },
    { weight: 1, arbitrary: fc.tuple(...valid) },
  );
}

/** What a person can act on: a sentence, not a stack trace or an empty string. */
function expectActionableSentence(text: unknown, context: string): void {
  expect(typeof text, context).toBe('string');
  const sentence = String(text);
  expect(sentence.length, context).toBeGreaterThanOrEqual(15);
  expect(sentence, context).toMatch(/ /);
  expect(sentence, context).toMatch(/[.?!)"]$/);
  expect(sentence, context).not.toMatch(/\bat \/|\[object |undefined|NaN/);
}

/** Sends one input and checks the properties; the table is compared around every 4xx. */
async function check(
  route: string,
  handler: Parameters<typeof invoke>[0],
  request: TestRequest,
): Promise<void> {
  tried[route] = (tried[route] ?? 0) + 1;
  const before = await broker.scanTable();
  const response: TestResponse = await invoke(handler, request);
  const family = `${Math.floor(response.statusCode / 100)}xx`;
  statuses[family] = (statuses[family] ?? 0) + 1;
  const context = `${route} ${JSON.stringify(request)} answered ${response.statusCode} ${response.body.slice(0, 300)}`;
  if (response.statusCode >= 500) serverErrors.push(context);
  expect(response.statusCode, context).toBeLessThan(500);
  if (response.statusCode < 400) return;
  if (response.headers['content-type']?.startsWith('text/html')) {
    const message = /id="outcome-message"[^>]*>([^<]*)</.exec(response.body)?.[1];
    expectActionableSentence(message, context);
  } else {
    const body = response.json as { error?: unknown; message?: unknown } | undefined;
    expect(body?.error, context).toEqual(expect.stringMatching(/^[a-z_]+$/));
    expectActionableSentence(body?.message, context);
  }
  expect(await broker.scanTable(), `${context}: a 4xx changed the table`).toEqual(before);
}

describe('every route, for any input, answers a success or a 4xx that says what to fix, and a 4xx changes nothing', () => {
  it('POST /connect-sessions {connectionId, returnUrl}', async () => {
    await fc.assert(
      fc.asyncProperty(
        oftenValid(
          [
            callers,
            bodies({
              connectionId: connectionIds,
              returnUrl: fc.oneof(
                fc.webUrl(),
                fc.constantFrom('https://app.example.com/wise/done'),
                anyValue,
              ),
            }),
          ],
          [
            fc.constant(PARTNER_SESSION_ARN),
            fc.stringMatching(/^acme-[a-z0-9]{1,8}$/).map((connectionId) => ({ connectionId })),
          ],
        ),
        ([caller, body]) =>
          check('POST /connect-sessions', handlers.connectSessions, {
            method: 'POST',
            route: '/connect-sessions',
            body,
            ...(caller === undefined ? {} : { caller }),
          }),
      ),
      { numRuns: RUNS_PER_ROUTE },
    );
  });

  it('GET /oauth/callback ?code&state&profileId&error&error_description', async () => {
    await fc.assert(
      fc.asyncProperty(queries(['code', 'state', 'profileId', 'error', 'error_description']), (query) =>
        check('GET /oauth/callback', handlers.callback, { method: 'GET', route: '/oauth/callback', query }),
      ),
      { numRuns: RUNS_PER_ROUTE },
    );
  });

  it('POST /tokens {connectionId | kind, minValiditySeconds, rejectedGeneration}', async () => {
    await fc.assert(
      fc.asyncProperty(
        oftenValid(
          [
            callers,
            bodies({
              connectionId: connectionIds,
              kind: fc.oneof(
                { weight: 1, arbitrary: fc.constant('client') },
                { weight: 1, arbitrary: anyValue },
              ),
              minValiditySeconds: fc.oneof(
                { weight: 3, arbitrary: fc.integer({ min: -10, max: 5000 }) },
                anyValue,
              ),
              rejectedGeneration: fc.oneof(
                { weight: 3, arbitrary: fc.integer({ min: -2, max: 5 }) },
                anyValue,
              ),
            }),
          ],
          [
            fc.constantFrom(PARTNER_SESSION_ARN, CLIENT_TOKEN_ARN),
            fc.constantFrom<Record<string, unknown>>(
              { connectionId: 'acme-1' },
              { connectionId: 'acme-1', minValiditySeconds: 60 },
              { kind: 'client' },
            ),
          ],
        ),
        ([caller, body]) =>
          check('POST /tokens', handlers.tokens, {
            method: 'POST',
            route: '/tokens',
            body,
            ...(caller === undefined ? {} : { caller }),
          }),
      ),
      { numRuns: RUNS_PER_ROUTE },
    );
  });

  it('POST /connections/{id}/registration-code {email, registrationCode, signup, language}', async () => {
    await fc.assert(
      fc.asyncProperty(
        callers,
        connectionIds,
        bodies({
          email: emails,
          registrationCode: registrationCodes,
          signup: fc.oneof(fc.boolean(), anyValue),
          language: fc.oneof(fc.constantFrom('en', 'pt-BR'), anyValue),
        }),
        (caller, id, body) =>
          check('POST /connections/{id}/registration-code', handlers.registration, {
            method: 'POST',
            route: '/connections/{id}/registration-code',
            pathParameters: { id: String(id) },
            body,
            ...(caller === undefined ? {} : { caller }),
          }),
      ),
      { numRuns: RUNS_PER_ROUTE },
    );
  });

  it('GET /connections ?status&limit&nextToken&prefix', async () => {
    await fc.assert(
      fc.asyncProperty(
        oftenValid(
          [callers, queries(['status', 'limit', 'nextToken', 'prefix'])],
          [
            fc.constant(ADMIN_ARN),
            fc.constantFrom<Record<string, string>>(
              {},
              { status: 'active' },
              { status: 'needs_reauth', limit: '5' },
            ),
          ],
        ),
        ([caller, query]) =>
          check('GET /connections', handlers.connections, {
            method: 'GET',
            route: '/connections',
            query,
            ...(caller === undefined ? {} : { caller }),
          }),
      ),
      { numRuns: RUNS_PER_ROUTE },
    );
  });

  it.each(['GET', 'DELETE'] as const)('%s /connections/{id}', async (method) => {
    await fc.assert(
      fc.asyncProperty(
        callers,
        connectionIds.filter((id) => id !== 'acme-1'),
        (caller, id) =>
          check(`${method} /connections/{id}`, handlers.connections, {
            method,
            route: '/connections/{id}',
            pathParameters: { id: String(id) },
            ...(caller === undefined ? {} : { caller }),
          }),
      ),
      { numRuns: RUNS_PER_ROUTE },
    );
  });
});
