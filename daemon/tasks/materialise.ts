import { existsSync } from 'node:fs';

import { coerceError } from '../errors.ts';
import type { EventBus } from '../events.ts';
import type { Logger } from '../log.ts';
import { type AcceptedJob, initialState, makeTaskJobs } from '../spool/accept.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import { readMade, readTaskJobs, writeMade } from '../spool/task-manifest.ts';
import { statesInQueue } from './tasks.ts';

/** Jobs made in one turn of the event loop: a turn stays short even where a file costs a millisecond. */
export const MAKE_STEP = 32;
/** How many made jobs of a task the dispatcher is kept holding, queued, at most: the chunk ahead. */
export const MAKE_AHEAD = 256;
/** How often jobs that left the dispatcher's index without an event are looked for (purges, queue removal). */
const PRUNE_EVERY_MS = 500;

export interface MaterialiserDeps {
  layout: SpoolLayout;
  events: EventBus;
  log: Logger;
  durable: () => boolean;
  /** Whether the dispatcher still holds the job (queued or running). */
  holds: (id: string) => boolean;
  /** Hand made jobs to the dispatcher (they were announced at their acceptance). */
  handOn: (jobs: AcceptedJob[]) => void;
}

interface TaskRun {
  queue: string;
  name: string;
  dir: string;
  jobs: AcceptedJob[];
  /** Jobs, from the first, whose folders exist. */
  made: number;
  /** Made jobs the dispatcher holds queued. */
  ahead: Set<string>;
  /**
   * A run resumed after a crash: the jobs that had a folder then (the step under way may have made
   * some; with a mark not yet on disk after a power loss, more). Those are not made again.
   */
  present: ReadonlySet<string>;
}

/**
 * Makes the job folders of committed tasks (spool/task-manifest.ts) in order, as the dispatcher
 * needs them: the first MAKE_STEP at once, then more whenever fewer than MAKE_AHEAD of the task's
 * jobs wait in `queued/`. Each step makes its folders, then writes the task's `made.json`, then
 * hands the jobs on; so a job is never handed on (and never runs) before the mark counts it.
 */
export class TaskMaterialiser {
  readonly #d: MaterialiserDeps;
  readonly #runs = new Set<TaskRun>();
  /** Job id → its run, for the jobs a run has ahead. */
  readonly #byJob = new Map<string, TaskRun>();
  /** Job id → its run and place, for the jobs of a run not made yet (makeNow). */
  readonly #unmade = new Map<string, { run: TaskRun; at: number }>();
  #immediate: NodeJS.Immediate | undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #off: () => void;
  #closed = false;

