import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  WiseInvalidGrantError,
  WiseInvalidRequestError,
  WiseInvalidTokenError,
} from '#shared/wise/errors.ts';
import type { WiseOAuthClient } from '#shared/wise/wise-oauth-client.ts';
import {
  approve,
  CLIENT_ID,
  clientFor,
  control,
  defaultUserId,
  REDIRECT_URI,
  type Simulator,
  startTestSimulator,
  wiseFailure,
} from './simulator-support.ts';

const REGISTRATION_CODE = 'reg-code-1f2e3d4c5b6a79880f1e2d3c4b5a6978';

describe('WiseOAuthClient against the Wise simulator', () => {
  let simulator: Simulator;
  let client: WiseOAuthClient;
  let userId: number;

  beforeAll(async () => {
    simulator = await startTestSimulator();
    client = clientFor(simulator).client;
    userId = await defaultUserId(simulator);
  });

  afterAll(async () => {
    await client.close();
    await simulator.close();
  });

  it('builds an authorization URL the simulator accepts as this client and redirect URI', async () => {
    const url = new URL(await client.authorizationUrl({ state: 'state-xyz' }));

    expect(`${url.origin}${url.pathname}`).toBe(simulator.authorizeUrl);
    expect(url.searchParams.get('client_id')).toBe(CLIENT_ID);
    expect(url.searchParams.get('redirect_uri')).toBe(REDIRECT_URI);
    expect(url.searchParams.get('state')).toBe('state-xyz');
    expect((await fetch(url)).status).toBe(200);
  });

  it('gets a client-credentials token without a refresh token', async () => {
    const before = Date.now();

    const grant = await client.clientCredentials();

    expect(grant.accessToken).not.toBe('');
    expect(grant.tokenType).toBe('bearer');
    expect(grant).not.toHaveProperty('refreshToken');
    expect(grant.scope).toBe('transfers');
    expect(grant.traceId).toMatch(/\S/);
    expect(grant.expiresAt).toBeGreaterThan(before + 43_000_000);
    expect(grant.expiresAt).toBeLessThanOrEqual(Date.now() + 43_199_000);
  });

  it('exchanges an approved code for a user token that reads the user and the profiles', async () => {
    const code = await approve(simulator, userId);

    const grant = await client.exchangeCode({ code });
    const user = await client.getCurrentUser(grant.accessToken);
    const profiles = await client.listProfiles(grant.accessToken);

    expect(grant.refreshToken).toBeDefined();
    expect(grant.refreshTokenExpiresAt).toBeGreaterThan(grant.expiresAt);
    expect(user).toEqual({ id: userId, email: 'alex.morgan@example.com', name: 'Alex Morgan' });
    expect(profiles).toEqual([
      { id: expect.any(Number), type: 'PERSONAL', name: 'Alex Morgan' },
      { id: expect.any(Number), type: 'BUSINESS', name: 'Morgan Trading Ltd' },
    ]);
  });

  it('fails a second exchange of the same code with invalid_grant', async () => {
    const code = await approve(simulator, userId);
    await client.exchangeCode({ code });

    const error = await wiseFailure(client.exchangeCode({ code }));

    expect(error).toBeInstanceOf(WiseInvalidGrantError);
    expect(error.status).toBe(400);
    expect(error.wiseError).toBe('invalid_grant');
    expect(error.traceId).toMatch(/\S/);
  });

  it('refreshes, after which the previous access token is refused as an invalid token', async () => {
    const first = await client.exchangeCode({ code: await approve(simulator, userId) });

    const second = await client.refresh({ refreshToken: first.refreshToken ?? '' });
    const error = await wiseFailure(client.getCurrentUser(first.accessToken));

    expect(second.accessToken).not.toBe(first.accessToken);
    expect((await client.getCurrentUser(second.accessToken)).id).toBe(userId);
    expect(error).toBeInstanceOf(WiseInvalidTokenError);
    expect(error.status).toBe(401);
    expect(error.message).not.toContain(first.accessToken);
  });

  it('keeps the refresh token when Wise does not rotate it', async () => {
    const first = await client.exchangeCode({ code: await approve(simulator, userId) });
    const refreshToken = first.refreshToken ?? '';

    const second = await client.refresh({ refreshToken });
    const third = await client.refresh({ refreshToken });

    expect(second.refreshToken ?? refreshToken).toBe(refreshToken);
    expect(third.accessToken).not.toBe(second.accessToken);
  });

  it('fails a refresh with invalid_grant after the user revokes access', async () => {
    const grant = await client.exchangeCode({ code: await approve(simulator, userId) });
    await control(simulator, 'revoke', { userId });

    const refreshError = await wiseFailure(client.refresh({ refreshToken: grant.refreshToken ?? '' }));
    const apiError = await wiseFailure(client.listProfiles(grant.accessToken));

    expect(refreshError).toBeInstanceOf(WiseInvalidGrantError);
    expect(apiError).toBeInstanceOf(WiseInvalidTokenError);
  });

  it('fails a refresh with invalid_grant after a new authorization replaced the refresh token', async () => {
    const old = await client.exchangeCode({ code: await approve(simulator, userId) });
    await client.exchangeCode({ code: await approve(simulator, userId) });

    const error = await wiseFailure(client.refresh({ refreshToken: old.refreshToken ?? '' }));

    expect(error).toBeInstanceOf(WiseInvalidGrantError);
  });

  it('signs a user up with a registration code and connects them with the registration_code grant', async () => {
    const email = 'signed.up@example.com';
    const app = await client.clientCredentials();

    await client.signUpWithRegistrationCode({
      email,
      registrationCode: REGISTRATION_CODE,
      language: 'en',
      clientAccessToken: app.accessToken,
    });
    const grant = await client.registrationCodeGrant({ email, registrationCode: REGISTRATION_CODE });

    expect(grant.refreshToken).toBeDefined();
    expect((await client.getCurrentUser(grant.accessToken)).email).toBe(email);
  });

  it('refuses a second signup of the same email as a request error', async () => {
    const app = await client.clientCredentials();
    const params = {
      email: 'twice@example.com',
      registrationCode: REGISTRATION_CODE,
      clientAccessToken: app.accessToken,
    };
    await client.signUpWithRegistrationCode(params);

    const error = await wiseFailure(client.signUpWithRegistrationCode(params));

    expect(error).toBeInstanceOf(WiseInvalidRequestError);
    expect(error.status).toBe(409);
    expect(error.wiseError).toBe('NOT_UNIQUE');
    expect(error.message).not.toContain(REGISTRATION_CODE);
  });

  it('refuses a signup with a user token as a request error, not an invalid token', async () => {
    const user = await client.exchangeCode({ code: await approve(simulator, userId) });

    const error = await wiseFailure(
      client.signUpWithRegistrationCode({
        email: 'not.allowed@example.com',
        registrationCode: REGISTRATION_CODE,
        clientAccessToken: user.accessToken,
      }),
    );

    expect(error).toBeInstanceOf(WiseInvalidRequestError);
    expect(error.status).toBe(403);
  });

  it('fails the registration_code grant with invalid_grant once the user reclaims the account', async () => {
    const email = 'reclaimer@example.com';
    const app = await client.clientCredentials();
    await client.signUpWithRegistrationCode({
      email,
      registrationCode: REGISTRATION_CODE,
      clientAccessToken: app.accessToken,
    });
    await client.registrationCodeGrant({ email, registrationCode: REGISTRATION_CODE });
    await control(simulator, 'reclaim', { email });

    const error = await wiseFailure(
      client.registrationCodeGrant({ email, registrationCode: REGISTRATION_CODE }),
    );

    expect(error).toBeInstanceOf(WiseInvalidGrantError);
    expect(error.message).not.toContain(REGISTRATION_CODE);
  });

  it('refuses an unknown access token as an invalid token without echoing it', async () => {
    const token = 'e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b';

    const error = await wiseFailure(client.getCurrentUser(token));

    expect(error).toBeInstanceOf(WiseInvalidTokenError);
    expect(error.wiseError).toBe('invalid_token');
    expect(error.message).not.toContain(token);
  });
});

