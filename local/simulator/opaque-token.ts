import { randomBytes, randomInt } from 'node:crypto';

/**
 * A random credential of varying length and no structure, so that nothing downstream can come to
 * depend on the size or format of Wise's tokens and codes.
 */
export function opaqueToken(): string {
  return randomBytes(randomInt(18, 49)).toString('base64url');
}
