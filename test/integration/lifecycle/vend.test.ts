import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, vi } from 'vitest';
import { STORE_RESERVE_MS } from '#shared/use-cases/refresh-record.ts';
import {
  ADMIN_ARN,
  apiEvent,
  CLIENT_TOKEN_ARN,
  invoke,
  lambdaContext,
  PARTNER_SESSION_ARN,
  STRANGER_ARN,
} from '../../support/broker.ts';
import { endAccessTokenAtWise } from '../../support/local-broker.ts';
import {
  brokerPerTest,
  instanceRuntime,
  refreshRoutes,
  TOKEN_LIFETIME_MS,
  type VendBody,
  wiseAccepts,
} from './refresh-support.ts';

const connected = brokerPerTest();

describe('POST /tokens', () => {
  it('vends the stored token, which Wise accepts, with every field of the contract', async () => {
    const { broker, connection, routes } = await connected();

    const response = await routes.vend({ connectionId: 'acme-1' });

    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = response.json as VendBody;
    expect(body).toEqual({
      accessToken: expect.any(String),
      tokenType: 'Bearer',
      expiresAt: new Date(connection.accessTokenExpiresAt ?? 0).toISOString(),
      validUntil: new Date(connection.nextRefreshAt ?? 0).toISOString(),
      generation: connection.generation,
      scope: 'transfers',
      connectionId: 'acme-1',
      profileId: connection.profileId,
    });
    await expect(wiseAccepts(broker, body.accessToken)).resolves.toBe(true);
  });

  it('makes exactly one refresh at Wise for twenty concurrent vends that met the same 401', async () => {
    const { broker, connection, routes } = await connected();
    await endAccessTokenAtWise(
      broker.simulator.url,
      (await routes.vendOk({ connectionId: 'acme-1' })).accessToken,
    );
    const instances = Array.from({ length: 5 }, (_, index) => {
      const runtime = instanceRuntime(broker, `instance-${index}`);
      return refreshRoutes(broker, { runtime: () => runtime });
    });
    const refreshesBefore = broker.simulator.stats().grants.refresh_token;

    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        instances[index % instances.length]?.vend({
          connectionId: 'acme-1',
          rejectedGeneration: connection.generation,
        }),
      ),
    );

    expect(broker.simulator.stats().grants.refresh_token - refreshesBefore).toBe(1);
    const bodies = responses.map((response) => response?.json as VendBody);
    expect(responses.map((response) => response?.statusCode)).toEqual(Array(20).fill(200));
    expect(new Set(bodies.map((body) => body.generation))).toEqual(new Set([connection.generation + 1]));
    expect(new Set(bodies.map((body) => body.accessToken)).size).toBe(1);
    await expect(wiseAccepts(broker, bodies[0]?.accessToken ?? '')).resolves.toBe(true);
  });

  it('returns the newer token without a refresh to a caller that rejected an older generation', async () => {
    const { broker, connection, routes } = await connected();
    await endAccessTokenAtWise(
      broker.simulator.url,
      (await routes.vendOk({ connectionId: 'acme-1' })).accessToken,
    );
    const newer = await routes.vendOk({ connectionId: 'acme-1', rejectedGeneration: connection.generation });
    const refreshes = broker.simulator.stats().grants.refresh_token;

    const late = await routes.vendOk({ connectionId: 'acme-1', rejectedGeneration: connection.generation });

    expect(late).toMatchObject({ accessToken: newer.accessToken, generation: connection.generation + 1 });
    expect(broker.simulator.stats().grants.refresh_token).toBe(refreshes);
  });

  it.each([429, 503])(
    'keeps vending the still-valid token when Wise answers %i to the refresh',
    async (status) => {
      const { broker, connection, routes } = await connected();
      const original = await routes.vendOk({ connectionId: 'acme-1' });
      broker.clock.advance(0.85 * TOKEN_LIFETIME_MS);
      await broker.control('faults', { status, count: 1, retryAfter: 600 });

      const vended = await refreshRoutes(broker).vendOk({ connectionId: 'acme-1' });

      expect(vended).toMatchObject({ accessToken: original.accessToken, generation: connection.generation });
      expect(Date.parse(vended.validUntil)).toBeGreaterThan(broker.clock.now());
      await expect(wiseAccepts(broker, vended.accessToken)).resolves.toBe(true);
      const stored = await broker.runtime.store.getConnection('acme-1');
      expect(stored).toMatchObject({ status: 'active', failureCount: 1 });
      expect(stored?.nextRefreshAt).toBeGreaterThanOrEqual(broker.clock.now() + 600_000);
      expect(broker.simulator.stats().failedGrants.refresh_token).toBe(1);
    },
  );

  it('asks Wise nothing while a failed refresh backs off, and answers a rejected token with the rest of the wait', async () => {
    const { broker, connection, routes } = await connected();
    broker.clock.advance(0.85 * TOKEN_LIFETIME_MS);
    await broker.control('faults', { status: 503, count: 1, retryAfter: 600 });
    const fallback = await routes.vendOk({ connectionId: 'acme-1' });
    const attempts = () => {
      const { grants, failedGrants } = broker.simulator.stats();
      return grants.refresh_token + failedGrants.refresh_token;
    };
    const attemptsAfterFailure = attempts();
    broker.clock.advance(100_000);

    const rejected = await routes.vend({ connectionId: 'acme-1', rejectedGeneration: connection.generation });
    const again = await routes.vend({ connectionId: 'acme-1', rejectedGeneration: connection.generation });

    expect(fallback.generation).toBe(connection.generation);
    const stored = await broker.runtime.store.getConnection('acme-1');
    const waitSeconds = Math.ceil(((stored?.nextRefreshAt ?? 0) - broker.clock.now()) / 1000);
    expect(waitSeconds).toBeGreaterThanOrEqual(500);
    expect(rejected.statusCode).toBe(503);
    expect(rejected.json).toMatchObject({ error: 'provider_unavailable' });
    expect(Number(rejected.headers['retry-after'])).toBe(waitSeconds);
    expect(again.statusCode).toBe(503);
    expect(attempts()).toBe(attemptsAfterFailure);
  });

  it('keeps vending the still-valid token when KMS throttles the on-demand refresh', async () => {
    const { broker, connection } = await connected();
    const { cipher } = broker.runtime;
    const throttled = instanceRuntime(broker, 'throttled-instance', {
      cipher: {
        encrypt: (plaintext, context) => cipher.encrypt(plaintext, context),
        decrypt: async (ciphertext, context) => {
          if (context.kind === 'refresh_token') {
            throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
          }
          return cipher.decrypt(ciphertext, context);
        },
      },
    });
    broker.clock.advance(0.85 * TOKEN_LIFETIME_MS);

    const response = await refreshRoutes(broker, { runtime: () => throttled }).vend({
      connectionId: 'acme-1',
    });

    expect(response.statusCode).toBe(200);
    const body = response.json as VendBody;
    expect(body.generation).toBe(connection.generation);
    await expect(wiseAccepts(broker, body.accessToken)).resolves.toBe(true);
    expect(broker.simulator.stats().grants.refresh_token).toBe(0);
  });

  it("bounds the on-demand refresh by the function's remaining time, keeping time to store the answer", async () => {
    const { broker, routes } = await connected();
    const refresh = vi.spyOn(broker.runtime.wise, 'refresh');
    broker.clock.advance(0.85 * TOKEN_LIFETIME_MS);
    const context = { ...lambdaContext(), getRemainingTimeInMillis: () => 12_000 };

    const response = await routes.tokens(
      apiEvent({
        method: 'POST',
        route: '/tokens',
        caller: PARTNER_SESSION_ARN,
        body: { connectionId: 'acme-1' },
      }),
      context,
    );

    expect(response).toMatchObject({ statusCode: 200 });
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(refresh.mock.calls[0]?.[1]?.deadlineMs).toBe(broker.clock.now() + 12_000 - STORE_RESERVE_MS);
  });

  it('answers 503 with Retry-After when Wise is down and the caller rejected the only token', async () => {
    const { broker, connection, routes } = await connected();
    await endAccessTokenAtWise(
      broker.simulator.url,
      (await routes.vendOk({ connectionId: 'acme-1' })).accessToken,
    );
    await broker.control('faults', { status: 503, count: 1, retryAfter: 600 });

    const response = await routes.vend({ connectionId: 'acme-1', rejectedGeneration: connection.generation });

    expect(response.statusCode).toBe(503);
    expect(response.json).toMatchObject({ error: 'provider_unavailable' });
    expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(600);
  });

  it('answers 500 without leaking anything when a ciphertext was copied from another connection', async () => {
    const { broker, routes } = await connected();
    await broker.connect('acme-2');
    const items = await broker.scanTable();
    const victim = items.find((item) => item.connectionId === 'acme-1');
    const donor = items.find((item) => item.connectionId === 'acme-2');
    const donorToken = await routes.vendOk({ connectionId: 'acme-2' });
    await broker.dynamo.client.send(
      new UpdateCommand({
        TableName: broker.tableName,
        Key: { pk: victim?.pk, sk: victim?.sk },
        UpdateExpression: 'SET accessToken = :stolen',
        ExpressionAttributeValues: { ':stolen': donor?.accessToken },
      }),
    );

    const response = await refreshRoutes(broker).vend({ connectionId: 'acme-1' });

    expect(response.statusCode).toBe(500);
    expect(response.json).toEqual({ error: 'internal_error', message: expect.any(String) });
    expect(response.body).not.toContain(donorToken.accessToken);
  });

  it('vends the client-credentials token to a caller allowed it, minting it once', async () => {
    const { broker, routes } = await connected();

    const first = await routes.vend({ kind: 'client' }, CLIENT_TOKEN_ARN);
    const second = await routes.vend({ kind: 'client' }, CLIENT_TOKEN_ARN);

    expect(first.statusCode).toBe(200);
    expect(first.json).toMatchObject({ tokenType: 'Bearer', generation: 1, scope: 'transfers' });
    expect(first.json).not.toHaveProperty('connectionId');
    expect((second.json as VendBody).accessToken).toBe((first.json as VendBody).accessToken);
    expect(broker.simulator.stats().grants.client_credentials).toBe(1);
    await expect(
      broker.runtime.wise.signUpWithRegistrationCode({
        email: 'new.user@example.com',
        registrationCode: 'a-registration-code-of-at-least-32-characters',
        clientAccessToken: (first.json as VendBody).accessToken,
      }),
    ).resolves.toBeUndefined();
  });

  describe('refuses', () => {
    it('a caller whose policy does not cover the connection (403)', async () => {
      const { routes } = await connected();

      const response = await routes.vend({ connectionId: 'acme-1' }, STRANGER_ARN);

      expect(response.statusCode).toBe(403);
      expect(response.json).toMatchObject({ error: 'forbidden' });
    });

    it('the token of a connection to a caller that only administers it (403)', async () => {
      const { routes } = await connected();

      const response = await routes.vend({ connectionId: 'acme-1' }, ADMIN_ARN);

      expect(response.statusCode).toBe(403);
      expect(response.json).toMatchObject({
        error: 'forbidden',
        message: expect.stringMatching(/vend the token of, connection "acme-1".*"use" patterns/),
      });
    });

    it('the client token to a caller that only administers connections (403)', async () => {
      const { routes } = await connected();

      const response = await routes.vend({ kind: 'client' }, ADMIN_ARN);

      expect(response.statusCode).toBe(403);
    });

    it('the client token to a caller without clientToken (403)', async () => {
      const { routes } = await connected();

      const response = await routes.vend({ kind: 'client' }, PARTNER_SESSION_ARN);

      expect(response.statusCode).toBe(403);
    });

    it('an unsigned request (403)', async () => {
      const { routes } = await connected();

      const response = await invoke(routes.tokens, {
        method: 'POST',
        route: '/tokens',
        body: { kind: 'client' },
      });

      expect(response.statusCode).toBe(403);
    });

    it('an unknown connection (404)', async () => {
      const { routes } = await connected();

      const response = await routes.vend({ connectionId: 'acme-unknown' });

      expect(response.statusCode).toBe(404);
      expect(response.json).toMatchObject({ error: 'connection_not_found' });
    });

    it('a disconnected connection (404)', async () => {
      const { broker, routes } = await connected();
      await broker.runtime.store.disconnect('acme-1', { now: broker.clock.now() });

      const response = await routes.vend({ connectionId: 'acme-1' });

      expect(response.statusCode).toBe(404);
    });

    it.each([
      ['neither a connection nor the client', {}, 'exactly one of "connectionId"'],
      ['both a connection and the client', { connectionId: 'acme-1', kind: 'client' }, 'exactly one of'],
      ['an unknown field', { connectionId: 'acme-1', scope: 'all' }, '"scope"'],
      ['a connection id with a slash', { connectionId: 'acme/1' }, 'connectionId'],
      ['another kind', { kind: 'user' }, 'kind'],
      ['a validity over an hour', { connectionId: 'acme-1', minValiditySeconds: 3601 }, 'minValiditySeconds'],
      ['a fractional validity', { connectionId: 'acme-1', minValiditySeconds: 1.5 }, 'minValiditySeconds'],
      ['a negative generation', { connectionId: 'acme-1', rejectedGeneration: -1 }, 'rejectedGeneration'],
      [
        'a generation given as text',
        { connectionId: 'acme-1', rejectedGeneration: '3' },
        'rejectedGeneration',
      ],
      ['a body that is not JSON', '{"connectionId":', 'not valid JSON'],
    ])('%s (400), changing nothing', async (_case, body, named) => {
      const { broker, routes } = await connected();
      const before = await broker.scanTable();

      const response = await routes.vend(body);

      expect(response.statusCode).toBe(400);
      expect(response.json).toMatchObject({
        error: 'invalid_request',
        message: expect.stringContaining(named),
      });
      expect(await broker.scanTable()).toEqual(before);
      expect(broker.simulator.stats().grants.client_credentials).toBe(0);
    });
  });
});
