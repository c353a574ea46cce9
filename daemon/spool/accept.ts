import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { errnoCode } from '../errors.ts';
import { nextOrder, reserveOrders } from '../jobs/id.ts';
import type { JobSpec } from '../jobs/spec.ts';
import { diskError, fsyncDir } from './atomic.ts';
import type { SpoolLayout } from './layout.ts';
import { HOST_TAG } from './owner.ts';
import { moveJobFolder } from './transition.ts';
import {
  MADE_FILE,
  serializeMade,
  SPECS_FILE,
  TASK_FILE,
  writeTaskJobs,
  writeTaskListing,
} from './task-manifest.ts';
import { JOB_FILE, type JobState, serializeSpec, serializeState, STATE_FILE } from './state-file.ts';

export interface AcceptedJob {
  spec: JobSpec;
  state: JobState;
}

/** Where the job file came from: a drop to take out of `incoming/`, or bytes to keep (API). */
export type Origin = { kind: 'drop'; file: string } | { kind: 'bytes'; text: string; ext: string };

/** An acceptance built in `.staging/`, not committed yet: none of it is visible. */
export interface Staged {
  queue: string;
  jobs: AcceptedJob[];
  /** The acceptance's folder in `.staging/`. */
  dir: string;
  /** A task's name (reserved in this process until the task is committed or abandoned). */
  taskName: string | undefined;
  /** Where a task's manifest goes: `tasks/<name>`. */
  taskDir: string | undefined;
  /** Files written and folders whose entries changed: what must be on disk before the drop is taken. */
  written: string[];
  committed: boolean;
  /** Where a single job is committed: `running/` when it was claimed at its acceptance. */
  into: 'queued' | 'running';
  /** A single job's files by their names in its folder, as written (what the journal records). */
  files: Record<string, string> | undefined;
}

/**
 * A single job claimed as it is accepted (Dispatcher.claimOnArrival): its record is written as the
 * claim writes it, and the job is committed straight into `running/`.
 */
export type ArrivalClaim = (state: JobState) => void;

/**
 * The name of a job's (or a task's) folder in `.staging/` while this process writes it: recovery
 * tells from it whether its writer is alive (spool/recovery.ts).
 */
export function stagingName(id: string): string {
  return `${HOST_TAG}-${process.pid}-${id}`;
}

/** Task folders being staged in this process: two tasks staged at once must not pick one name. */
const reservedTaskDirs = new Set<string>();

/**
 * Write accepted jobs into `queued/`, every step in this turn (acceptance.ts, the one way in,
 * calls this or DurableAcceptor's group commit). Everything is built in `.staging/` first; the
 * commit point of a single job is the rename of its folder into `queued/`, and of a task the
 * rename of its manifest into `tasks/`. A crash before the commit leaves the drop where it was; after it, recovery finishes it.
 * The drop is taken into the staging folder only once the files beside it are complete (durable:
 * on disk), so recovery may commit any staging folder that holds its drop.
 *
 * This runs the steps one after another; durable, each step's writes are fsynced before the next.
 * DurableAcceptor runs the same steps for many acceptances at once and shares the fsyncs.
 *
 * `claim`, for a single job that may start at once: its caller holds the job's lock, and the job
 * is committed into `running/` with the record of its claim, where a claim after acceptance would
 * write `state.yaml` a second time and rename the folder again.
 */
export function acceptJobs(
  layout: SpoolLayout,
  queue: string,
  specs: JobSpec[],
  origin: Origin,
  durable: boolean,
  claim?: ArrivalClaim,
): AcceptedJob[] {
  const staged = stageJobs(layout, queue, specs, origin, claim);
  return staged === undefined ? [] : commitAndFinish(layout, staged, origin, durable);
}

/** Steps 2–4 for a staged acceptance; durable, each step's writes are fsynced before the next. */
function commitAndFinish(
  layout: SpoolLayout,
  staged: Staged,
  origin: Origin,
  durable: boolean,
): AcceptedJob[] {
  // fsyncDir opens read-only: it serves files as well as folders.
  const sync = (paths: string[]): void => {
    if (durable) for (const p of paths) fsyncDir(p);
  };
  try {
    sync(staged.written);
    if (!takeOrigin(staged, origin)) {
      abandonStaged(staged, origin);
      return [];
    }
    sync(commitStaged(layout, staged, origin));
    sync(finishStaged(layout, staged));
    return staged.jobs;
  } catch (error) {
    abandonStaged(staged, origin);
    throw diskError(error, staged.dir);
  }
}

/**
 * Step 1: write the jobs (and an API submission's bytes, under a dot name) into a new staging
 * folder. Undefined: no specs. Throws with the staging folder removed.
 */
export function stageJobs(
  layout: SpoolLayout,
  queue: string,
  specs: JobSpec[],
  origin: Origin,
  claim?: ArrivalClaim,
): Staged | undefined {
  const staged = beginStage(layout, queue, specs, origin, claim);
  if (staged === undefined || staged.taskName === undefined) return staged;
  try {
    stageTask(staged, origin);
  } catch (error) {
    abandonStaged(staged, origin);
    throw diskError(error, staged.dir);
  }
  return staged;
}

