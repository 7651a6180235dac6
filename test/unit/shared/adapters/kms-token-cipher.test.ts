import {
  DecryptCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  IncorrectKeyException,
  InvalidCiphertextException,
  KMSClient,
  KMSInternalException,
} from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { KmsTokenCipher } from '#shared/adapters/kms-token-cipher.ts';
import { TokenDecryptionError } from '#shared/domain/errors.ts';

const kms = mockClient(KMSClient);
const client = new KMSClient({
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIAUNITTEST', secretAccessKey: 'unit-test-only' },
});
const KEY_ID = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const cipher = new KmsTokenCipher({ client, keyId: KEY_ID, deployment: 'prod' });
const connection = { kind: 'connection', connectionId: 'acme-1' } as const;

beforeEach(() => {
  kms.reset();
});

afterAll(() => {
  kms.restore();
  client.destroy();
});

describe('KmsTokenCipher', () => {
  it('asks for one AES-256 data key per write, bound to the deployment, record and generation', async () => {
    const dataKey = new Uint8Array(32).fill(7);
    kms.on(GenerateDataKeyCommand).resolves({ Plaintext: dataKey, CiphertextBlob: new Uint8Array([5, 5]) });
    kms.on(DecryptCommand).resolves({ Plaintext: dataKey });

    const sealer = await cipher.prepare({ record: connection, generation: 3 });
    const sealed = [sealer.seal('access', 'access_token'), sealer.seal('refresh', 'refresh_token')];
    const opener = await cipher.open(sealer.dataKey, { record: connection, generation: 3 });

    const context = { deployment: 'prod', record: 'connection:acme-1', kind: 'data_key', generation: '3' };
    expect(kms.commandCalls(GenerateDataKeyCommand).map((call) => call.args[0].input)).toEqual([
      { KeyId: KEY_ID, KeySpec: 'AES_256', EncryptionContext: context },
    ]);
    expect(kms.commandCalls(DecryptCommand).map((call) => call.args[0].input)).toEqual([
      { KeyId: KEY_ID, CiphertextBlob: new Uint8Array([5, 5]), EncryptionContext: context },
    ]);
    expect(
      sealed.map((ciphertext, i) => opener.open(ciphertext, i === 0 ? 'access_token' : 'refresh_token')),
    ).toEqual(['access', 'refresh']);
  });

  it('turns a data key that KMS refuses under the binding into TokenDecryptionError', async () => {
    kms.on(DecryptCommand).rejects(new InvalidCiphertextException({ message: 'bad', $metadata: {} }));

    const opening = cipher.open(new Uint8Array([1]), { record: connection, generation: 3 });

    await expect(opening).rejects.toBeInstanceOf(TokenDecryptionError);
  });

  it('encrypts with the key and a context naming the deployment, the connection and the kind', async () => {
    kms.on(EncryptCommand).resolves({ CiphertextBlob: new Uint8Array([9, 9, 9]) });

    const ciphertext = await cipher.encrypt('token-value', { record: connection, kind: 'access_token' });

    expect(ciphertext).toEqual(new Uint8Array([9, 9, 9]));
    expect(kms.commandCalls(EncryptCommand).map((call) => call.args[0].input)).toEqual([
      {
        KeyId: KEY_ID,
        Plaintext: new TextEncoder().encode('token-value'),
        EncryptionContext: { deployment: 'prod', record: 'connection:acme-1', kind: 'access_token' },
      },
    ]);
  });

  it('names the client token record "client" in the context', async () => {
    kms.on(EncryptCommand).resolves({ CiphertextBlob: new Uint8Array([1]) });

    await cipher.encrypt('token-value', { record: { kind: 'client' }, kind: 'access_token' });

    expect(kms.commandCalls(EncryptCommand)[0]?.args[0].input.EncryptionContext).toEqual({
      deployment: 'prod',
      record: 'client',
      kind: 'access_token',
    });
  });

  it("names an admin listing's cursor after the listing's principal and the list_cursor kind", async () => {
    kms.on(EncryptCommand).resolves({ CiphertextBlob: new Uint8Array([2]) });
    const principal = 'arn:aws:iam::123456789012:role/broker-admin';

    await cipher.encrypt('{"s":"active"}', { record: { kind: 'listing', principal }, kind: 'list_cursor' });

    expect(kms.commandCalls(EncryptCommand)[0]?.args[0].input.EncryptionContext).toEqual({
      deployment: 'prod',
      record: 'listing:arn:aws:iam::123456789012:role/broker-admin',
      kind: 'list_cursor',
    });
  });

  it('decrypts with the key id and the same context', async () => {
    kms.on(DecryptCommand).resolves({ Plaintext: new TextEncoder().encode('refresh-value') });

    const plaintext = await cipher.decrypt(new Uint8Array([7, 7]), {
      record: connection,
      kind: 'refresh_token',
    });

    expect(plaintext).toBe('refresh-value');
    expect(kms.commandCalls(DecryptCommand).map((call) => call.args[0].input)).toEqual([
      {
        KeyId: KEY_ID,
        CiphertextBlob: new Uint8Array([7, 7]),
        EncryptionContext: { deployment: 'prod', record: 'connection:acme-1', kind: 'refresh_token' },
      },
    ]);
  });

  it.each([
    ['InvalidCiphertextException', new InvalidCiphertextException({ message: 'bad', $metadata: {} })],
    ['IncorrectKeyException', new IncorrectKeyException({ message: 'wrong key', $metadata: {} })],
  ])('turns %s into a TokenDecryptionError naming the record and kind', async (_, error) => {
    kms.on(DecryptCommand).rejects(error);

    const decryption = cipher.decrypt(new Uint8Array([1, 2, 3]), {
      record: connection,
      kind: 'registration_code',
    });

    await expect(decryption).rejects.toBeInstanceOf(TokenDecryptionError);
    await expect(decryption).rejects.toThrow(
      'The stored registration_code of connection "acme-1" did not decrypt',
    );
    await expect(decryption).rejects.toMatchObject({ cause: error });
  });

  it('turns a listing cursor that does not decrypt into a TokenDecryptionError naming the listing', async () => {
    kms.on(DecryptCommand).rejects(new InvalidCiphertextException({ message: 'bad', $metadata: {} }));
    const principal = 'arn:aws:iam::123456789012:role/broker-admin';

    const decryption = cipher.decrypt(new Uint8Array([1]), {
      record: { kind: 'listing', principal },
      kind: 'list_cursor',
    });

    await expect(decryption).rejects.toBeInstanceOf(TokenDecryptionError);
    await expect(decryption).rejects.toThrow(
      `The list_cursor of the connection listing of ${principal} did not decrypt`,
    );
  });

  it('passes on KMS failures that say nothing about the ciphertext', async () => {
    const unavailable = new KMSInternalException({ message: 'internal', $metadata: {} });
    kms.on(DecryptCommand).rejects(unavailable);

    const decryption = cipher.decrypt(new Uint8Array([1]), { record: connection, kind: 'access_token' });

    await expect(decryption).rejects.toBe(unavailable);
  });
});
