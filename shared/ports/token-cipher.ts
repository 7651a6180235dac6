import type { CipherKind, CipherRecord } from '#shared/domain/records.ts';

/** Names the record and the kind of secret a ciphertext belongs to; part of the encryption context. */
export interface CipherContext {
  record: CipherRecord;
  kind: CipherKind;
}

/**
 * Encrypts each secret on its own, bound to its record: a ciphertext copied onto another record or used
 * as another kind of secret fails to decrypt (with `TokenDecryptionError`).
 */
export interface TokenCipher {
  encrypt(plaintext: string, context: CipherContext): Promise<Uint8Array>;
  decrypt(ciphertext: Uint8Array, context: CipherContext): Promise<string>;
}
