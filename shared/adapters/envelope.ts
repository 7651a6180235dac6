import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { TokenDecryptionError } from '#shared/domain/errors.ts';
import type { SecretKind } from '#shared/domain/records.ts';
import type { RecordOpener, RecordSealer, SealBinding } from '#shared/ports/token-cipher.ts';

/** A data key's length: AES-256. */
export const DATA_KEY_BYTES = 32;
// The ciphertext layout: format byte, IV, GCM tag, ciphertext.
const FORMAT = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * The additional data every ciphertext is sealed with: the deployment, the record, the generation and the
 * kind, so a ciphertext moved to another of any of them fails its GCM check even under the right data key.
 */
function additionalData(deployment: string, binding: SealBinding, kind: SecretKind): Buffer {
  const record =
    binding.record.kind === 'connection' ? `connection:${binding.record.connectionId}` : 'client';
  return Buffer.from(JSON.stringify([deployment, record, binding.generation, kind]), 'utf8');
}

/** Seals with AES-256-GCM under a plaintext data key; `dataKey` is that key as the key service encrypted it. */
export function envelopeSealer(
  deployment: string,
  binding: SealBinding,
  key: Uint8Array,
  dataKey: Uint8Array,
): RecordSealer {
  checkKey(key);
  const material = Buffer.from(key);
  return {
    dataKey,
    binding,
    seal(plaintext, kind) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', material, iv);
      cipher.setAAD(additionalData(deployment, binding, kind));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return new Uint8Array(Buffer.concat([Buffer.of(FORMAT), iv, cipher.getAuthTag(), ciphertext]));
    },
  };
}

/** Opens what {@link envelopeSealer} sealed under the same plaintext data key, deployment and binding. */
export function envelopeOpener(deployment: string, binding: SealBinding, key: Uint8Array): RecordOpener {
  checkKey(key);
  const material = Buffer.from(key);
  return {
    open(ciphertext, kind) {
      const blob = Buffer.from(ciphertext);
      const tagEnd = 1 + IV_BYTES + TAG_BYTES;
      if (blob.length < tagEnd || blob[0] !== FORMAT) throw mismatch(binding, kind);
      try {
        const decipher = createDecipheriv('aes-256-gcm', material, blob.subarray(1, 1 + IV_BYTES));
        decipher.setAAD(additionalData(deployment, binding, kind));
        decipher.setAuthTag(blob.subarray(1 + IV_BYTES, tagEnd));
        return Buffer.concat([decipher.update(blob.subarray(tagEnd)), decipher.final()]).toString('utf8');
      } catch (error) {
        throw mismatch(binding, kind, error);
      }
    },
  };
}

function checkKey(key: Uint8Array): void {
  if (key.length !== DATA_KEY_BYTES) {
    throw new TokenDecryptionError(`A data key must be ${DATA_KEY_BYTES} bytes, not ${key.length}.`);
  }
}

function mismatch(binding: SealBinding, kind: SecretKind, cause?: unknown): TokenDecryptionError {
  const record =
    binding.record.kind === 'connection' ? `connection "${binding.record.connectionId}"` : 'the client token';
  return new TokenDecryptionError(
    `The stored ${kind} of ${record} did not decrypt at generation ${binding.generation}: it was altered, or copied from another record, kind or generation.`,
    cause === undefined ? {} : { cause },
  );
}
