import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DATA_KEY_BYTES, envelopeOpener, envelopeSealer } from '#shared/adapters/envelope.ts';
import { TokenDecryptionError } from '#shared/domain/errors.ts';
import type { SealBinding } from '#shared/ports/token-cipher.ts';

const KEY = randomBytes(DATA_KEY_BYTES);
const ACME: SealBinding = { record: { kind: 'connection', connectionId: 'acme-1' }, generation: 4 };

function sealed(binding: SealBinding = ACME, deployment = 'prod'): Uint8Array {
  return envelopeSealer(deployment, binding, KEY, new Uint8Array([9])).seal('access-secret', 'access_token');
}

describe('envelope encryption', () => {
  it('opens what it sealed under the same key, deployment, record, generation and kind', () => {
    expect(envelopeOpener('prod', ACME, KEY).open(sealed(), 'access_token')).toBe('access-secret');
  });

  it('seals with a new IV every time, so one plaintext never gives one ciphertext twice', () => {
    expect(Buffer.from(sealed()).equals(Buffer.from(sealed()))).toBe(false);
  });

  it('keeps the encrypted data key and the binding beside the sealer', () => {
    const sealer = envelopeSealer('prod', ACME, KEY, new Uint8Array([9]));

    expect(sealer).toMatchObject({ dataKey: new Uint8Array([9]), binding: ACME });
  });

  it.each<[string, () => void]>([
    ['another deployment', () => envelopeOpener('staging', ACME, KEY).open(sealed(), 'access_token')],
    [
      'another connection',
      () =>
        envelopeOpener('prod', { ...ACME, record: { kind: 'connection', connectionId: 'acme-2' } }, KEY).open(
          sealed(),
          'access_token',
        ),
    ],
    [
      'the client token',
      () =>
        envelopeOpener('prod', { ...ACME, record: { kind: 'client' } }, KEY).open(sealed(), 'access_token'),
    ],
    [
      'another generation',
      () => envelopeOpener('prod', { ...ACME, generation: 5 }, KEY).open(sealed(), 'access_token'),
    ],
    ['another kind', () => envelopeOpener('prod', ACME, KEY).open(sealed(), 'refresh_token')],
    [
      'another data key',
      () => envelopeOpener('prod', ACME, randomBytes(DATA_KEY_BYTES)).open(sealed(), 'access_token'),
    ],
  ])('refuses a ciphertext opened for %s', (_, open) => {
    expect(open).toThrow(TokenDecryptionError);
    expect(open).toThrow(/did not decrypt at generation/);
  });

  it.each<[string, (blob: Buffer) => Buffer]>([
    [
      'one byte changed in the ciphertext',
      (blob) => Buffer.concat([blob.subarray(0, -1), Buffer.of((blob.at(-1) ?? 0) ^ 1)]),
    ],
    [
      'one byte changed in the tag',
      (blob) => Buffer.concat([blob.subarray(0, 13), Buffer.of((blob[13] ?? 0) ^ 1), blob.subarray(14)]),
    ],
    ['another format byte', (blob) => Buffer.concat([Buffer.of(2), blob.subarray(1)])],
    ['cut short before the end of its tag', (blob) => blob.subarray(0, 28)],
    ['nothing after the tag', (blob) => blob.subarray(0, 29)],
  ])('refuses a ciphertext with %s', (_, alter) => {
    const altered = alter(Buffer.from(sealed()));

    expect(() => envelopeOpener('prod', ACME, KEY).open(altered, 'access_token')).toThrow(
      TokenDecryptionError,
    );
  });

  it('keeps the client token apart from a connection whatever its id, "undefined" included', () => {
    const client: SealBinding = { record: { kind: 'client' }, generation: 4 };
    const named: SealBinding = { record: { kind: 'connection', connectionId: 'undefined' }, generation: 4 };

    expect(() => envelopeOpener('prod', named, KEY).open(sealed(client), 'access_token')).toThrow(
      TokenDecryptionError,
    );
    expect(envelopeOpener('prod', client, KEY).open(sealed(client), 'access_token')).toBe('access-secret');
  });

  it('names the record, kind and generation, never the secret, when it refuses', () => {
    const open = () => envelopeOpener('prod', { ...ACME, generation: 5 }, KEY).open(sealed(), 'access_token');

    expect(open).toThrow(
      'The stored access_token of connection "acme-1" did not decrypt at generation 5: it was altered, or copied from another record, kind or generation.',
    );
    expect(open).not.toThrow(/access-secret/);
  });

  it('refuses a data key that is not 32 bytes, to seal or to open', () => {
    const short = randomBytes(16);

    expect(() => envelopeSealer('prod', ACME, short, new Uint8Array())).toThrow(
      new TokenDecryptionError('A data key must be 32 bytes, not 16.'),
    );
    expect(() => envelopeOpener('prod', ACME, short)).toThrow(TokenDecryptionError);
  });
});
