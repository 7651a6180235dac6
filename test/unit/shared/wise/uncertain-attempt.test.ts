import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WiseInvalidGrantError } from '#shared/wise/errors.ts';
import { WiseOAuthClient } from '#shared/wise/wise-oauth-client.ts';
import { type Reply, type ScriptedServer, startScriptedServer } from './scripted-server.ts';

const REFUSED: Reply = {
  status: 400,
  body: { error: 'invalid_grant', error_description: 'Invalid user credentials.' },
};

let server: ScriptedServer;
let client: WiseOAuthClient | undefined;

beforeAll(async () => {
  server = await startScriptedServer();
});
afterEach(async () => {
  server.reset();
  await client?.close();
  client = undefined;
});
afterAll(async () => {
  await server.close();
});

function refreshOnce(): Promise<unknown> {
  let now = Date.parse('2026-12-01T10:00:00.000Z');
  client = new WiseOAuthClient({
    apiUrl: server.url,
    authorizeUrl: 'https://wise.example/oauth/authorize/',
    redirectUri: 'https://broker.example/oauth/callback',
    credentials: { get: async () => ({ clientId: 'partner-id', clientSecret: 'partner-secret-0001' }) },
    requestTimeoutMs: 100,
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
    random: () => 0.5,
  });
  return client.refresh({ refreshToken: 'refresh-token-0001' }).catch((error: unknown) => error);
}

describe('an invalid_grant that follows a request Wise may have acted on', () => {
  it.each<[string, Reply[]]>([
    ['a dropped connection', [{ drop: true }, REFUSED]],
    ['a request that got no answer in time', [{ hang: true }, REFUSED]],
    ['a 502', [{ status: 502, body: {} }, REFUSED]],
  ])('is marked as possibly spent by the earlier attempt after %s', async (_, replies) => {
    server.reply(...replies);

    const error = await refreshOnce();

    expect(error).toBeInstanceOf(WiseInvalidGrantError);
    expect(error).toMatchObject({ afterUncertainAttempt: true });
    expect(server.requests).toHaveLength(2);
  });

  it.each<[string, Reply[]]>([
    ['on the first attempt', [REFUSED]],
    [
      'after a 429, which Wise refuses before acting',
      [{ status: 429, body: {}, headers: { 'retry-after': '1' } }, REFUSED],
    ],
  ])('is not marked %s', async (_, replies) => {
    server.reply(...replies);

    const error = await refreshOnce();

    expect(error).toBeInstanceOf(WiseInvalidGrantError);
    expect(error).toMatchObject({ afterUncertainAttempt: false });
  });
});
