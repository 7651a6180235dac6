import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningSimulator, startSimulator } from '#local/simulator/index.ts';
import { callApi, postToken, userToken } from './support.ts';

let simulator: RunningSimulator;
beforeAll(async () => {
  simulator = await startSimulator();
});
afterAll(async () => {
  await simulator?.close();
});

describe('GET /v1/me', () => {
  it("answers a live user token with Wise's user object", async () => {
    const token = await userToken(simulator);

    const answer = await callApi<Record<string, unknown>>(simulator, '/v1/me', token.access_token);

    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      id: 5550001,
      name: 'Alex Morgan',
      email: 'alex.morgan@example.com',
      active: true,
      details: { firstName: 'Alex', lastName: 'Morgan' },
    });
  });

  it('refuses a client-credentials token with 401 invalid_token echoing the token, as Wise does', async () => {
    const client = await postToken(simulator, { grant_type: 'client_credentials' });

    const answer = await callApi(simulator, '/v1/me', client.body.access_token);

    expect(answer.status).toBe(401);
    expect(answer.body).toEqual({ error: 'invalid_token', error_description: client.body.access_token });
  });

  it('refuses an unknown token with 401 invalid_token echoing it', async () => {
    const answer = await callApi(simulator, '/v1/me', 'no-such-token');

    expect(answer.status).toBe(401);
    expect(answer.body).toEqual({ error: 'invalid_token', error_description: 'no-such-token' });
  });

  it('refuses a request without a token with 401', async () => {
    const answer = await callApi(simulator, '/v1/me', undefined);

    expect(answer.status).toBe(401);
    expect(answer.body).toMatchObject({ error: 'invalid_token' });
  });
});

describe('GET /v2/profiles', () => {
  it("answers a live user token with the user's personal and business profiles", async () => {
    const token = await userToken(simulator);

    const answer = await callApi<Record<string, unknown>[]>(simulator, '/v2/profiles', token.access_token);

    expect(answer.status).toBe(200);
    expect(answer.body).toEqual([
      expect.objectContaining({ id: 16550001, type: 'PERSONAL', fullName: 'Alex Morgan', userId: 5550001 }),
      expect.objectContaining({
        id: 16550002,
        type: 'BUSINESS',
        fullName: 'Morgan Trading Ltd',
        userId: 5550001,
      }),
    ]);
  });

  it('refuses a client-credentials token with 401 invalid_token', async () => {
    const client = await postToken(simulator, { grant_type: 'client_credentials' });

    const answer = await callApi(simulator, '/v2/profiles', client.body.access_token);

    expect(answer.status).toBe(401);
    expect(answer.body).toEqual({ error: 'invalid_token', error_description: client.body.access_token });
  });
});
