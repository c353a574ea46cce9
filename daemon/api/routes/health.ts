import { healthSchema } from '../../protocol/health.ts';
import type { Router } from '../route.ts';

export function registerHealthRoutes(router: Router): void {
  const { daemon } = router.ctx;
  router.add(
    {
      method: 'get',
      path: '/health',
      summary:
        'Whether the daemon runs or is stopping (a graceful stop answers reads until its jobs have finished), and how many dispatchers share its spool',
      tag: 'meta',
      access: { kind: 'public' },
      responses: { 200: { description: 'Health', schema: healthSchema } },
    },
    ({ c }) =>
      c.json({
        status: daemon.stopping ? ('stopping' as const) : ('running' as const),
        stopping: daemon.stopping,
        dispatchers: daemon.dispatchers.count(),
        running: daemon.control.runningCount,
        containment: daemon.containment,
      }),
  );
}
