import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { noteSecret } from '../leak-watch.ts';
import {
  AwsServiceError,
  epochSeconds,
  type JsonObject,
  type LocalService,
  type LocalServiceOptions,
  type Operation,
  optionalInteger,
  optionalString,
  optionalStringMap,
  requiredBlob,
  requiredString,
  validationError,
} from './json-protocol.ts';
import { readStateFile, writeStateFile } from './state-file.ts';

// The blob layout: magic, key id length, key id, IV, GCM tag, ciphertext. Carrying the key id is
// what lets Decrypt work without a KeyId, as it does in AWS.
const BLOB_MAGIC = Buffer.from('lkm1', 'ascii');
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const ALGORITHM = 'SYMMETRIC_DEFAULT';
const ALIAS_NAME = /^alias\/[A-Za-z0-9/_-]{1,250}$/;
const KEY_ID = /^[A-Za-z0-9-]{1,64}$/;

interface KmsKey {
  keyId: string;
  material: Buffer;
  creationDate: Date;
}

const KmsStateFile = z.object({
  keys: z.array(
    z.object({
      keyId: z.string().regex(KEY_ID),
      material: z.base64().refine((value) => Buffer.from(value, 'base64').length === KEY_BYTES),
      creationDate: z.iso.datetime(),
    }),
  ),
  aliases: z.record(z.string().regex(ALIAS_NAME), z.string()),
});

/**
 * A local stand-in for the symmetric-key part of AWS KMS: `Encrypt`, `Decrypt`, `DescribeKey` and
 * `GenerateRandom` (target prefix `TrentService`). Ciphertexts are AES-256-GCM under the key's own
 * material, with the canonicalised encryption context as additional authenticated data. They are not
 * AWS's ciphertext format, and key material is kept in plain form in the state file.
 */
export class LocalKms implements LocalService {
  readonly targetPrefix = 'TrentService';
  readonly operations: ReadonlyMap<string, Operation>;
  readonly #accountId: string;
  readonly #arnPrefix: string;
  readonly #stateFile: string | undefined;
  readonly #keys = new Map<string, KmsKey>();
  readonly #aliases = new Map<string, string>();

  constructor(options: LocalServiceOptions) {
    this.#accountId = options.accountId;
    this.#arnPrefix = `arn:aws:kms:${options.region}:${options.accountId}:`;
    this.#stateFile = options.stateFile;
    if (this.#stateFile !== undefined) this.#load(this.#stateFile);
    this.operations = new Map<string, Operation>([
      ['Encrypt', (input) => this.#encrypt(input)],
      ['Decrypt', (input) => this.#decrypt(input)],
      ['DescribeKey', (input) => this.#describeKey(input)],
      ['GenerateRandom', (input) => this.#generateRandom(input)],
    ]);
  }

  /**
   * Makes sure a key exists and answers its ARN. `alias/...` creates a key under that alias unless the
   * alias exists already; anything else is taken as a key id.
   */
  ensureKey(aliasOrId: string): string {
    if (ALIAS_NAME.test(aliasOrId)) {
      if (aliasOrId.startsWith('alias/aws/')) {
        throw new Error(`The alias ${aliasOrId} is reserved for AWS managed keys; choose another name.`);
      }
      let keyId = this.#aliases.get(aliasOrId);
      if (keyId === undefined) {
        keyId = this.#createKey(randomUUID()).keyId;
        this.#aliases.set(aliasOrId, keyId);
        this.#save();
      }
      return this.#keyArn(keyId);
    }
    if (!KEY_ID.test(aliasOrId)) {
      throw new Error(
        `"${aliasOrId}" is neither a key id (letters, digits and hyphens) nor an alias name such as alias/wise-broker-local.`,
      );
    }
    if (!this.#keys.has(aliasOrId)) {
      this.#createKey(aliasOrId);
      this.#save();
    }
    return this.#keyArn(aliasOrId);
  }

  /** The ARN of the key a key id, key ARN, alias name or alias ARN names; throws when there is none. */
  keyArn(reference: string): string {
    return this.#keyArn(this.#resolve(reference).keyId);
  }

  #encrypt(input: JsonObject): JsonObject {
    const key = this.#resolve(requiredString(input, 'KeyId', { min: 1, max: 2048 }));
    const plaintext = requiredBlob(input, 'Plaintext', { min: 1, max: 4096 });
    const context = optionalStringMap(input, 'EncryptionContext') ?? {};
    checkAlgorithm(input);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.material, iv);
    cipher.setAAD(additionalData(key.keyId, context));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const keyId = Buffer.from(key.keyId, 'ascii');
    const blob = Buffer.concat([
      BLOB_MAGIC,
      Buffer.of(keyId.length),
      keyId,
      iv,
      cipher.getAuthTag(),
      ciphertext,
    ]);
    return {
      CiphertextBlob: blob.toString('base64'),
      KeyId: this.#keyArn(key.keyId),
      EncryptionAlgorithm: ALGORITHM,
    };
  }

  #decrypt(input: JsonObject): JsonObject {
    const blob = parseBlob(requiredBlob(input, 'CiphertextBlob', { min: 1, max: 6144 }));
    const context = optionalStringMap(input, 'EncryptionContext') ?? {};
    checkAlgorithm(input);
    const requested = optionalString(input, 'KeyId', { min: 1, max: 2048 });
    if (blob === undefined) throw invalidCiphertext();
    if (requested !== undefined && this.#resolve(requested).keyId !== blob.keyId) {
      throw new AwsServiceError(
        'IncorrectKeyException',
        'The key ID in the request does not identify the KMS key that encrypted this ciphertext.',
      );
    }
    const key = this.#keys.get(blob.keyId);
    if (key === undefined) throw keyNotFound(this.#keyArn(blob.keyId));
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.material, blob.iv);
      decipher.setAAD(additionalData(key.keyId, context));
      decipher.setAuthTag(blob.tag);
      plaintext = Buffer.concat([decipher.update(blob.ciphertext), decipher.final()]);
    } catch {
      throw invalidCiphertext();
    }
    return {
      KeyId: this.#keyArn(key.keyId),
      Plaintext: plaintext.toString('base64'),
      EncryptionAlgorithm: ALGORITHM,
    };
  }

  #describeKey(input: JsonObject): JsonObject {
    const key = this.#resolve(requiredString(input, 'KeyId', { min: 1, max: 2048 }));
    return {
      KeyMetadata: {
        AWSAccountId: this.#accountId,
        KeyId: key.keyId,
        Arn: this.#keyArn(key.keyId),
        CreationDate: epochSeconds(key.creationDate),
        Enabled: true,
        Description: '',
        KeyUsage: 'ENCRYPT_DECRYPT',
        KeyState: 'Enabled',
        Origin: 'AWS_KMS',
        KeyManager: 'CUSTOMER',
        CustomerMasterKeySpec: ALGORITHM,
        KeySpec: ALGORITHM,
        EncryptionAlgorithms: [ALGORITHM],
        MultiRegion: false,
      },
    };
  }

