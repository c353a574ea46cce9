import { open } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';

import { stream } from 'hono/streaming';
import { z } from 'zod';

import { errnoCode } from '../../errors.ts';
import { jobIdSchema } from '../../protocol/common.ts';
import { logQuerySchema } from '../../protocol/jobs.ts';
import { STDERR_FILE, STDOUT_FILE } from '../../service/port.ts';
import { followLog } from '../follow.ts';
import type { Router } from '../route.ts';

export function registerLogRoutes(router: Router): void {
  const { ctx } = router;
  const { daemon } = ctx;

  router.add(
    {
      method: 'get',
      path: '/job/:id/log',
      summary:
        "A job's output log (stdout or stderr); with follow=1, streamed as it grows until the job ends",
      tag: 'jobs',
      access: { kind: 'job', permission: 'ViewJobs' },
      params: z.object({ id: jobIdSchema }),
      query: logQuerySchema,
      responses: {
        200: { description: 'The log', schema: z.string(), mime: 'text/plain' },
        404: { description: 'Unknown job' },
      },
    },
    async ({ c, params, query }) => {
      const file = query.stream === 'stderr' ? STDERR_FILE : STDOUT_FILE;
      c.header('Content-Type', 'text/plain; charset=utf-8');
      c.header('X-Content-Type-Options', 'nosniff');
      if (query.follow === '1' || query.follow === 'true') {
        c.header('Cache-Control', 'no-cache');
        return stream(c, async (out) => {
          const abort = new AbortController();
          out.onAbort(() => abort.abort());
          c.req.raw.signal.addEventListener('abort', () => abort.abort());
          ctx.metrics.streams.inc();
          try {
            await followLog(
              params.id,
              file,
              { events: daemon.events, locate: (id) => daemon.locate(id) },
              async (chunk) => void (await out.write(chunk)),
              abort.signal,
            );
          } finally {
            ctx.metrics.streams.dec();
          }
        });
      }
      // The whole file as it is now. The job may move between the look-up and the open: look again.
      for (let tries = 0; tries < 5; tries++) {
        const where = daemon.locate(params.id);
        if (where === undefined) break;
        try {
          const handle = await open(path.join(where.dir, file), 'r');
          return c.body(Readable.toWeb(handle.createReadStream()) as ReadableStream, 200);
        } catch (error) {
          if (errnoCode(error) !== 'ENOENT') throw error;
          if (daemon.locate(params.id)?.dir === where.dir) return c.body('', 200); // no output yet
        }
      }
      return c.body('', 200);
    },
  );
}
