import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { errnoCode } from '../errors.ts';
import { nextOrder } from '../jobs/id.ts';
import type { JobSpec } from '../jobs/spec.ts';
import { diskError, fsyncDir } from './atomic.ts';
import type { SpoolLayout } from './layout.ts';
import { HOST_TAG, pidAlive } from './owner.ts';
import { JOB_FILE, type JobState, serializeSpec, STATE_FILE } from './state-file.ts';

export interface AcceptedJob {
  spec: JobSpec;
  state: JobState;
}

/** Where the job file came from: a drop to take out of `incoming/`, or bytes to keep (API). */
export type Origin = { kind: 'drop'; file: string } | { kind: 'bytes'; text: string; ext: string };

const TASK_FILE = 'task.yaml';

/**
 * Write accepted jobs into `queued/`. Everything is built in `.staging/` first; the commit point of a
 * single job is the rename of its folder into `queued/`, and of a task the rename of its manifest into
 * `tasks/`. A crash before the commit leaves the drop where it was; after it, recovery finishes it.
 */
export function acceptJobs(layout: SpoolLayout, queue: string, specs: JobSpec[], origin: Origin, durable: boolean): AcceptedJob[] {
  const first = specs[0];
  if (first === undefined) return [];
  const staging = path.join(layout.folder(queue, 'staging'), `${HOST_TAG}-${process.pid}-${first.id}`);
  const jobs = specs.map((spec) => ({ spec, state: initialState(spec) }));
  try {
    if (first.task === undefined && specs.length === 1) {
      mkdirSync(staging);
      writeJob(staging, jobs[0] as AcceptedJob, durable);
      if (!keepOrigin(origin, path.join(staging, 'drop'))) return abandon(staging);
      if (durable) fsyncDir(staging);
      renameSync(staging, layout.jobDir(queue, 'queued', first.id));
      if (durable) fsyncDir(layout.stateDir(queue, 'queued'));
      return jobs;
    }
    mkdirSync(path.join(staging, 'jobs'), { recursive: true });
    const manifest = path.join(staging, 'task');
    mkdirSync(manifest);
    const taskName = uniqueTaskName(layout, queue, first.task?.name ?? first.id);
    for (const job of jobs) {
      if (job.spec.task !== undefined) job.spec.task.name = taskName;
      job.state.task = taskName;
      const dir = path.join(staging, 'jobs', job.spec.id);
      mkdirSync(dir);
      writeJob(dir, job, durable);
    }
    writeFileSync(
      path.join(manifest, TASK_FILE),
      JSON.stringify({ name: taskName, queue, submitted_at: first.submitted_at, count: jobs.length, jobs: jobs.map((j) => j.spec.id) }, null, 1) + '\n',
    );
    if (!keepOrigin(origin, path.join(manifest, 'drop'))) return abandon(staging);
    renameSync(manifest, layout.taskDir(queue, taskName));
    finishTask(layout, queue, staging);
    return jobs;
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw diskError(error, staging);
  }
}

function initialState(spec: JobSpec): JobState {
  return {
    id: spec.id,
    queue: spec.queue,
    state: 'queued',
    type: spec.type,
    host: spec.host,
    priority: spec.priority,
    order: nextOrder(),
    not_before: spec.not_before,
    after: spec.after,
    task: spec.task?.name,
    timeout_ms: spec.timeout_ms,
    submitted_at: spec.submitted_at,
    attempts: 0,
    retries: 0,
    results: [],
    history: [{ at: spec.submitted_at, from: null, to: 'queued', reason: `accepted (${spec.source.via})` }],
  };
}

function writeJob(dir: string, job: AcceptedJob, durable: boolean): void {
  writeFileSync(path.join(dir, JOB_FILE), serializeSpec(job.spec), durable ? { flush: true } : undefined);
  writeFileSync(path.join(dir, STATE_FILE), JSON.stringify(job.state, null, 1) + '\n', durable ? { flush: true } : undefined);
}

/** Move the drop into the job (the original bytes stay untouched). `false`: another daemon took it. */
function keepOrigin(origin: Origin, base: string): boolean {
  if (origin.kind === 'bytes') {
    writeFileSync(`${base}.${origin.ext}`, origin.text);
    return true;
  }
  const ext = path.extname(origin.file).slice(1) || 'yaml';
  try {
    renameSync(origin.file, `${base}.${ext}`);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw error;
  }
}

function abandon(staging: string): AcceptedJob[] {
  rmSync(staging, { recursive: true, force: true });
  return [];
}

function finishTask(layout: SpoolLayout, queue: string, staging: string): void {
  const jobsDir = path.join(staging, 'jobs');
  for (const id of readdirSync(jobsDir)) {
    renameSync(path.join(jobsDir, id), layout.jobDir(queue, 'queued', id));
  }
  rmSync(staging, { recursive: true, force: true });
}

function uniqueTaskName(layout: SpoolLayout, queue: string, wanted: string): string {
  let name = wanted;
  for (let n = 2; existsSync(layout.taskDir(queue, name)); n++) name = `${wanted}-${n}`;
  return name;
}

/**
 * Finish or undo acceptances that a dead process left in `.staging/`. Returns how many drops were
 * put back into `incoming/` and how many jobs were committed.
 */
export function recoverStaging(layout: SpoolLayout, queue: string, maxAgeForeignMs = 3_600_000): { restored: number; committed: number } {
  const root = layout.folder(queue, 'staging');
  let restored = 0;
  let committed = 0;
  for (const entry of readdirSync(root)) {
    const match = /^([0-9a-f]{8})-(\d+)-(.+)$/.exec(entry);
    const dir = path.join(root, entry);
    if (match === null) continue;
    const [, tag, pid] = match;
    const dead = tag === HOST_TAG ? !pidAlive(Number(pid)) : Date.now() - statSync(dir).mtimeMs > maxAgeForeignMs;
    if (!dead) continue;
    const drop = readdirSync(dir).find((f) => f.startsWith('drop.'));
    if (existsSync(path.join(dir, 'jobs'))) {
      const manifest = path.join(dir, 'task');
      if (existsSync(manifest)) {
        // Not committed: the drop goes back to incoming/ (if it had been taken) and is read again.
        const taskDrop = readdirSync(manifest).find((f) => f.startsWith('drop.'));
        if (taskDrop !== undefined) {
          renameSync(path.join(manifest, taskDrop), path.join(layout.folder(queue, 'incoming'), `recovered-${match[3]}${path.extname(taskDrop)}`));
          restored += 1;
        }
        rmSync(dir, { recursive: true, force: true });
      } else {
        committed += readdirSync(path.join(dir, 'jobs')).length;
        finishTask(layout, queue, dir);
      }
      continue;
    }
    if (drop !== undefined) {
      // A single job whose drop was taken: its files are complete, so commit it.
      const id = match[3] ?? '';
      renameSync(dir, layout.jobDir(queue, 'queued', id));
      committed += 1;
    } else {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { restored, committed };
}

