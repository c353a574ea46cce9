import type { Hono } from 'hono';

import type { HostInfo, JobTypeInfo } from '../../protocol/config.ts';
import type { ApiEnv } from '../context.ts';
import { type Face, seg } from './face.ts';
import { toBatchdType } from './wire.ts';

/** `/type`, `/type/:name` (batchd's JobType JSON) and `/host` (names only, as batchd lists them). */
export function registerBatchdTypes(app: Hono<ApiEnv>, face: Face): void {
  const { native } = face;

  app.get('/type', async (c) =>
    c.json((await native.call<JobTypeInfo[]>(c, 'GET', '/type')).map(toBatchdType), 200),
  );

  app.get('/type/:name', async (c) =>
    c.json(toBatchdType(await native.call<JobTypeInfo>(c, 'GET', `/type/${seg(c.req.param('name'))}`)), 200),
  );

  app.get('/host', async (c) =>
    c.json(
      (await native.call<HostInfo[]>(c, 'GET', '/host')).map((h) => h.name),
      200,
    ),
  );
}
