import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateRandomCommand,
  IncorrectKeyException,
  InvalidCiphertextException,
  NotFoundException,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestLocalAws, testLocalAws } from '../../support/aws.ts';

const KEY_A = 'alias/wise-broker-key-a';
const KEY_B = 'alias/wise-broker-key-b';
const PLAINTEXT = Buffer.from('an access token stands here', 'utf8');
const CONTEXT = { connectionId: 'connection-1', tokenKind: 'access', deployment: 'test' };

describe('local KMS', () => {
  let aws: TestLocalAws;

  beforeAll(async () => {
    aws = await testLocalAws({ keys: [KEY_A, KEY_B, 'plain-key-id'] });
  });

  afterAll(() => aws.close());

  async function encrypt(keyId: string, context: Record<string, string> = CONTEXT): Promise<Uint8Array> {
    const { CiphertextBlob } = await aws.kms.send(
      new EncryptCommand({ KeyId: keyId, Plaintext: PLAINTEXT, EncryptionContext: context }),
    );
    if (CiphertextBlob === undefined) throw new Error('Encrypt answered no CiphertextBlob.');
    return CiphertextBlob;
  }

  it('decrypts its ciphertext under the same context, taking the key from the ciphertext', async () => {
    const ciphertext = await encrypt(KEY_A);

    const result = await aws.kms.send(
      new DecryptCommand({ CiphertextBlob: ciphertext, EncryptionContext: CONTEXT }),
    );

    expect(Buffer.from(result.Plaintext ?? [])).toEqual(PLAINTEXT);
    expect(result.KeyId).toBe(aws.keyArn(KEY_A));
    expect(result.EncryptionAlgorithm).toBe('SYMMETRIC_DEFAULT');
  });

  it('does not put the plaintext into the ciphertext', async () => {
    const ciphertext = Buffer.from(await encrypt(KEY_A));

    expect(ciphertext.includes(PLAINTEXT)).toBe(false);
  });

  it('accepts the encryption context entries in any order', async () => {
    const ciphertext = await encrypt(KEY_A, { a: '1', b: '2' });

    const result = await aws.kms.send(
      new DecryptCommand({ CiphertextBlob: ciphertext, EncryptionContext: { b: '2', a: '1' } }),
    );

    expect(Buffer.from(result.Plaintext ?? [])).toEqual(PLAINTEXT);
  });

  it.each([
    ['another value', { ...CONTEXT, connectionId: 'connection-2' }],
    ['a missing entry', { connectionId: 'connection-1', tokenKind: 'access' }],
    ['an extra entry', { ...CONTEXT, extra: 'x' }],
    ['no context', undefined],
  ])('refuses to decrypt under a context with %s with InvalidCiphertextException', async (_, context) => {
    const ciphertext = await encrypt(KEY_A);

    const decrypt = aws.kms.send(
      new DecryptCommand({ CiphertextBlob: ciphertext, EncryptionContext: context }),
    );

    await expect(decrypt).rejects.toBeInstanceOf(InvalidCiphertextException);
  });

  it('refuses an altered ciphertext with InvalidCiphertextException', async () => {
    const ciphertext = Buffer.from(await encrypt(KEY_A));
    ciphertext[ciphertext.length - 1] = (ciphertext.at(-1) ?? 0) ^ 0x01;

    const decrypt = aws.kms.send(
      new DecryptCommand({ CiphertextBlob: ciphertext, EncryptionContext: CONTEXT }),
    );

    await expect(decrypt).rejects.toBeInstanceOf(InvalidCiphertextException);
  });

  it('refuses bytes that are no ciphertext of its own with InvalidCiphertextException', async () => {
    const decrypt = aws.kms.send(new DecryptCommand({ CiphertextBlob: Buffer.from('not a ciphertext') }));

    await expect(decrypt).rejects.toBeInstanceOf(InvalidCiphertextException);
  });

  it('refuses a ciphertext of key A decrypted with KeyId B with IncorrectKeyException', async () => {
    const ciphertext = await encrypt(KEY_A);

    const decrypt = aws.kms.send(
      new DecryptCommand({ CiphertextBlob: ciphertext, EncryptionContext: CONTEXT, KeyId: KEY_B }),
    );

    await expect(decrypt).rejects.toBeInstanceOf(IncorrectKeyException);
  });

  it('decrypts when the KeyId names the key that encrypted', async () => {
    const ciphertext = await encrypt(KEY_A);

    const result = await aws.kms.send(
      new DecryptCommand({
        CiphertextBlob: ciphertext,
        EncryptionContext: CONTEXT,
        KeyId: aws.keyArn(KEY_A),
      }),
    );

    expect(Buffer.from(result.Plaintext ?? [])).toEqual(PLAINTEXT);
  });

  it('addresses one key by key id, key ARN, alias name and alias ARN', async () => {
    const keyArn = aws.keyArn(KEY_A);
    const keyId = keyArn.split('/').at(-1) ?? '';
    const references = [keyId, keyArn, KEY_A, `arn:aws:kms:us-east-1:000000000000:${KEY_A}`];

    const described = await Promise.all(
      references.map((reference) => aws.kms.send(new DescribeKeyCommand({ KeyId: reference }))),
    );
    const encryptedWith = await Promise.all(
      references.map(async (reference) => {
        const ciphertext = await encrypt(reference);
        const result = await aws.kms.send(
          new DecryptCommand({ CiphertextBlob: ciphertext, EncryptionContext: CONTEXT }),
        );
        return result.KeyId;
      }),
    );

    expect(described.map((answer) => answer.KeyMetadata?.Arn)).toEqual(references.map(() => keyArn));
    expect(described[0]?.KeyMetadata).toMatchObject({
      KeyId: keyId,
      AWSAccountId: '000000000000',
      Enabled: true,
      KeyState: 'Enabled',
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeySpec: 'SYMMETRIC_DEFAULT',
    });
    expect(encryptedWith).toEqual(references.map(() => keyArn));
  });

  it('creates a key under the exact id it was given', () => {
    expect(aws.keyArn('plain-key-id')).toBe('arn:aws:kms:us-east-1:000000000000:key/plain-key-id');
  });

  it.each([
    ['an unknown alias', 'alias/no-such-key'],
    ['an unknown key id', '0f4b1b0e-0000-4000-8000-000000000000'],
    ['a key ARN of another account', 'arn:aws:kms:us-east-1:111111111111:key/plain-key-id'],
  ])('answers NotFoundException for %s', async (_, keyId) => {
    const describeKey = aws.kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    const encryptWith = aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: PLAINTEXT }));

    await expect(describeKey).rejects.toBeInstanceOf(NotFoundException);
    await expect(encryptWith).rejects.toBeInstanceOf(NotFoundException);
  });

  it('throws from keyArn for a key it does not hold', () => {
    expect(() => aws.keyArn('alias/no-such-key')).toThrow(/alias\/no-such-key is not found/);
  });

  it('generates the number of random bytes asked for', async () => {
    const first = await aws.kms.send(new GenerateRandomCommand({ NumberOfBytes: 32 }));
    const second = await aws.kms.send(new GenerateRandomCommand({ NumberOfBytes: 32 }));

    expect(first.Plaintext).toHaveLength(32);
    expect(Buffer.from(first.Plaintext ?? [])).not.toEqual(Buffer.from(second.Plaintext ?? []));
  });

  it.each([0, 1025])(
    'refuses to generate %i random bytes with ValidationException',
    async (numberOfBytes) => {
      const generate = aws.kms.send(new GenerateRandomCommand({ NumberOfBytes: numberOfBytes }));

      await expect(generate).rejects.toMatchObject({
        name: 'ValidationException',
        $metadata: { httpStatusCode: 400 },
      });
    },
  );

  it('generates a data key whose ciphertext decrypts to it under the same context only', async () => {
    const generated = await aws.kms.send(
      new GenerateDataKeyCommand({ KeyId: KEY_A, KeySpec: 'AES_256', EncryptionContext: CONTEXT }),
    );

    const opened = await aws.kms.send(
      new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: CONTEXT }),
    );
    const elsewhere = aws.kms.send(
      new DecryptCommand({
        CiphertextBlob: generated.CiphertextBlob,
        EncryptionContext: { ...CONTEXT, connectionId: 'connection-2' },
      }),
    );

    expect(generated.Plaintext).toHaveLength(32);
    expect(generated.KeyId).toBe(aws.keyArn(KEY_A));
    expect(Buffer.from(opened.Plaintext ?? [])).toEqual(Buffer.from(generated.Plaintext ?? []));
    await expect(elsewhere).rejects.toBeInstanceOf(InvalidCiphertextException);
  });

  it('generates a data key of NumberOfBytes, and a new one every time', async () => {
    const first = await aws.kms.send(new GenerateDataKeyCommand({ KeyId: KEY_A, NumberOfBytes: 16 }));
    const second = await aws.kms.send(new GenerateDataKeyCommand({ KeyId: KEY_A, NumberOfBytes: 16 }));

    expect(first.Plaintext).toHaveLength(16);
    expect(Buffer.from(first.Plaintext ?? [])).not.toEqual(Buffer.from(second.Plaintext ?? []));
  });

  it('refuses a data key request with neither or both of KeySpec and NumberOfBytes', async () => {
    const neither = aws.kms.send(new GenerateDataKeyCommand({ KeyId: KEY_A }));
    const both = aws.kms.send(
      new GenerateDataKeyCommand({ KeyId: KEY_A, KeySpec: 'AES_256', NumberOfBytes: 32 }),
    );

    await expect(neither).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(both).rejects.toMatchObject({ name: 'ValidationException' });
  });

  it('refuses an empty plaintext with ValidationException', async () => {
    const encryptEmpty = aws.kms.send(new EncryptCommand({ KeyId: KEY_A, Plaintext: new Uint8Array() }));

    await expect(encryptEmpty).rejects.toMatchObject({ name: 'ValidationException' });
  });
});

