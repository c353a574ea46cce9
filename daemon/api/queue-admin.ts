import { BatchdError } from '../errors.ts';
import type { QueueCreate, QueueInfo, QueueSettingsInput } from '../protocol/queues.ts';
import type { ApiContext } from './context.ts';

/** A queue as the API shows it; create, update and delete are the core's (service/queue-admin.ts). */
export function queueInfo(ctx: ApiContext, name: string): QueueInfo {
  const s = ctx.daemon.queues.settings(name);
  const schedule = ctx.daemon.reads.schedule(s.schedule_name, new Date());
  const open = schedule?.open === true;
  return {
    name,
    title: s.title ?? name,
    enabled: s.enabled,
    schedule_name: s.schedule_name,
    host_name: s.host_name ?? null,
    type: s.type ?? null,
    priority: s.priority,
    parallel: s.parallel ?? null,
    autostart_job_count: s.autostart_job_count ?? null,
    counts: ctx.counts.of(name),
    schedule_open: open,
    opens_at: schedule?.opensAt?.toISOString() ?? null,
  };
}

export function assertQueue(ctx: ApiContext, name: string): void {
  if (!ctx.daemon.queues.has(name))
    throw new BatchdError('UNKNOWN_QUEUE', `Unknown queue "${name}"`, { queue: name });
}

export function createQueue(ctx: ApiContext, input: QueueCreate): void {
  ctx.daemon.queueAdmin.create(input);
}

export function updateQueue(ctx: ApiContext, name: string, change: QueueSettingsInput): void {
  ctx.daemon.queueAdmin.update(name, change);
}

/** Refused for the default queue, while jobs run, and (unless forced) while it holds any job or drop. */
export function deleteQueue(ctx: ApiContext, name: string, forced: boolean): Promise<void> {
  return ctx.daemon.queueAdmin.delete(name, forced);
}
