import { readdirSync } from 'node:fs';

import type { ConfigStore } from '../config/store.ts';
import { queuedInOrder } from '../dispatch/reorder.ts';
import { isOpen, nextOpening } from '../dispatch/schedule.ts';
import type { EventBus } from '../events.ts';
import type { JobStateName } from '../jobs/status.ts';
import type { TaskRef } from '../jobs/task-ref.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import type { QueueRegistry } from '../spool/queues.ts';
import { resolveTaskRef } from '../tasks/job-ref.ts';
import {
  locateTaskJobs,
  readManifest,
  type TaskJob,
  type TaskManifest,
  taskResults,
} from '../tasks/tasks.ts';
import { JobCounts } from '../views/counts.ts';
import { type JobSort, listJobsSorted, type SortedListing } from '../views/job-sort.ts';
import { idsIn, type JobListing, readJob, readJobStateAt, readListing } from '../views/jobs.ts';

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

  constructor(layout: SpoolLayout, queues: QueueRegistry, config: ConfigStore, events: EventBus) {
    this.#layout = layout;
    this.#queues = queues;
    this.#config = config;
    this.counts = new JobCounts(layout);
    events.on('job:transition', (e) => {
      this.counts.invalidate(e.queue);
      if (e.toQueue !== undefined) this.counts.invalidate(e.toQueue);
    });
    events.on('job:accepted', (e) => this.counts.invalidate(e.queue));
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
    return listJobsSorted(this.#layout, queues, states, limit, cursor, sort);
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
