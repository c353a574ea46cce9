import { readFile } from 'node:fs/promises';
import path from 'node:path';

import type { Hono } from 'hono';

import { errnoCode } from '../../errors.ts';
import type { ApiEnv } from '../context.ts';
import type { Face, FaceCtx } from './face.ts';

/** The files of batchd's web client folder (web/): its two pages and their scripts and styles. */
const FILE = /^\/(batch\.html|monitor\.html|(?:js|css)\/[A-Za-z0-9_][A-Za-z0-9_.-]*\.(?:js|css))$/;
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/**
 * batchd's `manager.web_client.path`: its pages call the API at the server's root with jquery.rest,
 * which ends every URL with "/" (`/queue/`, `/queue/q/jobs/?status=all`), and load `/js/...`,
 * `/css/...` and `/monitor.html` from the root too. The native API has no route that ends with "/"
 * or takes those names, so those (and only those) requests are the web client's: the face answers
 * them at the root when a folder is configured, without shadowing any native path.
 */
export class WebClient {
  readonly #folder: string;

  constructor(folder: string) {
    this.#folder = folder;
  }

  /** Whether a request the native API has no route for is the web client's. */
  takes(pathname: string): boolean {
    return (pathname.length > 1 && pathname.endsWith('/')) || FILE.test(pathname);
  }

  /** A file of the folder, or undefined when it is not one of the client's (or missing). */
  async file(name: string): Promise<{ body: Buffer; type: string } | undefined> {
    if (!FILE.test(`/${name}`)) return undefined;
    try {
      return {
        body: await readFile(path.join(this.#folder, name)),
        type: TYPES[path.extname(name)] ?? 'application/octet-stream',
      };
    } catch (error) {
      if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
      throw error;
    }
  }
}

/** The pages and their files (public, as the client's code is), at the root and under the base path. */
export function registerBatchdWebClient(app: Hono<ApiEnv>, _face: Face, web: WebClient | undefined): void {
  if (web === undefined) return;
  const serve = async (c: FaceCtx, name: string): Promise<Response> => {
    const file = await web.file(name);
    if (file === undefined) return c.text(`Not found: ${name}`, 404);
    return c.body(new Uint8Array(file.body), 200, {
      'Content-Type': file.type,
      'X-Content-Type-Options': 'nosniff',
    });
  };
  app.get('/batch.html', (c) => serve(c, 'batch.html'));
  app.get('/monitor.html', (c) => serve(c, 'monitor.html'));
  app.get('/js/:file', (c) => serve(c, `js/${c.req.param('file')}`));
  app.get('/css/:file', (c) => serve(c, `css/${c.req.param('file')}`));
}
