import { streamSSE } from 'hono/streaming';

import { can, type Principal } from '../../auth/permissions.ts';
import type { BatchdEvents } from '../../events.ts';
import { EVENT_TYPES, type EventType } from '../../protocol/events.ts';
import type { Router } from '../route.ts';

const HEARTBEAT_MS = 15_000;
/** A client this far behind is dropped rather than buffered without bound. */
const MAX_PENDING = 10_000;

/** Which events a caller may see: job events of queues with ViewJobs, queue changes with ViewQueues. */
function visible(principal: Principal, type: EventType, payload: BatchdEvents[EventType]): boolean {
  if (type === 'host:state') return true;
  const queue = (payload as { queue: string }).queue;
  const toQueue = (payload as { toQueue?: string }).toQueue;
  if (type === 'queue:changed') return can(principal, 'ViewQueues', { queue });
  return (
    can(principal, 'ViewJobs', { queue }) ||
    (toQueue !== undefined && can(principal, 'ViewJobs', { queue: toQueue }))
  );
}

export function registerEventRoutes(router: Router): void {
  const { ctx } = router;

  router.add(
    {
      method: 'get',
      path: '/events',
      summary:
        'Server-Sent Events: job:accepted, job:transition, job:paused, job:resumed, job:rejected, queue:changed, host:state',
      tag: 'events',
      access: { kind: 'user', note: 'sees the events of the queues it may view' },
      responses: { 200: { description: 'An event stream', mime: 'text/event-stream' } },
    },
    ({ c, principal }) =>
      streamSSE(c, async (sse) => {
        let pending = 0;
        let id = 0;
        const ended = new Promise<void>((resolve) => {
          sse.onAbort(resolve);
          c.req.raw.signal.addEventListener('abort', () => resolve());
        });
        const send = (event: string, data: string): void => {
          if (sse.aborted || sse.closed) return;
          if (pending >= MAX_PENDING) {
            sse.abort();
            return;
          }
          pending += 1;
          id += 1;
          sse.writeSSE({ event, data, id: String(id) }).then(
            () => (pending -= 1),
            () => sse.abort(),
          );
        };
        const unsubscribe = EVENT_TYPES.map((type) =>
          ctx.daemon.events.on(type, (payload) => {
            if (visible(principal, type, payload)) send(type, JSON.stringify(payload));
          }),
        );
        const heartbeat = setInterval(() => void sse.write(': keep-alive\n\n'), HEARTBEAT_MS);
        ctx.metrics.streams.inc();
        try {
          await sse.write(': connected\n\n');
          await ended;
        } finally {
          clearInterval(heartbeat);
          for (const off of unsubscribe) off();
          ctx.metrics.streams.dec();
        }
      }),
  );
}
