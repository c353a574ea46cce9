import { hash, randomBytes } from 'node:crypto';

/**
 * Bearer tokens: 32 random bytes, shown once. The daemon keeps only their SHA-256, so a leaked
 * users.yaml gives no usable token; a high-entropy secret needs no slow KDF.
 */
export const TOKEN_PREFIX = 'bdt_';

export function newToken(): { id: string; secret: string; hash: string } {
  const secret = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { id: randomBytes(6).toString('hex'), secret, hash: hashToken(secret) };
}

/** Every authenticated request hashes its token: the one-shot `hash` is twice as fast as a Hash object. */
export function hashToken(secret: string): string {
  return hash('sha256', secret, 'hex');
}
