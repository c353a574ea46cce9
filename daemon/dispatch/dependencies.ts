import { coerceError } from '../errors.ts';
import type { JobStateName } from '../jobs/status.ts';
import type { Logger } from '../log.ts';
import { locateJob } from '../spool/find.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import type { JobLocks } from '../spool/lock.ts';
import type { QueueRegistry } from '../spool/queues.ts';
import type { Transitions } from '../spool/transition.ts';
import { underLock } from './job-access.ts';
import type { QueuedIndex } from './queued-index.ts';
import type { Entry } from './ready-list.ts';

export interface DependenciesDeps {
  layout: SpoolLayout;
  queues: QueueRegistry;
  transitions: Transitions;
  locks: JobLocks;
  log: Logger;
  index: QueuedIndex;
  /** Whether this dispatcher runs the job now. */
  running: { has(id: string): boolean };
  /** Schedule a dispatch pass. */
  pump: () => void;
  /** Make the folder of a task's job that has none yet (DispatcherDeps.makeJob). */
  makeJob?: ((id: string) => boolean) | undefined;
}

/**
 * The `after` links between queued jobs: which jobs wait for which. A job whose dependencies are
 * all done becomes ready; one whose dependency failed, was cancelled or is gone fails.
 */
export class Dependencies {
  readonly #d: DependenciesDeps;
  /** Per job, the queued jobs waiting for it. */
  readonly #dependents = new Map<string, Set<string>>();

  constructor(deps: DependenciesDeps) {
    this.#d = deps;
  }

  /**
   * Record what a newly known job waits for, in `entry.pending`. Returns why it must fail if a
   * dependency failed, was cancelled or is gone (looking no further).
   */
  wait(entry: Entry, after: readonly string[]): string | undefined {
    const { index, running } = this.#d;
    for (const dep of after) {
      if (index.has(dep) || running.has(dep)) {
        (entry.pending ??= new Set()).add(dep);
        this.#addDependent(dep, entry.id);
        continue;
      }
      const where = this.#locate(dep);
      if (where === undefined || where.state === 'failed' || where.state === 'cancelled') {
        (entry.pending ??= new Set()).add(dep); // keeps it out of the ready list while it is failed
        return where === undefined
          ? `dependency ${dep} no longer exists`
          : `dependency ${dep} ${where.state}`;
      }
      if (where.state !== 'done') {
        // Queued or running under another dispatcher: looked at again on each rescan.
        (entry.pending ??= new Set()).add(dep);
        this.#addDependent(dep, entry.id);
      }
    }
    return undefined;
  }

  /** Dependencies that live with other dispatchers: look at the spool again. */
  recheck(): void {
    const { index, running } = this.#d;
    for (const entry of index.waiting()) {
      for (const dep of [...(entry.pending ?? [])]) {
        if (index.has(dep) || running.has(dep)) continue;
        const where = this.#locate(dep);
        if (where === undefined) this.ended(dep, 'failed', `dependency ${dep} no longer exists`);
        else this.ended(dep, where.state);
      }
    }
  }

  /** Where a dependency is; a task's job not made yet is made now (it is queued, not gone). */
  #locate(dep: string): ReturnType<typeof locateJob> {
    const where = locateJob(this.#d.layout, this.#d.queues.names(), dep);
    if (where !== undefined || this.#d.makeJob?.(dep) !== true) return where;
    return locateJob(this.#d.layout, this.#d.queues.names(), dep);
  }

  /** A job reached `state`: the jobs waiting for it become ready (done) or fail (failed, cancelled). */
  ended(dep: string, state: JobStateName, why = `dependency ${dep} ${state}`): void {
    if (state === 'queued' || state === 'running') return;
    const ids = this.#dependents.get(dep);
    if (ids === undefined) return;
    this.#dependents.delete(dep);
    const { index } = this.#d;
    for (const id of ids) {
      const entry = index.get(id);
      if (entry === undefined) continue;
      if (state === 'done') {
        entry.pending?.delete(dep);
        if (entry.pending?.size === 0) {
          entry.pending = undefined;
          index.unplace(entry);
          index.place(entry);
        }
      } else {
        void this.fail(entry, why);
      }
    }
    this.#d.pump();
  }

  /** Move a queued job to `failed/` because of a dependency; the jobs waiting for it follow. */
  async fail(entry: Entry, why: string): Promise<void> {
    try {
      await underLock(this.#d.locks, entry.id, () => {
        this.#d.transitions.move({ id: entry.id, queue: entry.queue }, 'queued', 'failed', {
          reason: why,
          update: (s) => {
            s.last = {
              attempt: s.attempts,
              outcome: 'dependency-failed',
              error: why,
              ended_at: new Date().toISOString(),
            };
          },
        });
      });
    } catch (error) {
      this.#d.log.warn(
        { jobId: entry.id, err: coerceError(error) },
        'could not fail a job whose dependency failed',
      );
      return;
    }
    this.#d.index.forget(entry.id);
    this.ended(entry.id, 'failed');
  }

  #addDependent(dep: string, id: string): void {
    let set = this.#dependents.get(dep);
    if (set === undefined) this.#dependents.set(dep, (set = new Set()));
    set.add(id);
  }
}
