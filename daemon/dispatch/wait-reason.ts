import type { Schedule } from '../config/schema.ts';
import type { WaitReason } from '../jobs/wait.ts';
import { isOpen, nextOpening } from './schedule.ts';

/** What the dispatcher knows about a queued job and what stands in its way, at one moment. */
export interface WaitFacts {
  queue: string;
  type: string;
  /** Where it would run (undefined: this machine). */
  host: string | undefined;
  now: Date;
  queueEnabled: boolean;
  notBefore: number | undefined;
  /** Dependencies not done yet. */
  pending: readonly string[];
  scheduleName: string;
  /** Undefined: the queue names a schedule that does not exist. */
  schedule: Schedule | undefined;
  workers: { busy: number; max: number };
  /** The queue's `parallel` (undefined: none) and the queue's jobs running here. */
  queueLimit: { running: number; max: number | undefined };
  /** The type's `max_jobs` (undefined: none) and the type's jobs running here. */
  typeLimit: { running: number; max: number | undefined };
  /** The host takes another job now (limits, down, back-off). */
  hostTakes: boolean;
}

/**
 * Why a queued job has not started, checked in the order the dispatcher meets the obstacles
 * (dispatcher.ts, #dispatch and #candidate): the first one found is the reason.
 */
export function explainWait(f: WaitFacts): WaitReason {
  if (!f.queueEnabled)
    return {
      reason: 'queue_disabled',
      message: `its queue ${f.queue} is disabled (batch queue ${f.queue} -e enables it)`,
    };
  if (f.notBefore !== undefined && f.notBefore > f.now.getTime())
    return {
      reason: 'not_before',
      message: 'its start time',
      until: new Date(f.notBefore).toISOString(),
    };
  const dep = f.pending[0];
  if (dep !== undefined)
    return {
      reason: 'dependency',
      message: `dependency ${dep} is not done yet${f.pending.length > 1 ? ` (and ${f.pending.length - 1} more)` : ''}`,
      job: dep,
    };
  if (f.schedule === undefined)
    return {
      reason: 'schedule_closed',
      message: `its queue names schedule ${f.scheduleName}, which does not exist`,
    };
  if (!isOpen(f.schedule, f.now))
    return {
      reason: 'schedule_closed',
      message: `schedule ${f.scheduleName} of queue ${f.queue} is closed`,
      until: nextOpening(f.schedule, f.now)?.toISOString(),
    };
  if (f.workers.busy >= f.workers.max)
    return {
      reason: 'workers',
      message: `all ${f.workers.max} workers are busy (dispatcher.workers)`,
    };
  if (f.queueLimit.max !== undefined && f.queueLimit.running >= f.queueLimit.max)
    return {
      reason: 'queue_limit',
      message: `queue ${f.queue} runs ${f.queueLimit.running} jobs, its parallel limit`,
    };
  if (f.typeLimit.max !== undefined && f.typeLimit.running >= f.typeLimit.max)
    return {
      reason: 'type_limit',
      message: `type ${f.type} runs ${f.typeLimit.running} jobs, its max_jobs`,
    };
  if (!f.hostTakes)
    return {
      reason: 'host_limit',
      message: `host ${f.host ?? 'localhost'} takes no more jobs now (its max_jobs, or it is down or backing off)`,
    };
  return { reason: 'turn', message: 'jobs ahead of it go first; it starts when its turn comes' };
}
