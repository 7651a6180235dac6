import { randomBytes } from 'node:crypto';
import { DATA_KEY_BYTES, envelopeOpener, envelopeSealer } from '#shared/adapters/envelope.ts';
import { TokenDecryptionError } from '#shared/domain/errors.ts';
import type { RecordKey, SecretKind, TokenState } from '#shared/domain/records.ts';
import type { RecordOpener, RecordSealer, SealBinding, TokenCipher } from '#shared/ports/token-cipher.ts';

const DEPLOYMENT = 'unit-test';

/**
 * The envelope part of a fake cipher: real AES-256-GCM sealing under a random data key, with the data key
 * "encrypted" by naming its binding beside it and obscuring it (no key service). Opening under another
 * record or generation fails with `TokenDecryptionError`, as the KMS adapter does.
 */
export async function fakePrepare(binding: SealBinding): Promise<RecordSealer> {
  const key = randomBytes(DATA_KEY_BYTES);
  const wrapped = JSON.stringify({ b: bindingLabel(binding), k: key.toString('base64') });
  return envelopeSealer(DEPLOYMENT, binding, key, obscure(Buffer.from(wrapped, 'utf8')));
}

export async function fakeOpen(dataKey: Uint8Array, binding: SealBinding): Promise<RecordOpener> {
  let parsed: { b?: unknown; k?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(obscure(dataKey)).toString('utf8'));
  } catch (error) {
    throw new TokenDecryptionError('The data key is not one the fake cipher made.', { cause: error });
  }
  if (parsed.b !== bindingLabel(binding) || typeof parsed.k !== 'string') {
    throw new TokenDecryptionError(`The data key does not belong to ${bindingLabel(binding)}.`);
  }
  return envelopeOpener(DEPLOYMENT, binding, Buffer.from(parsed.k, 'base64'));
}

function bindingLabel(binding: SealBinding): string {
  const record =
    binding.record.kind === 'connection' ? `connection:${binding.record.connectionId}` : 'client';
  return `${record}@${binding.generation}`;
}

function obscure(bytes: Uint8Array): Uint8Array {
  return Uint8Array.from(bytes, (byte) => byte ^ 0x5a);
}

type StoredField = 'accessToken' | 'refreshToken' | 'registrationCode';
const FIELD_OF: Record<SecretKind, StoredField> = {
  access_token: 'accessToken',
  refresh_token: 'refreshToken',
  registration_code: 'registrationCode',
};

/**
 * The plaintext of one secret of a stored record, opened through a cipher (fake or KMS) with the record's
 * data key at its generation; `undefined` when the record holds none of that kind.
 */
export async function openStored(
  cipher: Pick<TokenCipher, 'open'>,
  record: RecordKey,
  stored: Pick<TokenState, 'dataKey' | 'generation'> & Partial<Record<StoredField, Uint8Array>>,
  kind: SecretKind,
): Promise<string | undefined> {
  const ciphertext = stored[FIELD_OF[kind]];
  if (!ciphertext) return undefined;
  if (!stored.dataKey) throw new Error(`The record holds a ${kind} but no data key.`);
  const opener = await cipher.open(stored.dataKey, { record, generation: stored.generation });
  return opener.open(ciphertext, kind);
}

/** Seals secrets the way a write at `generation` would: the arrange step of a test that seeds a record. */
export async function sealForSeed(
  cipher: Pick<TokenCipher, 'prepare'>,
  record: RecordKey,
  generation: number,
  secrets: Partial<Record<SecretKind, string>>,
): Promise<{ dataKey: Uint8Array } & Partial<Record<SecretKind, Uint8Array>>> {
  const sealer = await cipher.prepare({ record, generation });
  const sealed: { dataKey: Uint8Array } & Partial<Record<SecretKind, Uint8Array>> = {
    dataKey: sealer.dataKey,
  };
  for (const [kind, plaintext] of Object.entries(secrets) as [SecretKind, string | undefined][]) {
    if (plaintext !== undefined) sealed[kind] = sealer.seal(plaintext, kind);
  }
  return sealed;
}
