import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KmsTokenCipher } from '#shared/adapters/kms-token-cipher.ts';
import { TokenDecryptionError } from '#shared/domain/errors.ts';
import type { CipherContext, SealBinding } from '#shared/ports/token-cipher.ts';
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

  describe('envelope encryption of stored secrets', () => {
    const acme = { kind: 'connection', connectionId: 'acme-1' } as const;
    const acmeAt7: SealBinding = { record: acme, generation: 7 };

    it('seals both tokens of a write with one data key and opens them with one decryption', async () => {
      const sealer = await cipher.prepare(acmeAt7);
      const access = sealer.seal('the-access-token', 'access_token');
      const refresh = sealer.seal('the-refresh-token', 'refresh_token');

      const opener = await cipher.open(sealer.dataKey, acmeAt7);

      expect(opener.open(access, 'access_token')).toBe('the-access-token');
      expect(opener.open(refresh, 'refresh_token')).toBe('the-refresh-token');
      expect(Buffer.from(access).includes(Buffer.from('the-access-token'))).toBe(false);
    });

    it.each<[string, SealBinding]>([
      ['another connection', { record: { kind: 'connection', connectionId: 'acme-2' }, generation: 7 }],
      ['the client token', { record: { kind: 'client' }, generation: 7 }],
      ['another generation of the same connection', { record: acme, generation: 6 }],
    ])('refuses a data key moved to %s with TokenDecryptionError', async (_, movedTo) => {
      const sealer = await cipher.prepare(acmeAt7);

      await expect(cipher.open(sealer.dataKey, movedTo)).rejects.toBeInstanceOf(TokenDecryptionError);
    });

    it('refuses a sealed token opened as another kind, or under another write of the same generation', async () => {
      const sealer = await cipher.prepare(acmeAt7);
      const access = sealer.seal('the-access-token', 'access_token');
      const otherWrite = await cipher.prepare(acmeAt7);

      const opener = await cipher.open(sealer.dataKey, acmeAt7);
      const otherOpener = await cipher.open(otherWrite.dataKey, acmeAt7);

      expect(() => opener.open(access, 'refresh_token')).toThrow(TokenDecryptionError);
      expect(() => otherOpener.open(access, 'access_token')).toThrow(TokenDecryptionError);
    });

    it('refuses a data key of another deployment', async () => {
      const staging = new KmsTokenCipher({ client: aws.kms, keyId: TEST_KEY_ALIAS, deployment: 'staging' });
      const sealer = await staging.prepare(acmeAt7);

      await expect(cipher.open(sealer.dataKey, acmeAt7)).rejects.toBeInstanceOf(TokenDecryptionError);
    });
  });
});
