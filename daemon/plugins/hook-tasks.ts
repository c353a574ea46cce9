import { isFinished, type JobStateName } from '../jobs/status.ts';

/** A task's jobs where batchd last saw them, and whether it was announced as finished since. */
interface TrackedTask {
  states: Map<string, JobStateName | undefined>;
  announced: boolean;
}

/** Finished tasks remembered (so late moves of their jobs are not news); older ones are forgotten. */
const FINISHED_KEPT = 256;

/** How a task stands when its last job has ended: jobs per state, and the total. */
export type TaskCounts = Record<string, number>;

/** Where a task's jobs are now (one listing of its queue's state folders; tasks/tasks.ts). */
export type TaskLoader = (queue: string, task: string) => Map<string, JobStateName | undefined> | undefined;

/**
 * Finds the moment a task's last job ends, from the transitions alone: the task's jobs are learnt
 * at acceptance (or, for a task accepted before this daemon started, from one look at the spool
 * when one of its jobs first ends), then each move updates one entry. A task is announced once
 * each time all its jobs have ended: a retry of one of its jobs opens it again.
 */
export class TaskTracker {
  readonly #tasks = new Map<string, TrackedTask>();
  /** Job id → its task's key, for the jobs of tasks being tracked. */
  readonly #jobs = new Map<string, string>();
  /** Announced tasks, oldest first. */
  readonly #finished = new Set<string>();
  readonly #load: TaskLoader;

  constructor(load: TaskLoader) {
    this.#load = load;
  }

  accepted(jobId: string, queue: string, task: string): void {
    const key = keyOf(queue, task);
    let tracked = this.#tasks.get(key);
    if (tracked === undefined) this.#tasks.set(key, (tracked = { states: new Map(), announced: false }));
    tracked.states.set(jobId, 'queued');
    this.#reopen(key, tracked);
    this.#jobs.set(jobId, key);
  }

  /** The task of a job it tracks (so no state file needs reading to learn it). */
  taskOf(jobId: string): { queue: string; task: string } | undefined {
    const key = this.#jobs.get(jobId);
    return key === undefined ? undefined : splitKey(key);
  }

  /**
   * A job of a task moved to `to`. Returns the task's counts when this move ended its last
   * unfinished job, else undefined. `task` is needed only for a job not tracked yet.
   */
  moved(jobId: string, to: JobStateName, task?: { queue: string; task: string }): TaskCounts | undefined {
    let key = this.#jobs.get(jobId);
    if (key === undefined) {
      if (task === undefined || !isFinished(to)) return undefined; // learnt when it ends
      key = keyOf(task.queue, task.task);
      const states = this.#load(task.queue, task.task);
      if (states === undefined) return undefined;
      this.#tasks.set(key, { states, announced: false });
      for (const id of states.keys()) this.#jobs.set(id, key);
    }
    const tracked = this.#tasks.get(key);
    if (tracked === undefined) return undefined;
    tracked.states.set(jobId, to);
    if (!isFinished(to)) {
      this.#reopen(key, tracked);
      return undefined;
    }
    if (tracked.announced) return undefined;
    for (const state of tracked.states.values())
      if (state === 'queued' || state === 'running') return undefined;
    tracked.announced = true;
    this.#finished.add(key);
    if (this.#finished.size > FINISHED_KEPT) {
      const oldest = this.#finished.values().next().value as string;
      const old = this.#tasks.get(oldest);
      if (old !== undefined) this.#forget(oldest, old);
    }
    return countsOf(tracked);
  }

  #reopen(key: string, tracked: TrackedTask): void {
    tracked.announced = false;
    this.#finished.delete(key);
  }

  #forget(key: string, tracked: TrackedTask): void {
    this.#finished.delete(key);
    this.#tasks.delete(key);
    for (const id of tracked.states.keys()) this.#jobs.delete(id);
  }
}

function countsOf(tracked: TrackedTask): TaskCounts {
  const counts: TaskCounts = { total: tracked.states.size, done: 0, failed: 0, cancelled: 0 };
  for (const state of tracked.states.values()) {
    const name = state ?? 'missing';
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

function keyOf(queue: string, task: string): string {
  return `${queue}/${task}`;
}

function splitKey(key: string): { queue: string; task: string } {
  const slash = key.indexOf('/');
  return { queue: key.slice(0, slash), task: key.slice(slash + 1) };
}