/** The staging folder; a single job is written whole, a task's manifest by stageTask. */
function beginStage(
  layout: SpoolLayout,
  queue: string,
  specs: JobSpec[],
  origin: Origin,
  claim?: ArrivalClaim,
): Staged | undefined {
  const first = specs[0];
  if (first === undefined) return undefined;
  const dir = path.join(layout.folder(queue, 'staging'), stagingName(first.id));
  const single = first.task === undefined && specs.length === 1;
  const staged: Staged = {
    queue,
    jobs: single ? [{ spec: first, state: initialState(first) }] : [],
    dir,
    taskName: undefined,
    taskDir: undefined,
    written: [],
    committed: false,
    into: 'queued',
    files: undefined,
  };
  try {
    if (single) {
      if (claim !== undefined) {
        claim((staged.jobs[0] as AcceptedJob).state);
        staged.into = 'running';
      }
      mkdirSync(dir);
      staged.files = writeJob(dir, staged.jobs[0] as AcceptedJob, staged.written);
      if (origin.kind === 'bytes') {
        writeTo(path.join(dir, `.drop.${origin.ext}`), origin.text, staged.written);
        staged.files[`drop.${origin.ext}`] = origin.text;
      }
      staged.written.push(dir);
      return staged;
    }
    mkdirSync(path.join(dir, 'jobs'), { recursive: true });
    mkdirSync(path.join(dir, 'task'));
    const taskName = reserveTaskName(layout, queue, first.task?.name ?? first.id);
    staged.taskName = taskName;
    staged.taskDir = layout.taskDir(queue, taskName);
    // A task's jobs take consecutive order numbers (one reservation, not a call per job).
    const firstOrder = reserveOrders(specs.length);
    staged.jobs = specs.map((spec, index) => {
      const state = initialState(spec, firstOrder + index);
      state.task = taskName;
      return { spec, state };
    });
    return staged;
  } catch (error) {
    abandonStaged(staged, origin);
    throw diskError(error, dir);
  }
}

/**
 * A task is staged as its manifest alone (spool/task-manifest.ts): every job's spec in one file, and
 * no job folder. Its folders are made after the commit, in order, as the dispatcher needs them
 * (makeTaskJobs), so a task of any size is committed in a few writes and starts at once.
 */
function stageTask(staged: Staged, origin: Origin): void {
  const taskName = staged.taskName as string;
  for (const job of staged.jobs) if (job.spec.task !== undefined) job.spec.task.name = taskName;
  const manifest = path.join(staged.dir, 'task');
  const specs = path.join(manifest, SPECS_FILE);
  writeTaskJobs(specs, staged.jobs);
  writeTo(path.join(manifest, MADE_FILE), serializeMade(0, staged.jobs.length), staged.written);
  const listing = path.join(manifest, TASK_FILE);
  writeTaskListing(listing, taskName, staged.queue, staged.jobs);
  staged.written.push(specs, listing);
  if (origin.kind === 'bytes')
    writeTo(path.join(manifest, `.drop.${origin.ext}`), origin.text, staged.written);
  // The staging folder outlives the commit (recovery finishes a committed task from it): its entry counts too.
  staged.written.push(manifest, path.join(staged.dir, 'jobs'), staged.dir, path.dirname(staged.dir));
}

/**
 * Make the folders of jobs of a committed task in `queued/`, each written in `.staging/` and then
 * renamed in (a crash between leaves a staging folder without a drop, which recovery removes).
 * Durable: every file and folder is on disk before this returns.
 */
export function makeTaskJobs(
  layout: SpoolLayout,
  queue: string,
  jobs: readonly AcceptedJob[],
  durable: boolean,
): void {
  const staging = layout.folder(queue, 'staging');
  const written: string[] = [];
  const moves: [string, string, string][] = [];
  for (const job of jobs) {
    const dir = `${staging}/${stagingName(job.spec.id)}`;
    try {
      mkdirSync(dir);
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw diskError(error, dir);
      rmSync(dir, { recursive: true, force: true }); // left by an attempt that failed half-way
      mkdirSync(dir);
    }
    writeJob(dir, job, written);
    written.push(dir);
    moves.push([dir, layout.jobDir(queue, 'queued', job.spec.id), job.spec.id]);
  }
  try {
    if (durable) for (const p of written) fsyncDir(p);
    for (const [from, to, id] of moves) moveJobFolder({ id, queue }, 'staging', 'queued', from, to);
    if (durable) fsyncDir(layout.stateDir(queue, 'queued'));
  } catch (error) {
    for (const [from] of moves) rmSync(from, { recursive: true, force: true });
    throw diskError(error, staging);
  }
}

/**
 * Step 2: take the drop into the staging folder (an API submission's bytes get their real name).
 * `false`: another daemon took the drop first.
 */
