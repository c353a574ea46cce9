import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';

import { BatchdError, coerceError } from '../errors.ts';
import { type FinishedStateName, isFinished, type JobStateName } from '../jobs/status.ts';
import type { Logger } from '../log.ts';
import type { QueuePurge } from '../protocol/queues.ts';
import type { JobLocation } from '../spool/find.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import type { Transitions } from '../spool/transition.ts';
import type { JobCounts } from '../views/counts.ts';
import { idsIn } from '../views/jobs.ts';

/** What purging needs of the daemon. */
export interface PurgeDeps {
  layout: SpoolLayout;
  transitions: Transitions;
  log: Logger;
  counts: JobCounts;
  locate(id: string): JobLocation | undefined;
  /** Put every journaled acceptance on disk (before anything removes job folders). */
  settleAcceptances(): Promise<void>;
  cancel(id: string, reason: string): Promise<unknown>;
}

/**
 * batchd's `DELETE /queue/:q?status=S`, made safe: finished jobs (done, failed, cancelled) are
 * history, and their folders are deleted; queued jobs are cancelled through the dispatcher (they
 * stay, in cancelled/, and jobs that depend on them fail as with any cancel); running jobs are
 * refused, so nothing is killed by a bulk call.
 */
export async function purgeQueue(ctx: PurgeDeps, queue: string, status: JobStateName): Promise<QueuePurge> {
  const daemon = ctx;
  if (status === 'running') {
    throw new BatchdError(
      'CONFLICT',
      `Running jobs are not deleted in bulk; cancel each (DELETE /job/:id, batch cancel ID) and they end in cancelled/`,
      { queue },
    );
  }
  const ids = idsIn(daemon.layout, queue, status, Number.MAX_SAFE_INTEGER);
  const result: QueuePurge = { queue, status, deleted: 0, cancelled: 0, skipped: [] };
  try {
    if (isFinished(status)) {
      await daemon.settleAcceptances(); // recovery must not write a deleted job again
      deleteFinished(ctx, queue, status, ids, result, `deleted with the ${status} jobs of ${queue} (API)`);
    } else await cancelQueued(ctx, queue, ids, result);
  } finally {
    ctx.counts.invalidate(queue);
  }
  daemon.log.info(
    { queue, status, deleted: result.deleted, cancelled: result.cancelled, skipped: result.skipped.length },
    'jobs of a queue deleted by status',
  );
  return result;
}

/**
 * batchd's `DELETE /job/:id` of a finished job: its folder (spec, state, logs) is removed, as
 * batchd removed the row. Queued and running jobs are refused: cancel them first (DELETE /job/:id).
 */
export async function deleteFinishedJob(ctx: PurgeDeps, id: string): Promise<void> {
  const where = ctx.locate(id);
  if (where === undefined) throw new BatchdError('UNKNOWN_JOB', `No job ${id} in any queue`, { jobId: id });
  if (!isFinished(where.state))
    throw new BatchdError(
      'CONFLICT',
      `Job ${id} is ${where.state}; only finished jobs are deleted (cancel it first: DELETE /job/:id)`,
      { jobId: id },
    );
  const result: QueuePurge = {
    queue: where.queue,
    status: where.state,
    deleted: 0,
    cancelled: 0,
    skipped: [],
  };
  try {
    await ctx.settleAcceptances(); // recovery must not write a deleted job again
    deleteFinished(ctx, where.queue, where.state, [id], result, 'deleted (API)');
  } finally {
    ctx.counts.invalidate(where.queue);
  }
  if (result.deleted === 0)
    throw new BatchdError('JOB_GONE', `Job ${id} changed state while it was deleted; try again`, {
      jobId: id,
    });
  ctx.log.info({ jobId: id, queue: where.queue, status: where.state }, 'finished job deleted');
}

async function cancelQueued(
  ctx: PurgeDeps,
  queue: string,
  ids: readonly string[],
  result: QueuePurge,
): Promise<void> {
  for (const id of ids) {
    try {
      // Only what is still queued: a job that started meanwhile is left running.
      if (ctx.locate(id)?.state !== 'queued') {
        result.skipped.push({ id, reason: 'no longer queued' });
        continue;
      }
      await ctx.cancel(id, `cancelled with all queued jobs of ${queue} (API)`);
      result.cancelled += 1;
    } catch (error) {
      result.skipped.push({ id, reason: coerceError(error).message });
    }
  }
}

/**
 * Each folder is moved out of the queue by the transition module first (spool/transition.ts, which
 * announces `job:purged`), then the lot is removed.
 */
function deleteFinished(
  ctx: PurgeDeps,
  queue: string,
  status: FinishedStateName,
  ids: readonly string[],
  result: QueuePurge,
  reason: string,
): void {
  const { layout, transitions } = ctx;
  // A fresh name each time: two deletions in the same millisecond must not share one.
  const trash = mkdtempSync(path.join(layout.root, `.deleted-${queue}-${status}-`));
  try {
    for (const id of ids) {
      if (transitions.purge({ id, queue }, status, trash, reason)) result.deleted += 1;
      else result.skipped.push({ id, reason: `no longer ${status}` });
    }
  } finally {
    rmSync(trash, { recursive: true, force: true });
  }
}
