import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CredentialsUnavailableError,
  SecretsManagerCredentials,
} from '#shared/adapters/secrets-manager-credentials.ts';
import { DependencyUnavailableError } from '#shared/domain/errors.ts';

const secretsManager = mockClient(SecretsManagerClient);
const client = new SecretsManagerClient({
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIAUNITTEST', secretAccessKey: 'unit-test-only' },
});
const SECRET_ID = 'wise-broker/prod/wise-client';

function secret(value: unknown) {
  return { SecretString: JSON.stringify(value) };
}

beforeEach(() => {
  secretsManager.reset();
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(new Date('2026-11-26T12:00:00Z'));
});

afterEach(() => {
  vi.useRealTimers();
});

afterAll(() => {
  secretsManager.restore();
  client.destroy();
});

describe('SecretsManagerCredentials', () => {
  it('reads the secret by its id and returns the credentials with the mTLS material', async () => {
    secretsManager.on(GetSecretValueCommand).resolves(
      secret({
        clientId: 'client-1',
        clientSecret: 'secret-1',
        previousClientSecret: 'secret-0',
        mtls: { certificate: 'CERT', privateKey: 'KEY', ca: 'CA' },
        note: 'ignored',
      }),
    );

    const credentials = await new SecretsManagerCredentials({ client, secretId: SECRET_ID }).get();

    expect(secretsManager.commandCalls(GetSecretValueCommand).map((call) => call.args[0].input)).toEqual([
      { SecretId: SECRET_ID },
    ]);
    expect(credentials).toEqual({
      clientId: 'client-1',
      clientSecret: 'secret-1',
      previousClientSecret: 'secret-0',
      mtls: { certificate: 'CERT', privateKey: 'KEY', ca: 'CA' },
    });
  });

  it('reuses the cached secret until maxAge has passed, then reads the rotated one', async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .resolvesOnce(secret({ clientId: 'client-1', clientSecret: 'secret-1' }))
      .resolves(secret({ clientId: 'client-1', clientSecret: 'secret-2' }));
    const credentials = new SecretsManagerCredentials({ client, secretId: SECRET_ID, maxAgeSeconds: 60 });
    await credentials.get();

    vi.advanceTimersByTime(59_000);
    const cached = await credentials.get();
    vi.advanceTimersByTime(2_000);
    const rotated = await credentials.get();

    expect(cached.clientSecret).toBe('secret-1');
    expect(rotated.clientSecret).toBe('secret-2');
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('caches for 300 seconds unless told otherwise', async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .resolves(secret({ clientId: 'client-1', clientSecret: 'secret-1' }));
    const credentials = new SecretsManagerCredentials({ client, secretId: SECRET_ID });
    await credentials.get();

    vi.advanceTimersByTime(299_000);
    await credentials.get();
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    vi.advanceTimersByTime(2_000);
    await credentials.get();

    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('reads the secret again at once with forceFresh', async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .resolvesOnce(secret({ clientId: 'client-1', clientSecret: 'secret-1' }))
      .resolves(secret({ clientId: 'client-1', clientSecret: 'secret-2' }));
    const credentials = new SecretsManagerCredentials({ client, secretId: SECRET_ID });
    await credentials.get();

    const fresh = await credentials.get({ forceFresh: true });

    expect(fresh.clientSecret).toBe('secret-2');
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('reads a secret stored as binary', async () => {
    secretsManager.on(GetSecretValueCommand).resolves({
      SecretBinary: new TextEncoder().encode(
        JSON.stringify({ clientId: 'client-1', clientSecret: 'secret-1' }),
      ),
    });

    const credentials = await new SecretsManagerCredentials({ client, secretId: SECRET_ID }).get();

    expect(credentials).toEqual({ clientId: 'client-1', clientSecret: 'secret-1' });
  });

  it.each([
    [
      'no clientSecret',
      { clientId: 'client-1' },
      'clientSecret',
      `Secret "${SECRET_ID}" has no "clientSecret"`,
    ],
    [
      'an empty clientId',
      { clientId: '', clientSecret: 'secret-1' },
      'clientId',
      `Secret "${SECRET_ID}" has an invalid "clientId": it must be a non-empty string.`,
    ],
    [
      'mTLS without its key',
      { clientId: 'client-1', clientSecret: 'secret-1', mtls: { certificate: 'CERT' } },
      'mtls.privateKey',
      `Secret "${SECRET_ID}" has no "mtls.privateKey"`,
    ],
    [
      'mTLS that is not an object',
      { clientId: 'client-1', clientSecret: 'secret-1', mtls: 'CERT' },
      'mtls',
      `Secret "${SECRET_ID}" has an invalid "mtls": it must be an object.`,
    ],
  ])('rejects a secret with %s, naming the field but no value', async (_, value, field, message) => {
    secretsManager.on(GetSecretValueCommand).resolves(secret(value));

    const reading = new SecretsManagerCredentials({ client, secretId: SECRET_ID }).get();

    await expect(reading).rejects.toBeInstanceOf(CredentialsUnavailableError);
    await expect(reading).rejects.toMatchObject({ secretId: SECRET_ID, field });
    await expect(reading).rejects.toThrow(message);
    await expect(reading).rejects.not.toThrow(/secret-1|CERT/);
  });

  it('rejects a secret that is not JSON without quoting it', async () => {
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: 'secret-1 plain text' });

    const reading = new SecretsManagerCredentials({ client, secretId: SECRET_ID }).get();

    await expect(reading).rejects.toThrow(`Secret "${SECRET_ID}" does not hold JSON`);
    await expect(reading).rejects.not.toThrow(/secret-1/);
    await expect(reading).rejects.not.toHaveProperty('cause');
  });

  it('rejects JSON that is not an object', async () => {
    secretsManager.on(GetSecretValueCommand).resolves({ SecretString: '"secret-1"' });

    const reading = new SecretsManagerCredentials({ client, secretId: SECRET_ID }).get();

    await expect(reading).rejects.toThrow(
      `Secret "${SECRET_ID}" must hold a JSON object with "clientId" and "clientSecret".`,
    );
  });

  it('says which secret could not be read when Secrets Manager fails', async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .rejects(new ResourceNotFoundException({ message: 'not found', $metadata: {} }));

    const reading = new SecretsManagerCredentials({ client, secretId: SECRET_ID }).get();

    await expect(reading).rejects.toBeInstanceOf(CredentialsUnavailableError);
    await expect(reading).rejects.toThrow(`could not be read from secret "${SECRET_ID}"`);
  });

  it('lets Secrets Manager being unavailable through as such, for the caller to try again shortly', async () => {
    // What the client's unavailability middleware throws once the SDK gives up (the mock replaces `send`).
    const unavailable = new DependencyUnavailableError('Secrets Manager', {
      cause: Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }),
    });
    secretsManager.on(GetSecretValueCommand).rejects(unavailable);

    const reading = new SecretsManagerCredentials({ client, secretId: SECRET_ID }).get();

    await expect(reading).rejects.toBe(unavailable);
  });
});
