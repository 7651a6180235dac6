import { afterEach, describe, expect, it, vi } from 'vitest';
import { BrokerClient, type VendedToken } from '../../../client/index.ts';
import {
  caller as localCaller,
  region,
  TOKEN_LIFETIME_MS,
  useFakeBroker,
  VALID_FOR_MS,
} from './fake-broker.ts';

describe('BrokerClient tokens', () => {
  const env = useFakeBroker();
  const target = { connectionId: 'acme:user-42.main' };
  const tokenRequests = () => env.broker.requests('POST /tokens');

  describe('getToken', () => {
    it('asks the broker with a signed request and returns the vended token', async () => {
      const token = await env.client.getToken(target);

      expect(token).toEqual({
        accessToken: 'token-acme:user-42.main-1',
        tokenType: 'Bearer',
        expiresAt: new Date(env.broker.clock.now + TOKEN_LIFETIME_MS).toISOString(),
        validUntil: new Date(env.broker.clock.now + VALID_FOR_MS).toISOString(),
        generation: 1,
        connectionId: target.connectionId,
      });
      expect(tokenRequests()).toEqual([
        expect.objectContaining({
          body: { connectionId: target.connectionId },
          userArn: 'arn:aws:sts::111122223333:assumed-role/payouts/local',
        }),
      ]);
    });

    it('serves the cached token until just before validUntil', async () => {
      const first = await env.client.getToken(target);
      env.broker.clock.now += VALID_FOR_MS - 1;

      const second = await env.client.getToken(target);

      expect(second).toBe(first);
      expect(tokenRequests()).toHaveLength(1);
    });

    it('asks the broker again once validUntil has come', async () => {
      await env.client.getToken(target);
      env.broker.clock.now += VALID_FOR_MS;

      await env.client.getToken(target);

      expect(tokenRequests()).toHaveLength(2);
    });

    it('passes minValiditySeconds to the broker when it asks', async () => {
      await env.client.getToken(target, { minValiditySeconds: 20 * 60 });

      expect(tokenRequests().map((request) => request.body)).toEqual([
        { connectionId: target.connectionId, minValiditySeconds: 1200 },
      ]);
    });

    it('serves the cached token until validUntil whatever minValiditySeconds asks, as the broker would', async () => {
      await env.client.getToken(target);
      env.broker.clock.now += 45 * 60_000;

      await env.client.getToken(target, { minValiditySeconds: 60 * 60 });

      expect(tokenRequests()).toHaveLength(1);
    });

    it('sends one request for concurrent calls for the same target', async () => {
      const tokens = await Promise.all([1, 2, 3, 4, 5].map(() => env.client.getToken(target)));

      expect(new Set(tokens).size).toBe(1);
      expect(tokenRequests()).toHaveLength(1);
    });

    it('keeps the tokens of each connection and of the client token apart', async () => {
      const [a, b, app] = await Promise.all([
        env.client.getToken({ connectionId: 'a' }),
        env.client.getToken({ connectionId: 'b' }),
        env.client.getToken({ kind: 'client' }),
      ]);

      expect([a.accessToken, b.accessToken, app.accessToken]).toEqual([
        'token-a-1',
        'token-b-1',
        'token-client-1',
      ]);
      expect(tokenRequests().map((request) => request.body)).toEqual(
        expect.arrayContaining([{ connectionId: 'a' }, { connectionId: 'b' }, { kind: 'client' }]),
      );
    });

    it('drops a cached token of the rejected generation and asks with rejectedGeneration', async () => {
      await env.client.getToken(target);

      const renewed = await env.client.getToken(target, { rejectedGeneration: 1 });

      expect(renewed.generation).toBe(2);
      expect(tokenRequests()[1]?.body).toEqual({ connectionId: target.connectionId, rejectedGeneration: 1 });
      expect(await env.client.getToken(target)).toBe(renewed);
    });

    it('returns the cached token without asking when it is newer than the rejected generation', async () => {
      await env.client.getToken(target);
      const renewed = await env.client.getToken(target, { rejectedGeneration: 1 });

      const again = await env.client.getToken(target, { rejectedGeneration: 1 });

      expect(again).toBe(renewed);
      expect(tokenRequests()).toHaveLength(2);
    });

    it('is refused by the gateway when its secret is not the caller’s', async () => {
      const impostor = new BrokerClient({
        baseUrl: env.broker.url,
        region,
        credentials: {
          accessKeyId: localCaller.accessKeyId,
          secretAccessKey: 'a-secret-that-is-not-the-callers',
        },
        now: () => env.broker.clock.now,
      });

      await expect(impostor.getToken(target)).rejects.toMatchObject({ status: 403, code: 'forbidden' });
      expect(tokenRequests()).toHaveLength(0);
    });
  });

  describe('credentials', () => {
    afterEach(() => {
      vi.unstubAllEnvs();
    });

    it("signs with the AWS SDK's default credential chain when given no credentials", async () => {
      vi.stubEnv('AWS_ACCESS_KEY_ID', localCaller.accessKeyId);
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', localCaller.secretAccessKey);
      const fromEnvironment = new BrokerClient({
        baseUrl: env.broker.url,
        region,
        now: () => env.broker.clock.now,
      });

      const token = await fromEnvironment.getToken(target);

      expect(token.generation).toBe(1);
      expect(tokenRequests()[0]?.userArn).toBe('arn:aws:sts::111122223333:assumed-role/payouts/local');
    });
  });

  describe('withToken', () => {
    const okFromWise = () => new Response('{}', { status: 200 });
    const unauthorizedFromWise = () => new Response('{"error":"invalid_token"}', { status: 401 });

    it('returns the call’s response when Wise accepts the token', async () => {
      const used: VendedToken[] = [];

      const response = await env.client.withToken(target, async (token) => {
        used.push(token);
        return okFromWise();
      });

      expect(response.status).toBe(200);
      expect(used.map((token) => token.generation)).toEqual([1]);
    });

    it('after a 401 asks once with rejectedGeneration and retries the call with the new token', async () => {
      const used: VendedToken[] = [];

      const response = await env.client.withToken(target, async (token) => {
        used.push(token);
        return token.generation === 1 ? unauthorizedFromWise() : okFromWise();
      });

      expect(response.status).toBe(200);
      expect(used.map((token) => token.accessToken)).toEqual([
        'token-acme:user-42.main-1',
        'token-acme:user-42.main-2',
      ]);
      expect(tokenRequests()[1]?.body).toEqual({ connectionId: target.connectionId, rejectedGeneration: 1 });
    });

    it('returns a second 401 as it is, without a third try', async () => {
      let calls = 0;

      const response = await env.client.withToken(target, async () => {
        calls += 1;
        return unauthorizedFromWise();
      });

      expect(response.status).toBe(401);
      expect(calls).toBe(2);
      expect(tokenRequests()).toHaveLength(2);
    });

    it('does not retry on an answer other than 401', async () => {
      let calls = 0;

      const response = await env.client.withToken(target, async () => {
        calls += 1;
        return new Response('{}', { status: 403 });
      });

      expect(response.status).toBe(403);
      expect(calls).toBe(1);
    });

    it('reports a rejected token once for many concurrent calls that met the same 401', async () => {
      const responses = await Promise.all(
        [1, 2, 3, 4, 5].map(() =>
          env.client.withToken(target, async (token) =>
            token.generation === 1 ? unauthorizedFromWise() : okFromWise(),
          ),
        ),
      );

      expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
      expect(tokenRequests().map((request) => request.body)).toEqual([
        { connectionId: target.connectionId },
        { connectionId: target.connectionId, rejectedGeneration: 1 },
      ]);
    });
  });
});