export function takeOrigin(staged: Staged, origin: Origin): boolean {
  const into = dropFolder(staged);
  if (origin.kind === 'bytes') {
    renameSync(path.join(into, `.drop.${origin.ext}`), path.join(into, `drop.${origin.ext}`));
    return true;
  }
  try {
    renameSync(origin.file, path.join(into, `drop.${dropExt(origin.file)}`));
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw error;
  }
}

/** Step 3, the commit point. Returns the folders whose entries changed. */
export function commitStaged(layout: SpoolLayout, staged: Staged, origin: Origin): string[] {
  const changed = origin.kind === 'drop' ? [path.dirname(origin.file)] : [];
  const first = staged.jobs[0] as AcceptedJob;
  if (staged.taskName === undefined) {
    const target = layout.jobDir(staged.queue, staged.into, first.spec.id);
    moveJobFolder({ id: first.spec.id, queue: staged.queue }, 'staging', staged.into, staged.dir, target);
    staged.committed = true;
    changed.push(path.dirname(target), target);
    return changed;
  }
  const target = staged.taskDir ?? layout.taskDir(staged.queue, staged.taskName);
  renameSync(path.join(staged.dir, 'task'), target);
  staged.committed = true;
  reservedTaskDirs.delete(target);
  changed.push(path.dirname(target), target);
  return changed;
}

/** Step 4, after the commit: a task's jobs go into `queued/`. Returns the folders whose entries changed. */
export function finishStaged(layout: SpoolLayout, staged: Staged): string[] {
  if (staged.taskName === undefined) return [];
  finishTask(layout, staged.queue, staged.dir);
  return [layout.stateDir(staged.queue, 'queued')];
}

/** Undo an acceptance that was not committed: the drop goes back to `incoming/`, staging is removed. */
export function abandonStaged(staged: Staged, origin: Origin): void {
  if (staged.taskDir !== undefined) reservedTaskDirs.delete(staged.taskDir);
  if (staged.committed) return; // recovery (or the steps still to run) finish it
  if (origin.kind === 'drop') {
    const taken = path.join(dropFolder(staged), `drop.${dropExt(origin.file)}`);
    // Not over a new drop of the same name.
    const back = existsSync(origin.file)
      ? path.join(path.dirname(origin.file), `recovered-${path.basename(staged.dir)}.${dropExt(origin.file)}`)
      : origin.file;
    try {
      renameSync(taken, back);
    } catch {
      // not taken
    }
  }
  rmSync(staged.dir, { recursive: true, force: true });
}

/** Where the drop is kept: beside a single job, or in a task's manifest. */
function dropFolder(staged: Staged): string {
  return staged.taskName === undefined ? staged.dir : path.join(staged.dir, 'task');
}

function dropExt(file: string): string {
  return path.extname(file).slice(1) || 'yaml';
}

/** One string each, not one per job of a task. */
const ACCEPTED_REASON = { drop: 'accepted (drop)', api: 'accepted (api)' } as const;

/** A job's record as its acceptance writes it. */
export function initialState(spec: JobSpec, order = nextOrder()): JobState {
  return {
    id: spec.id,
    queue: spec.queue,
    state: 'queued',
    type: spec.type,
    host: spec.host,
    priority: spec.priority,
    order,
    not_before: spec.not_before,
    after: spec.after,
    task: spec.task?.name,
    timeout_ms: spec.timeout_ms,
    submitted_at: spec.submitted_at,
    attempts: 0,
    retries: 0,
    results: [],
    history: [{ at: spec.submitted_at, from: null, to: 'queued', reason: ACCEPTED_REASON[spec.source.via] }],
  };
}

/** Returns the files written, by name. */
function writeJob(dir: string, job: AcceptedJob, written: string[]): Record<string, string> {
  const files = { [JOB_FILE]: serializeSpec(job.spec), [STATE_FILE]: serializeState(job.state) };
  for (const [name, text] of Object.entries(files)) writeTo(path.join(dir, name), text, written);
  return files;
}

function writeTo(file: string, text: string, written: string[]): void {
  writeFileSync(file, text);
  written.push(file);
}

/** A committed task's staged job folders go into `queued/`, and its staging folder is removed. */
export function finishTask(layout: SpoolLayout, queue: string, staging: string): void {
  const jobsDir = path.join(staging, 'jobs');
  for (const id of readdirSync(jobsDir)) {
    moveJobFolder(
      { id, queue },
      'staging',
      'queued',
      path.join(jobsDir, id),
      layout.jobDir(queue, 'queued', id),
    );
  }
  rmSync(staging, { recursive: true, force: true });
}

function reserveTaskName(layout: SpoolLayout, queue: string, wanted: string): string {
  let name = wanted;
  for (
    let n = 2;
    existsSync(layout.taskDir(queue, name)) || reservedTaskDirs.has(layout.taskDir(queue, name));
    n++
  )
    name = `${wanted}-${n}`;
  reservedTaskDirs.add(layout.taskDir(queue, name));
  return name;
}
