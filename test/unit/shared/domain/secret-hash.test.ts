import { describe, expect, it } from 'vitest';
import { hashSecret, newSecret, pkceChallenge } from '#shared/domain/secret-hash.ts';

describe('hashSecret', () => {
  it('is the base64url SHA-256 of the purpose and the secret, 43 characters', () => {
    // printf 'state\nabc' | openssl dgst -sha256 -binary, in base64url
    expect(hashSecret('state', 'abc')).toBe('jy_9if7W8QALimYSVjvjhdGktoVqb2kah-VvmARvSM4');
  });

  it('never gives one secret the same hash for two purposes', () => {
    expect(hashSecret('state', 'abc')).not.toBe(hashSecret('cookie-name', 'abc'));
    expect(hashSecret('state', 'abc')).not.toBe(hashSecret('state', 'abd'));
  });
});

describe('newSecret', () => {
  it('is 32 random bytes in base64url, new every time', () => {
    const secrets = new Set(Array.from({ length: 20 }, () => newSecret()));

    expect(secrets.size).toBe(20);
    for (const secret of secrets) expect(Buffer.from(secret, 'base64url')).toHaveLength(32);
    for (const secret of secrets) expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('pkceChallenge', () => {
  it('is the S256 challenge of the verifier in RFC 7636, appendix B', () => {
    expect(pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe(
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    );
  });
});
