import { readdirSync } from 'node:fs';

import type { ConfigStore } from '../config/store.ts';
import { queuedInOrder } from '../dispatch/reorder.ts';
import { isOpen, nextOpening } from '../dispatch/schedule.ts';
import type { EventBus } from '../events.ts';
import type { JobSpec } from '../jobs/spec.ts';
import type { JobStateName } from '../jobs/status.ts';
import type { TaskRef } from '../jobs/task-ref.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import type { QueueRegistry } from '../spool/queues.ts';
import type { JobState } from '../spool/state-file.ts';
import { resolveTaskRef } from '../tasks/job-ref.ts';
import {
  locateTaskJobs,
  readManifest,
  type TaskJob,
  type TaskManifest,
  taskResults,
} from '../tasks/tasks.ts';
import { JobCounts } from '../views/counts.ts';
import { type JobSort, JobSortIndex, type SortedListing } from '../views/job-sort.ts';
import { idsIn, type JobListing, readJob, readJobStateAt, readListing } from '../views/jobs.ts';
import { COMPACT_AFTER_RECORDS, compactHeap } from './heap.ts';

/**
 * The read views of the spool, bound to this daemon's spool and queues: what a front end reads
 * goes through here, so it never sees the spool's layout.
 */
export class SpoolReads {
  readonly #layout: SpoolLayout;
  readonly #queues: QueueRegistry;
  readonly #config: ConfigStore;
  /** Job counts per queue, kept current by the transitions and acceptances of this daemon. */
  readonly counts: JobCounts;
  /** The job list's sorts, from values kept in memory. */
  readonly sorts: JobSortIndex;
  readonly #warming = new AbortController();
  #warmTimer: NodeJS.Timeout | undefined;

  /** `dispatchers`: how many dispatchers share the spool now (spool/dispatchers.ts). */
  constructor(
    layout: SpoolLayout,
    queues: QueueRegistry,
    config: ConfigStore,
    events: EventBus,
    dispatchers: () => number = () => 1,
  ) {
    this.#layout = layout;
    this.#queues = queues;
    this.#config = config;
    this.counts = new JobCounts(layout);
    this.sorts = new JobSortIndex(layout, events, dispatchers);
    events.on('job:transition', (e) => {
      this.counts.invalidate(e.queue);
      if (e.toQueue !== undefined) this.counts.invalidate(e.toQueue);
    });
    events.on('job:accepted', (e) => this.counts.invalidate(e.queue));
  }

  /** A job record (and spec) the daemon read or wrote: the sorts keep its values. */
  noteJob(state: JobState, spec?: JobSpec): void {
    if (spec !== undefined) this.sorts.facts.noteSpec(spec);
    this.sorts.facts.noteState(state);
  }

  /**
   * Fill the sorts' values in the background (what the daemon has not seen of its queues' jobs),
   * now and every `everyMs` after, until `close`.
   */
  startWarming(everyMs: number): void {
    const next = (): void => {
      if (this.#warming.signal.aborted) return;
      this.#warmTimer = setTimeout(pass, everyMs);
      this.#warmTimer.unref();
    };
    // A pass that failed (a folder that cannot be listed now) is tried again at the next; a page
    // that needs what it could not read reads it then, and says why if it still cannot.
    const pass = (): void => {
      const before = this.sorts.facts.reads.background;
      const done = (): void => {
        // A pass that read many job files (the first, on a deep spool) leaves their garbage.
        if (this.sorts.facts.reads.background - before >= COMPACT_AFTER_RECORDS) compactHeap();
        next();
      };
      void this.sorts.warm(this.#queues.names(), this.#warming.signal).then(done, next);
    };
    pass();
  }

  close(): void {
    this.#warming.abort();
    clearTimeout(this.#warmTimer);
  }

  /** The spool's folder: front ends keep their own small files under it (`.batchd/`). */
  get root(): string {
    return this.#layout.root;
  }

  /** Whether a schedule lets jobs start at `now`, and if not, when it next does (undefined: no such schedule). */
  schedule(name: string, now: Date): { open: boolean; opensAt: Date | undefined } | undefined {
    const schedule = this.#config.schedule(name);
    if (schedule === undefined) return undefined;
    const open = isOpen(schedule, now);
    return { open, opensAt: open ? undefined : nextOpening(schedule, now) };
  }

  job(id: string, withHistory = true): ReturnType<typeof readJob> {
    return readJob(this.#layout, this.#queues.names(), id, withHistory);
  }

  jobState(id: string): ReturnType<typeof readJobStateAt> {
    return readJobStateAt(this.#layout, this.#queues.names(), id);
  }

  /** One page of jobs over some queues and states, in the order `sort` asks. */
  list(
    queues: readonly string[],
    states: readonly JobStateName[],
    limit: number,
    cursor: string | undefined,
    sort: JobSort,
  ): SortedListing {
    return this.sorts.list(queues, states, limit, cursor, sort);
  }

  /** A page's jobs read; one that moved meanwhile is looked up again (or left out if gone). */
  read(listing: JobListing): ReturnType<typeof readListing> {
    return readListing(this.#layout, this.#queues.names(), listing);
  }

  ids(queue: string, state: JobStateName, limit: number): string[] {
    return idsIn(this.#layout, queue, state, limit);
  }

  /** A queue's queued jobs in the order they start. */
  queuedInOrder(queue: string): string[] {
    return queuedInOrder(this.#layout, queue).map((p) => p.id);
  }

  /** The names of a queue's tasks (their manifests' folder names), unsorted. */
  taskNames(queue: string): string[] {
    try {
      return readdirSync(this.#layout.folder(queue, 'tasks'));
    } catch {
      return [];
    }
  }

  task(queue: string, name: string): { manifest: TaskManifest; jobs: TaskJob[] } {
    const manifest = readManifest(this.#layout, queue, name);
    return { manifest, jobs: locateTaskJobs(this.#layout, this.#queues.names(), manifest) };
  }

  manifest(queue: string, name: string): TaskManifest {
    return readManifest(this.#layout, queue, name);
  }

  taskResults(jobs: readonly TaskJob[]): ReturnType<typeof taskResults> {
    return taskResults(this.#layout, jobs);
  }

  /** The id of the job a task-relative name names, looked for in `queues`. */
  taskJobId(queues: readonly string[], ref: TaskRef): string {
    return resolveTaskRef(this.#layout, queues, ref);
  }
}