  constructor(deps: MaterialiserDeps) {
    this.#d = deps;
    this.#off = deps.events.on('job:transition', ({ jobId, from }) => {
      if (from !== 'queued') return;
      const run = this.#byJob.get(jobId);
      if (run === undefined) return;
      this.#byJob.delete(jobId);
      run.ahead.delete(jobId);
      if (run.ahead.size < MAKE_AHEAD) this.#schedule();
    });
    this.#timer = setInterval(() => this.#prune(), PRUNE_EVERY_MS);
    this.#timer.unref();
  }

  /** A task just committed by this process: its first folders are made now. */
  start(queue: string, name: string, jobs: AcceptedJob[]): void {
    const run: TaskRun = {
      queue,
      name,
      dir: this.#d.layout.taskDir(queue, name),
      jobs,
      made: 0,
      ahead: new Set(),
      present: new Set(),
    };
    this.#add(run);
    this.#step(run);
    this.#schedule();
  }

  /**
   * Make a job's folder now, with those of the jobs before it in its task: a job asked for by id
   * (a view, a control verb, a dependency) before its turn came. False when it is no unmade job of
   * this process's tasks, or its folder could not be made (logged).
   */
  makeNow(id: string): boolean {
    const found = this.#unmade.get(id);
    if (found === undefined) return false;
    const { run, at } = found;
    while (this.#runs.has(run) && run.made <= at) {
      const before = run.made;
      this.#step(run);
      if (run.made === before) return false;
    }
    return run.made > at;
  }

  /**
   * A committed task whose maker died (taskToResume): its mark is taken over and the rest of its
   * folders are made from there.
   */
  resume(queue: string, name: string): void {
    const dir = this.#d.layout.taskDir(queue, name);
    const mark = readMade(dir);
    if (mark === undefined) return;
    const jobs = readTaskJobs(dir).map(({ order, spec }) => {
      const state = initialState(spec);
      state.order = order;
      state.task = name;
      return { spec, state };
    });
    if (mark.made >= jobs.length) return;
    writeMade(dir, mark.made, jobs.length, this.#d.durable()); // ours from now on
    const ids = jobs.map((job) => job.spec.id);
    const present = new Set(statesInQueue(this.#d.layout, queue, ids).keys());
    const run: TaskRun = { queue, name, dir, jobs, made: mark.made, ahead: new Set(), present };
    this.#add(run);
    this.#d.log.warn(
      { queue, task: name, made: mark.made, count: jobs.length },
      'making the rest of the folders of a task whose maker stopped',
    );
    this.#schedule();
  }

  /** Forget the tasks of a removed queue. */
  forgetQueue(queue: string): void {
    for (const run of [...this.#runs]) if (run.queue === queue) this.#end(run);
  }

  close(): void {
    this.#closed = true;
    this.#off();
    clearInterval(this.#timer);
    clearImmediate(this.#immediate);
  }

  #schedule(): void {
    if (this.#immediate !== undefined || this.#closed) return;
    this.#immediate = setImmediate(() => {
      this.#immediate = undefined;
      let more = false;
      for (const run of [...this.#runs]) {
        if (run.ahead.size >= MAKE_AHEAD) continue;
        this.#step(run);
        if (this.#runs.has(run) && run.ahead.size < MAKE_AHEAD) more = true;
      }
      if (more) this.#schedule();
    });
  }

  /** Make the next MAKE_STEP folders of a run, mark them, hand them on. */
  #step(run: TaskRun): void {
    if (this.#closed) return;
    const from = run.made;
    const to = Math.min(from + MAKE_STEP, run.jobs.length);
    const next = run.jobs.slice(from, to);
    const durable = this.#d.durable();
    // Jobs found at a resume are in the dispatcher's index already (indexed from queued/) or past it.
    const missing = run.present.size === 0 ? next : next.filter((job) => !run.present.has(job.spec.id));
    try {
      if (!existsSync(run.dir)) {
        this.#end(run); // the task was removed (its queue deleted)
        return;
      }
      makeTaskJobs(this.#d.layout, run.queue, missing, durable);
      writeMade(run.dir, to, run.jobs.length, durable);
    } catch (error) {
      // Tried again at the next prune; the jobs are in no state folder meanwhile, so still shown queued.
      this.#d.log.error(
        { queue: run.queue, task: run.name, err: coerceError(error) },
        'could not make the folders of a task',
      );
      return;
    }
    run.made = to;
    for (const job of next) this.#unmade.delete(job.spec.id);
    for (const job of missing) {
      run.ahead.add(job.spec.id);
      this.#byJob.set(job.spec.id, run);
    }
    this.#d.handOn(missing);
    if (run.made >= run.jobs.length) this.#end(run);
  }

  #add(run: TaskRun): void {
    this.#runs.add(run);
    for (let at = run.made; at < run.jobs.length; at++) {
      const id = run.jobs[at]?.spec.id;
      if (id !== undefined) this.#unmade.set(id, { run, at });
    }
  }

  #end(run: TaskRun): void {
    this.#runs.delete(run);
    for (const id of run.ahead) this.#byJob.delete(id);
    for (let at = run.made; at < run.jobs.length; at++) {
      const id = run.jobs[at]?.spec.id;
      if (id !== undefined) this.#unmade.delete(id);
    }
  }

  /** Jobs that left the dispatcher without a move from `queued/` (purged, their queue removed). */
  #prune(): void {
    for (const [id, run] of this.#byJob) {
      if (this.#d.holds(id)) continue;
      this.#byJob.delete(id);
      run.ahead.delete(id);
    }
    if (this.#runs.size > 0) this.#schedule();
  }
}
