import { BatchdError } from '../errors.ts';
import type { JobStateName } from '../jobs/status.ts';
import { locateJob } from '../spool/find.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import type { JobLocks, Release } from '../spool/lock.ts';
import type { QueueRegistry } from '../spool/queues.ts';

/** Where a job is in the spool; UNKNOWN_JOB if it is in no queue. */
export function findJob(
  layout: SpoolLayout,
  queues: QueueRegistry,
  id: string,
): { queue: string; state: JobStateName } {
  const where = locateJob(layout, queues.names(), id);
  if (where === undefined) throw new BatchdError('UNKNOWN_JOB', `No job ${id} in any queue`, { jobId: id });
  return where;
}

/** The job's queue, if it is queued; else a CONFLICT saying `rule`. */
export function findQueued(
  layout: SpoolLayout,
  queues: QueueRegistry,
  id: string,
  rule: string,
): { queue: string; state: 'queued' } {
  const where = findJob(layout, queues, id);
  if (where.state !== 'queued')
    throw new BatchdError('CONFLICT', `Job ${id} is ${where.state}; ${rule}`, { jobId: id });
  return { queue: where.queue, state: 'queued' };
}

/** Run a short change under the job's lock; JOB_LOCKED if a dispatcher holds it. */
export async function underLock<T>(locks: JobLocks, id: string, fn: () => T): Promise<T> {
  const release: Release | undefined = await locks.acquire(id);
  if (release === undefined)
    throw new BatchdError('JOB_LOCKED', `Job ${id} is held by a running dispatcher; try again`, {
      jobId: id,
    });
  try {
    return fn();
  } finally {
    await release().catch(() => undefined);
  }
}
