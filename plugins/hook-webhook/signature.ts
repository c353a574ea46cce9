import { createHmac, timingSafeEqual } from 'node:crypto';

/** A receiver refuses a delivery signed longer ago than this (a replayed request). */
export const SIGNATURE_TOLERANCE_S = 300;

/**
 * The signing headers: `X-Batchd-Timestamp` (Unix seconds, per attempt) and `X-Batchd-Signature:
 * sha256=<hex>`, the HMAC-SHA256 with the secret of `<timestamp>.<body>`. Signing the timestamp with
 * the body is what makes it trustworthy: a replay with a fresh timestamp fails the signature.
 */
export function signatureHeaders(
  body: string,
  secret: string | undefined,
  now = Date.now(),
): Record<string, string> {
  const timestamp = String(Math.floor(now / 1000));
  if (secret === undefined) return { 'x-batchd-timestamp': timestamp };
  return { 'x-batchd-timestamp': timestamp, 'x-batchd-signature': `sha256=${sign(secret, timestamp, body)}` };
}

export function sign(secret: string, timestamp: string, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/**
 * What a receiver does (documented in README.md; also used by the tests): the signature matches
 * (compared in constant time) and the timestamp is recent.
 */
export function verifySignature(
  secret: string,
  body: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  now = Date.now(),
): boolean {
  const { timestamp, signature } = headers;
  if (timestamp === undefined || signature === undefined || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(now / 1000 - Number(timestamp)) > SIGNATURE_TOLERANCE_S) return false;
  const expected = Buffer.from(`sha256=${sign(secret, timestamp, body)}`);
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
