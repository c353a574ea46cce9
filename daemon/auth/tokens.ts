import { createHash, randomBytes } from 'node:crypto';

/**
 * Bearer tokens: 32 random bytes, shown once. The daemon keeps only their SHA-256, so a leaked
 * users.yaml gives no usable token; a high-entropy secret needs no slow KDF.
 */
export const TOKEN_PREFIX = 'bdt_';

export function newToken(): { id: string; secret: string; hash: string } {
  const secret = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { id: randomBytes(6).toString('hex'), secret, hash: hashToken(secret) };
}

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
