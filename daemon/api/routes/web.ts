import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Hono } from 'hono';

import type { ApiCtx, ApiEnv } from '../context.ts';

/**
 * The web page (daemon/web): `/` is its index.html, `/ui/<file>` its scripts and styles. The files
 * are plain ES modules and CSS, read once from the source tree (also from dist/, which has no copy),
 * and served with an ETag, so a browser asks again each time and gets a 304 until the daemon is
 * upgraded. The page talks to the API only; the Content-Security-Policy forbids inline script and
 * every other origin.
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
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    assets.set(name, { body, type, etag });
  }
  return assets;
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
    headers.ETag = asset.etag;
    if (c.req.header('if-none-match') === asset.etag) return c.body(null, 304, headers);
    return c.body(new Uint8Array(asset.body), 200, { ...headers, 'Content-Type': asset.type });
  };
  app.get('/', (c) => serve(c, 'index.html'));
  app.get('/ui/:file', (c) => serve(c, c.req.param('file')));
}