describe('local KMS across restarts', () => {
  const folders: string[] = [];

  afterAll(async () => {
    for (const folder of folders) await rm(folder, { recursive: true, force: true });
  });

  async function encryptThenRestart(
    dataDir: string | null,
  ): Promise<{ ciphertext: Uint8Array; keyArn: string }> {
    const first = await testLocalAws({ dataDir, keys: [KEY_A] });
    try {
      const { CiphertextBlob } = await first.kms.send(
        new EncryptCommand({ KeyId: KEY_A, Plaintext: PLAINTEXT, EncryptionContext: CONTEXT }),
      );
      return { ciphertext: CiphertextBlob ?? new Uint8Array(), keyArn: first.keyArn(KEY_A) };
    } finally {
      await first.close();
    }
  }

  it('decrypts after a restart with the same data folder, under the same key and alias', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'local-kms-'));
    folders.push(dataDir);
    const { ciphertext, keyArn } = await encryptThenRestart(dataDir);

    const second = await testLocalAws({ dataDir, keys: [KEY_A] });
    try {
      const result = await second.kms.send(
        new DecryptCommand({ CiphertextBlob: ciphertext, EncryptionContext: CONTEXT, KeyId: KEY_A }),
      );

      expect(second.keyArn(KEY_A)).toBe(keyArn);
      expect(Buffer.from(result.Plaintext ?? [])).toEqual(PLAINTEXT);
    } finally {
      await second.close();
    }
  });

  it('cannot decrypt after a restart in memory, since the key is gone', async () => {
    const { ciphertext } = await encryptThenRestart(null);

    const second = await testLocalAws({ dataDir: null, keys: [KEY_A] });
    try {
      const decrypt = second.kms.send(
        new DecryptCommand({ CiphertextBlob: ciphertext, EncryptionContext: CONTEXT }),
      );

      await expect(decrypt).rejects.toBeInstanceOf(NotFoundException);
    } finally {
      await second.close();
    }
  });
});
