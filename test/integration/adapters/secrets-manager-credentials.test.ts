import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CredentialsUnavailableError,
  SecretsManagerCredentials,
} from '#shared/adapters/secrets-manager-credentials.ts';
import { type TestLocalAws, testLocalAws } from '../../support/aws.ts';

const SECRET_ID = 'wise-broker/test/wise-client';

let aws: TestLocalAws;

beforeAll(async () => {
  aws = await testLocalAws({
    secrets: { [SECRET_ID]: JSON.stringify({ clientId: 'client-1', clientSecret: 'secret-1' }) },
  });
});

afterAll(async () => {
  await aws?.close();
});

beforeEach(() => {
  // Only the clock is faked: the SDK's own timers and sockets keep working.
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(new Date('2026-11-26T12:00:00Z'));
});

afterEach(() => {
  vi.useRealTimers();
});

async function rotateTo(clientSecret: string): Promise<void> {
  await aws.secrets.send(
    new PutSecretValueCommand({
      SecretId: SECRET_ID,
      SecretString: JSON.stringify({ clientId: 'client-1', clientSecret, previousClientSecret: 'secret-1' }),
    }),
  );
}

describe('SecretsManagerCredentials on the local Secrets Manager', () => {
  it('picks up a rotated secret once maxAge has passed, and not before', async () => {
    const credentials = new SecretsManagerCredentials({
      client: aws.secrets,
      secretId: SECRET_ID,
      maxAgeSeconds: 60,
    });
    const before = await credentials.get();
    await rotateTo('secret-2');

    const cached = await credentials.get();
    vi.advanceTimersByTime(61_000);
    const rotated = await credentials.get();

    expect(before).toEqual({ clientId: 'client-1', clientSecret: 'secret-1' });
    expect(cached.clientSecret).toBe('secret-1');
    expect(rotated).toEqual({
      clientId: 'client-1',
      clientSecret: 'secret-2',
      previousClientSecret: 'secret-1',
    });
  });

  it('picks up a rotated secret at once with forceFresh', async () => {
    const credentials = new SecretsManagerCredentials({ client: aws.secrets, secretId: SECRET_ID });
    const before = await credentials.get();
    await rotateTo(`${before.clientSecret}-next`);

    const fresh = await credentials.get({ forceFresh: true });

    expect(fresh.clientSecret).toBe(`${before.clientSecret}-next`);
  });

  it('names the secret when it does not exist', async () => {
    const credentials = new SecretsManagerCredentials({
      client: aws.secrets,
      secretId: 'wise-broker/test/missing',
    });

    const reading = credentials.get();

    await expect(reading).rejects.toBeInstanceOf(CredentialsUnavailableError);
    await expect(reading).rejects.toThrow('secret "wise-broker/test/missing"');
  });
});
