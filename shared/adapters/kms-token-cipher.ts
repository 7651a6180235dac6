import { DecryptCommand, EncryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { BrokerError, TokenDecryptionError } from '#shared/domain/errors.ts';
import type { CipherKind, CipherRecord } from '#shared/domain/records.ts';
import type {
  CipherContext,
  RecordOpener,
  RecordSealer,
  SealBinding,
  TokenCipher,
} from '#shared/ports/token-cipher.ts';
import { reportUnavailable } from './aws-unavailable.ts';
import { DATA_KEY_BYTES, envelopeOpener, envelopeSealer } from './envelope.ts';

/** What {@link KmsTokenCipher} is built from. */
export interface KmsTokenCipherOptions {
  /** A client built by the composition root (credentials, region or local endpoint already set). */
  client: KMSClient;
  /** The customer-managed key's id, ARN or alias. */
  keyId: string;
  /** The deployment's name; part of every encryption context, so stages cannot read each other's data. */
  deployment: string;
}

/** KMS errors that mean "this ciphertext does not belong here", as opposed to KMS being unavailable. */
const MISMATCH_ERRORS = new Set(['InvalidCiphertextException', 'IncorrectKeyException']);

/** The encryption context's `kind` of a record's data key (stored tokens and registration codes). */
export const DATA_KEY_KIND = 'data_key' satisfies CipherKind;

/**
 * Stored tokens and registration codes use envelope encryption: every write of a record gets a data key of
 * its own from `GenerateDataKey` under the encryption context
 * `{ deployment, record, kind: "data_key", generation }`, and each secret is sealed locally with AES-256-GCM
 * under it, with the deployment, record, generation and secret kind as additional data. So one KMS call
 * serves every secret of a write (and is made before Wise is called), one `Decrypt` opens them, each use
 * is a CloudTrail entry naming the record and its generation, and a ciphertext (or data key) moved to
 * another record, kind, deployment or generation fails to decrypt. The listing cursor is sealed by KMS
 * itself with `{ deployment, record, kind }`.
 */
export class KmsTokenCipher implements TokenCipher {
  readonly #client: KMSClient;
  readonly #keyId: string;
  readonly #deployment: string;

  constructor(options: KmsTokenCipherOptions) {
    reportUnavailable(options.client, 'KMS');
    this.#client = options.client;
    this.#keyId = options.keyId;
    this.#deployment = options.deployment;
  }

  async encrypt(plaintext: string, context: CipherContext): Promise<Uint8Array> {
    const output = await this.#client.send(
      new EncryptCommand({
        KeyId: this.#keyId,
        Plaintext: new TextEncoder().encode(plaintext),
        EncryptionContext: this.#encryptionContext(context),
      }),
    );
    if (!output.CiphertextBlob) {
      throw new BrokerError(`KMS returned no ciphertext for the ${describe(context)}.`);
    }
    return output.CiphertextBlob;
  }

  async decrypt(ciphertext: Uint8Array, context: CipherContext): Promise<string> {
    const plaintext = await this.#decrypt(
      ciphertext,
      this.#encryptionContext(context),
      `The ${describe(context)} did not decrypt under its encryption context: it was altered, forged, or copied from another record or kind.`,
    );
    if (!plaintext) throw new BrokerError(`KMS returned no plaintext for the ${describe(context)}.`);
    return new TextDecoder().decode(plaintext);
  }

  async prepare(binding: SealBinding): Promise<RecordSealer> {
    const output = await this.#client.send(
      new GenerateDataKeyCommand({
        KeyId: this.#keyId,
        KeySpec: 'AES_256',
        EncryptionContext: this.#dataKeyContext(binding),
      }),
    );
    if (!output.Plaintext || !output.CiphertextBlob || output.Plaintext.length !== DATA_KEY_BYTES) {
      throw new BrokerError(`KMS returned no data key for ${recordName(binding.record)}.`);
    }
    return envelopeSealer(this.#deployment, binding, output.Plaintext, output.CiphertextBlob);
  }

  async open(dataKey: Uint8Array, binding: SealBinding): Promise<RecordOpener> {
    const plaintext = await this.#decrypt(
      dataKey,
      this.#dataKeyContext(binding),
      `The data key of ${recordName(binding.record)} did not decrypt at generation ${binding.generation}: it was altered, or copied from another record or generation.`,
    );
    if (!plaintext) throw new BrokerError(`KMS returned no data key for ${recordName(binding.record)}.`);
    return envelopeOpener(this.#deployment, binding, plaintext);
  }

  /** KMS `Decrypt`; a ciphertext that does not belong under the context becomes `TokenDecryptionError`. */
  async #decrypt(
    ciphertext: Uint8Array,
    encryptionContext: Record<string, string>,
    mismatch: string,
  ): Promise<Uint8Array | undefined> {
    try {
      const output = await this.#client.send(
        new DecryptCommand({
          KeyId: this.#keyId,
          CiphertextBlob: ciphertext,
          EncryptionContext: encryptionContext,
        }),
      );
      return output.Plaintext;
    } catch (error) {
      if (error instanceof Error && MISMATCH_ERRORS.has(error.name)) {
        throw new TokenDecryptionError(mismatch, { cause: error });
      }
      throw error;
    }
  }

  #dataKeyContext(binding: SealBinding): Record<string, string> {
    return {
      deployment: this.#deployment,
      record: recordName(binding.record),
      kind: DATA_KEY_KIND,
      generation: String(binding.generation),
    };
  }

  #encryptionContext(context: CipherContext): Record<string, string> {
    return { deployment: this.#deployment, record: recordName(context.record), kind: context.kind };
  }
}

/** `connection:<id>`, `client` or `listing:<principal ARN>`: the `record` entry of the encryption context. */
export function recordName(record: CipherRecord): string {
  switch (record.kind) {
    case 'connection':
      return `connection:${record.connectionId}`;
    case 'client':
      return 'client';
    case 'listing':
      return `listing:${record.principal}`;
  }
}

function describe(context: CipherContext): string {
  switch (context.record.kind) {
    case 'connection':
      return `stored ${context.kind} of connection "${context.record.connectionId}"`;
    case 'client':
      return `stored ${context.kind} of client token`;
    case 'listing':
      return `${context.kind} of the connection listing of ${context.record.principal}`;
  }
}
