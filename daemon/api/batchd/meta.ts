import type { Hono } from 'hono';

import type { ApiEnv } from '../context.ts';
import type { Face } from './face.ts';

/**
 * `OPTIONS /`: the authentication methods, with batchd's names only (its CLI refuses others): Basic
 * is `basic`; a trusted proxy's user header is batchd's `header`; bearer tokens have no batchd name.
 */
export function registerBatchdMeta(app: Hono<ApiEnv>, face: Face): void {
  app.options('/', (c) =>
    c.json(
      face.ctx.auth.methods().flatMap((m) => (m === 'basic' ? ['basic'] : m === 'proxy' ? ['header'] : [])),
      200,
    ),
  );
  // Any other OPTIONS is a CORS preflight (the API's CORS settings add the headers).
  app.options('*', (c) => c.json('done', 200));
}
