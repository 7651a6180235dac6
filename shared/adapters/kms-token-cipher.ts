import { DecryptCommand, EncryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import { BrokerError, TokenDecryptionError } from '#shared/domain/errors.ts';
import type { CipherRecord } from '#shared/domain/records.ts';
import type { CipherContext, TokenCipher } from '#shared/ports/token-cipher.ts';

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

/**
 * Encrypts every secret with one KMS call of its own, bound by the encryption context
 * `{ deployment, record, kind }`: each use is one CloudTrail entry that names the record, and a ciphertext
 * moved to another record or kind fails to decrypt. Tokens are far below KMS's 4 KiB plaintext limit, so
 * no envelope encryption is needed.
 */
export class KmsTokenCipher implements TokenCipher {
  readonly #client: KMSClient;
  readonly #keyId: string;
  readonly #deployment: string;

  constructor(options: KmsTokenCipherOptions) {
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
    let plaintext: Uint8Array | undefined;
    try {
      ({ Plaintext: plaintext } = await this.#client.send(
        new DecryptCommand({
          KeyId: this.#keyId,
          CiphertextBlob: ciphertext,
          EncryptionContext: this.#encryptionContext(context),
        }),
      ));
    } catch (error) {
      if (error instanceof Error && MISMATCH_ERRORS.has(error.name)) {
        throw new TokenDecryptionError(
          `The ${describe(context)} did not decrypt under its encryption context: it was altered, forged, or copied from another record or kind.`,
          { cause: error },
        );
      }
      throw error;
    }
    if (!plaintext) throw new BrokerError(`KMS returned no plaintext for the ${describe(context)}.`);
    return new TextDecoder().decode(plaintext);
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
