import { existsSync } from 'node:fs';

import { BatchdError } from '../errors.ts';
import type { TaskRef } from '../jobs/task-ref.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import { readManifest } from './tasks.ts';

/**
 * The id of the job a task-relative name (jobs/task-ref.ts) names, looked for in `queues` (those
 * the caller may see). A task name found in several queues must be given with its queue.
 */
export function resolveTaskRef(layout: SpoolLayout, queues: readonly string[], ref: TaskRef): string {
  const text = `${ref.queue === undefined ? '' : `${ref.queue}/`}${ref.task}#${ref.index}`;
  const holders = (ref.queue === undefined ? queues : queues.filter((q) => q === ref.queue)).filter((q) =>
    existsSync(layout.taskDir(q, ref.task)),
  );
  const queue = holders[0];
  if (queue === undefined)
    throw new BatchdError(
      'UNKNOWN_JOB',
      `No task "${ref.task}"${ref.queue === undefined ? ' in the queues you may see' : ` in queue "${ref.queue}"`} (given as ${text}; batch task ls QUEUE lists the tasks)`,
      { task: ref.task, ...(ref.queue === undefined ? {} : { queue: ref.queue }) },
    );
  if (holders.length > 1)
    throw new BatchdError(
      'CONFLICT',
      `Task "${ref.task}" is in queues ${holders.join(', ')}: give the queue too, e.g. ${queue}/${ref.task}/${ref.index}`,
      { task: ref.task },
    );
  const manifest = readManifest(layout, queue, ref.task);
  const id = manifest.jobs[ref.index];
  if (id === undefined)
    throw new BatchdError(
      'UNKNOWN_JOB',
      `Task "${ref.task}" in queue "${queue}" has ${manifest.jobs.length} job(s), numbered from 0 to ${manifest.jobs.length - 1}; there is no #${ref.index}`,
      { task: ref.task, queue },
    );
  return id;
}
