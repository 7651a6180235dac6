import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { logger, MetricName, metrics } from '#shared/observability.ts';
import { obtainClientAccessToken } from '#shared/use-cases/client-token.ts';
import {
  type BrokerHarness,
  invoke,
  PARTNER_SESSION_ARN,
  startBroker,
  TEST_CLIENT_SECRET,
} from '../../support/broker.ts';
import { endAccessTokenAtWise } from '../../support/local-broker.ts';
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

const EMAIL = 'sam.partner-user@example.com';
const CODE = 'rc-7f3a9c1e5b2d4f6a8c0e2b4d6f8a0c2e4b6d';

function register(connectionId: string, body: Record<string, unknown>) {
  return invoke(routes.handlers.registration, {
    method: 'POST',
    route: '/connections/{id}/registration-code',
    pathParameters: { id: connectionId },
    caller: PARTNER_SESSION_ARN,
    body,
  });
}

/** Everything the process writes to stdout and stderr while `run` runs. */
async function captureOutput<T>(run: () => Promise<T>): Promise<{ result: T; output: string }> {
  const chunks: string[] = [];
  const capture = (chunk: unknown) => {
    chunks.push(String(chunk));
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  // The suite runs with warnings only; this check needs every log line there is.
  const level = logger.getLevelName();
  logger.setLogLevel('DEBUG');
  try {
    const result = await run();
    return { result, output: chunks.join('') };
  } finally {
    logger.setLogLevel(level);
    out.mockRestore();
    err.mockRestore();
  }
}

describe('connecting a partner-created user with a registration code', () => {
  it('signs the user up, grants, and keeps the code encrypted: never in the table, the answer or a log', async () => {
    const { result: response, output } = await captureOutput(() =>
      register('acme-reg-1', { email: EMAIL, registrationCode: CODE, signup: true, language: 'en' }),
    );

    expect(response.statusCode).toBe(201);
    expect(response.json).toMatchObject({
      connectionId: 'acme-reg-1',
      status: 'active',
      grant: 'registration_code',
      profileId: expect.any(Number),
      lastError: null,
    });
    const users = (await broker.control('users')) as Array<{ email: string }>;
    expect(users.map((user) => user.email)).toContain(EMAIL);
    const stored = await broker.runtime.store.getConnection('acme-reg-1');
    const secrets = await routes.plaintextTokens(stored);
    expect(secrets.registrationCode).toBe(CODE);
    expect(stored?.email).toBe(EMAIL);
    const table = itemText(await broker.scanTable());
    for (const secret of [CODE, secrets.accessToken, secrets.refreshToken]) {
      expect(table).not.toContain(secret);
      expect(response.body).not.toContain(secret);
    }
    expect(output).toContain('Connection stored');
    expect(output).not.toContain(CODE);
  });

  it('mints a new client token once and signs up when Wise ended the stored client token early', async () => {
    const stale = await obtainClientAccessToken(broker.runtime);
    await endAccessTokenAtWise(broker.simulator.url, stale.accessToken);
    const minted = broker.simulator.stats().grants.client_credentials;

    const response = await register('acme-reg-stale', {
      email: 'lee.partner-user@example.com',
      registrationCode: `${CODE}-stale`,
      signup: true,
    });

    expect(response.statusCode).toBe(201);
    expect(broker.simulator.stats().grants.client_credentials - minted).toBe(1);
    const fresh = await obtainClientAccessToken(broker.runtime);
    expect(fresh.generation).toBe(stale.generation + 1);
  });

  it('answers with the connection it replaced when the same user is registered under another id', async () => {
    const user = { email: 'pat.partner-user@example.com', registrationCode: `${CODE}-pat` };
    await register('acme-reg-pat-1', { ...user, signup: true });

    const response = await register('acme-reg-pat-2', user);

    expect(response.statusCode).toBe(201);
    expect(response.json).toMatchObject({
      connectionId: 'acme-reg-pat-2',
      replacedConnectionId: 'acme-reg-pat-1',
    });
    expect(await broker.runtime.store.getConnection('acme-reg-pat-1')).toMatchObject({
      status: 'needs_reauth',
    });
  });

  it('grants again without signup, replacing the tokens and growing the generation', async () => {
    const before = await broker.runtime.store.getConnection('acme-reg-1');

    const response = await register('acme-reg-1', { email: EMAIL, registrationCode: CODE });

    expect(response.statusCode).toBe(201);
    const after = await broker.runtime.store.getConnection('acme-reg-1');
    expect(after?.generation).toBe((before?.generation ?? 0) + 1);
  });

  it('answers 409 reauthorization_required once the user reclaimed the account, changing nothing', async () => {
    await broker.control('reclaim', { email: EMAIL });
    const before = await broker.scanTable();

    const { result: response, output } = await captureOutput(() =>
      register('acme-reg-1', { email: EMAIL, registrationCode: CODE }),
    );

    expect(response.statusCode).toBe(409);
    expect(response.json).toEqual({
      error: 'reauthorization_required',
      message: expect.stringContaining('must connect through the authorization page instead'),
    });
    expect(response.body).not.toContain(CODE);
    expect(output).not.toContain(CODE);
    expect(await broker.scanTable()).toEqual(before);
  });

  it('answers 503 with Retry-After when Wise is unavailable', async () => {
    await broker.control('faults', { status: 503, count: 4, retryAfter: 0 });

    const response = await register('acme-reg-2', {
      email: 'kim.partner-user@example.com',
      registrationCode: `${CODE}-2`,
      signup: true,
    });

    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toMatch(/^\d+$/);
    expect(response.json).toMatchObject({ error: 'provider_unavailable' });
    expect(await broker.runtime.store.getConnection('acme-reg-2')).toBeUndefined();
  });

  it('answers 503 provider_unavailable with Retry-After when Wise refuses the client secret, and alarms the operator', async () => {
    const addMetric = vi.spyOn(metrics, 'addMetric').mockImplementation(() => metrics);
    await broker.control('client-secret', { clientSecret: 'rotated-elsewhere-0002' });
    try {
      const { result: response, output } = await captureOutput(() =>
        register('acme-reg-3', { email: 'lee.partner-user@example.com', registrationCode: `${CODE}-3` }),
      );

      expect(response.statusCode).toBe(503);
      expect(response.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      expect(response.json).toEqual({
        error: 'provider_unavailable',
        message: expect.stringMatching(/operator has been alerted.*\.$/),
      });
      expect(addMetric).toHaveBeenCalledWith(MetricName.invalidClient, 'Count', 1);
      expect(output).toMatch(/"level":"ERROR","message":"Wise rejected the broker's client credentials/);
      expect(output).not.toContain(`${CODE}-3`);
      expect(await broker.runtime.store.getConnection('acme-reg-3')).toBeUndefined();
    } finally {
      addMetric.mockRestore();
      await broker.control('client-secret', { clientSecret: TEST_CLIENT_SECRET });
    }
  });
});