describe('WiseOAuthClient with Wise variants the simulator can play', () => {
  it('rotates the refresh token when Wise does, and the old one then fails with invalid_grant', async () => {
    const simulator = await startTestSimulator({ rotateRefreshTokens: true });
    const { client } = clientFor(simulator);
    try {
      const first = await client.exchangeCode({
        code: await approve(simulator, await defaultUserId(simulator)),
      });

      const second = await client.refresh({ refreshToken: first.refreshToken ?? '' });
      const error = await wiseFailure(client.refresh({ refreshToken: first.refreshToken ?? '' }));

      expect(second.refreshToken).toBeDefined();
      expect(second.refreshToken).not.toBe(first.refreshToken);
      expect(error).toBeInstanceOf(WiseInvalidGrantError);
      expect((await client.refresh({ refreshToken: second.refreshToken ?? '' })).accessToken).not.toBe('');
    } finally {
      await client.close();
      await simulator.close();
    }
  });

  it('classifies invalid_grant answered with 401 as invalid_grant, not invalid_client', async () => {
    const simulator = await startTestSimulator({ invalidGrantStatus: 401 });
    const { client } = clientFor(simulator);
    try {
      const error = await wiseFailure(
        client.refresh({ refreshToken: 'c0de0000-dead-4bee-8f00-000000000000' }),
      );

      expect(error).toBeInstanceOf(WiseInvalidGrantError);
      expect(error.status).toBe(401);
      expect(simulator.stats().failedGrants.refresh_token).toBe(1);
    } finally {
      await client.close();
      await simulator.close();
    }
  });

  it('computes the expiry from expires_in when Wise leaves out expires_at', async () => {
    const simulator = await startTestSimulator({ omitExpiresAt: true, accessTokenSeconds: 600 });
    const { client } = clientFor(simulator);
    try {
      const before = Date.now();

      const grant = await client.exchangeCode({
        code: await approve(simulator, await defaultUserId(simulator)),
      });

      expect(grant.expiresAt).toBeGreaterThanOrEqual(before + 600_000);
      expect(grant.expiresAt).toBeLessThanOrEqual(Date.now() + 600_000);
      expect(grant.refreshToken).toBeDefined();
      expect(grant).not.toHaveProperty('refreshTokenExpiresAt');
    } finally {
      await client.close();
      await simulator.close();
    }
  });

  it('calls the token endpoint under a version prefix', async () => {
    const simulator = await startTestSimulator();
    const { client } = clientFor(simulator, { versionPrefix: '/2026Q3' });
    const { client: unknownVersion } = clientFor(simulator, { versionPrefix: '/2026Q5' });
    try {
      const grant = await client.clientCredentials();
      const error = await wiseFailure(unknownVersion.clientCredentials());

      expect(grant.accessToken).not.toBe('');
      expect(simulator.stats().grants.client_credentials).toBe(1);
      expect(error).toBeInstanceOf(WiseInvalidRequestError);
      expect(error.status).toBe(404);
    } finally {
      await client.close();
      await unknownVersion.close();
      await simulator.close();
    }
  });
});