  #generateRandom(input: JsonObject): JsonObject {
    const numberOfBytes = optionalInteger(input, 'NumberOfBytes', { min: 1, max: 1024 });
    if (numberOfBytes === undefined) throw validationError('NumberOfBytes', 'not be null');
    return { Plaintext: randomBytes(numberOfBytes).toString('base64') };
  }

  #resolve(reference: string): KmsKey {
    let name = reference;
    if (reference.startsWith('arn:')) {
      if (!reference.startsWith(this.#arnPrefix)) throw keyNotFound(reference);
      name = reference.slice(this.#arnPrefix.length);
      if (name.startsWith('key/')) name = name.slice('key/'.length);
      else if (!name.startsWith('alias/')) throw keyNotFound(reference);
    }
    if (name.startsWith('alias/')) {
      const keyId = this.#aliases.get(name);
      const key = keyId === undefined ? undefined : this.#keys.get(keyId);
      if (key === undefined) {
        throw new AwsServiceError('NotFoundException', `Alias ${this.#arnPrefix}${name} is not found.`);
      }
      return key;
    }
    const key = this.#keys.get(name);
    if (key === undefined) throw keyNotFound(KEY_ID.test(name) ? this.#keyArn(name) : reference);
    return key;
  }

  #keyArn(keyId: string): string {
    return `${this.#arnPrefix}key/${keyId}`;
  }

  #createKey(keyId: string): KmsKey {
    const key = { keyId, material: randomBytes(KEY_BYTES), creationDate: new Date() };
    noteSecret('key_material', key.material.toString('base64'));
    this.#keys.set(keyId, key);
    return key;
  }

  #load(stateFile: string): void {
    const state = readStateFile(stateFile, KmsStateFile);
    for (const key of state?.keys ?? []) {
      this.#keys.set(key.keyId, {
        keyId: key.keyId,
        material: Buffer.from(key.material, 'base64'),
        creationDate: new Date(key.creationDate),
      });
    }
    for (const [alias, keyId] of Object.entries(state?.aliases ?? {})) this.#aliases.set(alias, keyId);
  }

  #save(): void {
    if (this.#stateFile === undefined) return;
    writeStateFile(this.#stateFile, {
      keys: [...this.#keys.values()].map((key) => ({
        keyId: key.keyId,
        material: key.material.toString('base64'),
        creationDate: key.creationDate.toISOString(),
      })),
      aliases: Object.fromEntries(this.#aliases),
    });
  }
}

function checkAlgorithm(input: JsonObject): void {
  const algorithm = optionalString(input, 'EncryptionAlgorithm');
  if (algorithm !== undefined && algorithm !== ALGORITHM) {
    throw new AwsServiceError(
      'InvalidKeyUsageException',
      `The local KMS keys are symmetric and support only the ${ALGORITHM} encryption algorithm.`,
    );
  }
}

/** The encryption context in one canonical form: the order of its entries does not matter, as in AWS. */
function additionalData(keyId: string, context: Record<string, string>): Buffer {
  const entries = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify([keyId, entries]), 'utf8');
}

interface ParsedBlob {
  keyId: string;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

function parseBlob(blob: Buffer): ParsedBlob | undefined {
  if (blob.length < BLOB_MAGIC.length + 1 || !blob.subarray(0, BLOB_MAGIC.length).equals(BLOB_MAGIC)) {
    return undefined;
  }
  const keyIdEnd = BLOB_MAGIC.length + 1 + (blob[BLOB_MAGIC.length] ?? 0);
  const tagEnd = keyIdEnd + IV_BYTES + TAG_BYTES;
  if (blob.length < tagEnd) return undefined;
  const keyId = blob.subarray(BLOB_MAGIC.length + 1, keyIdEnd).toString('ascii');
  if (!KEY_ID.test(keyId)) return undefined;
  return {
    keyId,
    iv: blob.subarray(keyIdEnd, keyIdEnd + IV_BYTES),
    tag: blob.subarray(keyIdEnd + IV_BYTES, tagEnd),
    ciphertext: blob.subarray(tagEnd),
  };
}

function invalidCiphertext(): AwsServiceError {
  return new AwsServiceError(
    'InvalidCiphertextException',
    'The ciphertext is not valid, or the encryption context does not match the one it was encrypted with.',
  );
}

function keyNotFound(reference: string): AwsServiceError {
  return new AwsServiceError('NotFoundException', `Key '${reference}' does not exist`);
}
