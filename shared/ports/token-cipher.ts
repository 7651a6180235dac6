import type { CipherKind, CipherRecord, RecordKey, SecretKind } from '#shared/domain/records.ts';

/** Names the record and the kind of secret a ciphertext belongs to; part of the encryption context. */
export interface CipherContext {
  record: CipherRecord;
  kind: CipherKind;
}

/**
 * What a record's data key is bound to: the record and the generation its ciphertexts are written at. A
 * ciphertext opens only under the same record, deployment and generation, and as the same kind of secret.
 */
export interface SealBinding {
  record: RecordKey;
  /** The record's generation once the write that stores these ciphertexts lands. */
  generation: number;
}

/**
 * Encrypts the secrets of one write of one record with a data key already made (no I/O left): what a
 * refresh prepares before it calls Wise, so only the store's write stands between Wise's answer and a
 * durable token.
 */
export interface RecordSealer {
  /** The data key, encrypted under the key and the binding: stored beside the ciphertexts. */
  readonly dataKey: Uint8Array;
  readonly binding: SealBinding;
  seal(plaintext: string, kind: SecretKind): Uint8Array;
}

/** Decrypts the secrets of one record with its data key, already decrypted (no I/O left). */
export interface RecordOpener {
  /** @throws TokenDecryptionError when the ciphertext was not sealed for this record, generation and kind */
  open(ciphertext: Uint8Array, kind: SecretKind): string;
}

/**
 * Encrypts secrets bound to their record. Stored tokens and registration codes use envelope encryption:
 * one data key per write of a record ({@link prepare}, one key-service call), opened with one call
 * ({@link open}). `encrypt` and `decrypt` seal a single value under its context (the listing cursor).
 * Whatever was copied onto another record, kind, deployment or generation fails with
 * `TokenDecryptionError`.
 */
export interface TokenCipher {
  encrypt(plaintext: string, context: CipherContext): Promise<Uint8Array>;
  decrypt(ciphertext: Uint8Array, context: CipherContext): Promise<string>;
  /** Makes a new data key bound to the record and the generation the write will produce. */
  prepare(binding: SealBinding): Promise<RecordSealer>;
  /**
   * Decrypts a stored data key under the binding of the record that holds it.
   *
   * @throws TokenDecryptionError when the data key was not made for this record and generation
   */
  open(dataKey: Uint8Array, binding: SealBinding): Promise<RecordOpener>;
}
