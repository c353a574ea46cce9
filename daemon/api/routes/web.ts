import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, gzipSync } from 'node:zlib';

import type { Hono } from 'hono';

import type { ApiCtx, ApiEnv } from '../context.ts';

/**
 * The web page (daemon/web): `/` is its index.html, `/ui/<file>` its scripts and styles. The files
 * are plain ES modules and CSS, read once from the source tree (also from dist/, which has no copy),
 * gzipped once in memory (no build step: a fresh clone serves them compressed), and served with an
 * ETag per encoding, so a browser asks again each time and gets a 304 until the daemon is upgraded.
 * The page talks to the API only; the Content-Security-Policy forbids inline script and every other
 * origin.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  /** The gzip encoding, when it is smaller. */
  gzip?: { body: Buffer; etag: string } | undefined;
}

/** daemon/web next to this module's folder, or, when run from dist/, the one in the source tree. */
export function webRoot(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return [path.resolve(here, '../../web'), path.resolve(here, '../../../../daemon/web')].find((dir) =>
    existsSync(path.join(dir, 'index.html')),
  );
}

function loadAssets(dir: string | undefined): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (dir === undefined) return assets;
  for (const name of readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (type === undefined) continue;
    const body = readFileSync(path.join(dir, name));
    const hash = createHash('sha256').update(body).digest('base64url').slice(0, 22);
    const gzip = gzipSync(body, { level: constants.Z_BEST_COMPRESSION });
    assets.set(name, {
      body,
      type,
      etag: `"${hash}"`,
      gzip: gzip.length < body.length ? { body: gzip, etag: `"${hash}-gz"` } : undefined,
    });
  }
  return assets;
}

/** Whether an Accept-Encoding header takes gzip (`gzip`, `gzip;q=0.5`, `*`; not `gzip;q=0`). */
export function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  const weights = new Map<string, number>();
  for (const part of header.split(',')) {
    const [coding = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    weights.set(coding.trim(), q === undefined ? 1 : Number(q.slice(2)) || 0);
  }
  return (weights.get('gzip') ?? weights.get('x-gzip') ?? weights.get('*') ?? 0) > 0;
}

export function registerWebRoutes(app: Hono<ApiEnv>, dir = webRoot()): void {
  let assets: Map<string, Asset> | undefined;
  const serve = (c: ApiCtx, name: string): Response => {
    assets ??= loadAssets(dir);
    const asset = assets.get(name);
    const headers: Record<string, string> = {
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': 'no-cache',
    };
    if (asset === undefined)
      return c.body('Not found\n', 404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
    headers.Vary = 'Accept-Encoding';
    const variant =
      asset.gzip !== undefined && acceptsGzip(c.req.header('accept-encoding')) ? asset.gzip : undefined;
    headers.ETag = variant?.etag ?? asset.etag;
    if (variant !== undefined) headers['Content-Encoding'] = 'gzip';
    const known = (c.req.header('if-none-match') ?? '').split(',').map((t) => t.trim());
    if (known.includes(headers.ETag) || known.includes('*')) return c.body(null, 304, headers);
    return c.body(new Uint8Array(variant?.body ?? asset.body), 200, {
      ...headers,
      'Content-Type': asset.type,
    });
  };
  app.get('/', (c) => serve(c, 'index.html'));
  app.get('/ui/:file', (c) => serve(c, c.req.param('file')));
}
