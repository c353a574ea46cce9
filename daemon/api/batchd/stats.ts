import type { Hono } from 'hono';

import type { Counts } from '../../protocol/common.ts';
import type { ApiEnv } from '../context.ts';
import { type Face, seg } from './face.ts';
import { toByStatus } from './wire.ts';

/** `/stats`: `{queue: {new, processing, done, failed}}`, zero counts left out; `/stats/:q`: one queue's counts. */
export function registerBatchdStats(app: Hono<ApiEnv>, face: Face): void {
  app.get('/stats', async (c) => {
    const stats = await face.native.call<Record<string, Counts>>(c, 'GET', '/stats');
    return c.json(
      Object.fromEntries(Object.entries(stats).map(([q, counts]) => [q, toByStatus(counts)])),
      200,
    );
  });

  app.get('/stats/:q', async (c) => {
    const q = c.req.param('q');
    const stats = await face.native.call<Record<string, Counts>>(c, 'GET', `/stats/${seg(q)}`);
    const counts = stats[q];
    return c.json(counts === undefined ? {} : toByStatus(counts), 200);
  });
}
