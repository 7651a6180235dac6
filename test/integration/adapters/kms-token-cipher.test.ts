import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KmsTokenCipher } from '#shared/adapters/kms-token-cipher.ts';
import { TokenDecryptionError } from '#shared/domain/errors.ts';
import type { CipherContext } from '#shared/ports/token-cipher.ts';
import { TEST_KEY_ALIAS, type TestLocalAws, testLocalAws } from '../../support/aws.ts';

const OTHER_KEY_ALIAS = 'alias/wise-broker-other';
const accessOfAcme: CipherContext = {
  record: { kind: 'connection', connectionId: 'acme-1' },
  kind: 'access_token',
};

let aws: TestLocalAws;
let cipher: KmsTokenCipher;

beforeAll(async () => {
  aws = await testLocalAws({ keys: [TEST_KEY_ALIAS, OTHER_KEY_ALIAS] });
  cipher = new KmsTokenCipher({ client: aws.kms, keyId: TEST_KEY_ALIAS, deployment: 'test' });
});

afterAll(async () => {
  await aws?.close();
});

describe('KmsTokenCipher on the local KMS', () => {
  it('decrypts what it encrypted for the same record and kind', async () => {
    const ciphertext = await cipher.encrypt('the-access-token', accessOfAcme);

    const plaintext = await cipher.decrypt(ciphertext, accessOfAcme);

    expect(plaintext).toBe('the-access-token');
    expect(Buffer.from(ciphertext).includes(Buffer.from('the-access-token'))).toBe(false);
  });

  it('round-trips the client token', async () => {
    const context: CipherContext = { record: { kind: 'client' }, kind: 'access_token' };

    const plaintext = await cipher.decrypt(await cipher.encrypt('client-token', context), context);

    expect(plaintext).toBe('client-token');
  });

  it.each<[string, CipherContext]>([
    ['another connection', { record: { kind: 'connection', connectionId: 'acme-2' }, kind: 'access_token' }],
    ['the client token', { record: { kind: 'client' }, kind: 'access_token' }],
    [
      'another kind of secret',
      { record: { kind: 'connection', connectionId: 'acme-1' }, kind: 'refresh_token' },
    ],
  ])('refuses a ciphertext moved to %s with TokenDecryptionError', async (_, movedTo) => {
    const ciphertext = await cipher.encrypt('the-access-token', accessOfAcme);

    const decryption = cipher.decrypt(ciphertext, movedTo);

    await expect(decryption).rejects.toBeInstanceOf(TokenDecryptionError);
    await expect(decryption).rejects.not.toThrow(/the-access-token/);
  });

  it('refuses a ciphertext of another deployment', async () => {
    const staging = new KmsTokenCipher({ client: aws.kms, keyId: TEST_KEY_ALIAS, deployment: 'staging' });
    const ciphertext = await staging.encrypt('the-access-token', accessOfAcme);

    await expect(cipher.decrypt(ciphertext, accessOfAcme)).rejects.toBeInstanceOf(TokenDecryptionError);
  });

  it('refuses a ciphertext made under another key', async () => {
    const otherKey = new KmsTokenCipher({ client: aws.kms, keyId: OTHER_KEY_ALIAS, deployment: 'test' });
    const ciphertext = await otherKey.encrypt('the-access-token', accessOfAcme);

    const decryption = cipher.decrypt(ciphertext, accessOfAcme);

    await expect(decryption).rejects.toBeInstanceOf(TokenDecryptionError);
    await expect(decryption).rejects.toMatchObject({ cause: { name: 'IncorrectKeyException' } });
  });

  it('refuses a ciphertext that was altered', async () => {
    const ciphertext = await cipher.encrypt('the-access-token', accessOfAcme);
    const altered = Uint8Array.from(ciphertext);
    altered[altered.length - 1] = (altered[altered.length - 1] ?? 0) ^ 0xff;

    await expect(cipher.decrypt(altered, accessOfAcme)).rejects.toBeInstanceOf(TokenDecryptionError);
  });
});
