import { createHash, randomBytes } from 'node:crypto';

/**
 * What a hashed secret is for; part of the hashed text, so a hash made for one purpose never equals the
 * hash of the same value made for another (a state's table key is not its cookie name).
 */
export type HashPurpose = 'state' | 'browser' | 'completion' | 'cookie-name' | 'pkce-verifier';

/**
 * The SHA-256 of a secret for one purpose, in base64url (43 characters). The broker stores and compares
 * only these: a state, a browser binding or a completion code read from the table, a backup or an export
 * cannot be used, because the value itself is never written.
 */
export function hashSecret(purpose: HashPurpose, secret: string): string {
  return createHash('sha256').update(`${purpose}\n${secret}`).digest('base64url');
}

/** A new random secret: 32 bytes in base64url (43 characters). */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** The PKCE S256 challenge of a verifier (RFC 7636 section 4.2). */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}
