import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { z } from 'zod';

import { loadText } from '../config/parse.ts';
import { BatchdError, coerceError, errnoCode } from '../errors.ts';
import { isJobId, shardOf } from '../jobs/id.ts';
import { isFinished, JOB_STATES, type JobStateName } from '../jobs/status.ts';
import type { TaskResult, TaskStatus } from '../protocol/tasks.ts';
import { locateJob } from '../spool/find.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import { readJobState, RESULT_FILE } from '../spool/state-file.ts';
import { readMade, TASK_FILE } from '../spool/task-manifest.ts';

/**
 * restbatch's task workflow over the spool: a task is `<queue>/tasks/<name>/task.yaml`, which lists
 * its job ids in order (spool/task-manifest.ts). Status counts, results in order, and resume
 * (queue again only what failed or was cancelled) are computed from the state folders; a job whose
 * folder is not made yet (past the task's `made.json` mark) is queued.
 */

const manifestSchema = z.object({
  name: z.string(),
  queue: z.string(),
  submitted_at: z.string().optional(),
  count: z.int(),
  jobs: z.array(z.string()),
});
export type TaskManifest = z.infer<typeof manifestSchema>;

export interface TaskJob {
  index: number;
  id: string;
  /** Where the job is now; undefined: in no state folder any more. */
  queue?: string | undefined;
  state?: JobStateName | undefined;
}

export function readManifest(layout: SpoolLayout, queue: string, name: string): TaskManifest {
  const file = path.join(layout.taskDir(queue, name), TASK_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT')
      throw new BatchdError('UNKNOWN_TASK', `No task "${name}" in queue "${queue}"`, { queue, task: name });
    throw error;
  }
  const parsed = manifestSchema.safeParse(loadText(text, file));
  if (!parsed.success)
    throw new BatchdError('INTERNAL', `${file} is damaged: ${parsed.error.issues[0]?.message ?? 'invalid'}`, {
      file,
    });
  return parsed.data;
}

/**
 * Where each job of a task is: one listing per state folder, not one lookup per job. A job with
 * no folder at or past the task's mark has not had its folder made yet: it is queued.
 */
export function locateTaskJobs(
  layout: SpoolLayout,
  queues: readonly string[],
  manifest: TaskManifest,
): TaskJob[] {
  // Read before the listings: a job made after it is then still found in its folder or counted queued.
  const made = readMade(layout.taskDir(manifest.queue, manifest.name))?.made ?? manifest.jobs.length;
  const where = statesInQueue(layout, manifest.queue, manifest.jobs);
  return manifest.jobs.map((id, index) => {
    const state = where.get(id) ?? (index >= made ? 'queued' : undefined);
    if (state !== undefined) return { index, id, queue: manifest.queue, state };
    const moved = locateJob(layout, queues, id); // moved to another queue
    return { index, id, queue: moved?.queue, state: moved?.state };
  });
}

/** The state folder of each job of a queue (of the shards of `ids` for finished ones). */
export function statesInQueue(
  layout: SpoolLayout,
  queue: string,
  ids: readonly string[],
): Map<string, JobStateName> {
  const where = new Map<string, JobStateName>();
  const shards = new Set(ids.map(shardOf));
  for (const state of JOB_STATES) {
    const dirs = isFinished(state)
      ? [...shards].map((s) => path.join(layout.stateDir(queue, state), s))
      : [layout.stateDir(queue, state)];
    for (const dir of dirs) for (const id of namesIn(dir)) if (isJobId(id)) where.set(id, state);
  }
  return where;
}

export function taskStatus(manifest: TaskManifest, jobs: readonly TaskJob[]): TaskStatus {
  const status: TaskStatus = {
    name: manifest.name,
    queue: manifest.queue,
    total: jobs.length,
    queued: 0,
    running: 0,
    done: 0,
    failed: 0,
    cancelled: 0,
    missing: 0,
    resolved: false,
  };
  for (const job of jobs) status[job.state ?? 'missing'] += 1;
  status.resolved = status.queued === 0 && status.running === 0;
  return status;
}

/** Every job's outcome and result.json, in the task's order. */
export function taskResults(layout: SpoolLayout, jobs: readonly TaskJob[]): TaskResult[] {
  return jobs.map((job) => {
    if (job.state === undefined || job.queue === undefined) {
      return { index: job.index, id: job.id, status: 'missing', exit_code: null, error: null, result: null };
    }
    const dir = layout.jobDir(job.queue, job.state, job.id);
    let exitCode: number | null = null;
    let error: string | null = null;
    try {
      const state = readJobState(dir);
      exitCode = state.last?.exit_code ?? null;
      error = job.state === 'done' ? null : (state.last?.error ?? null);
    } catch {
      // moved since it was located: the next read shows it
    }
    return {
      index: job.index,
      id: job.id,
      status: job.state,
      exit_code: exitCode,
      error,
      result: readResult(dir),
    };
  });
}

/** The jobs resume queues again: those that failed or were cancelled (done, queued and running ones are left alone). */
export function resumable(jobs: readonly TaskJob[]): TaskJob[] {
  return jobs.filter((job) => job.state === 'failed' || job.state === 'cancelled');
}

/** Queue again the failed and cancelled jobs of a task, through the dispatcher's retry (the same as `<id>.retry` request files). */
export async function resumeTask(
  jobs: readonly TaskJob[],
  retry: (id: string) => Promise<unknown>,
): Promise<{ resumed: string[]; errors: { id: string; message: string }[] }> {
  const resumed: string[] = [];
  const errors: { id: string; message: string }[] = [];
  for (const job of resumable(jobs)) {
    try {
      await retry(job.id);
      resumed.push(job.id);
    } catch (error) {
      errors.push({ id: job.id, message: coerceError(error).message });
    }
  }
  return { resumed, errors };
}

function readResult(dir: string): unknown {
  let text: string;
  try {
    text = readFileSync(path.join(dir, RESULT_FILE), 'utf8');
  } catch {
    return null;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { unparsed: text.slice(0, 65_536) };
  }
}

function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
