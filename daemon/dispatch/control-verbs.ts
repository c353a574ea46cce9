import { readdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';

import type { ConfigStore } from '../config/store.ts';
import { BatchdError, coerceError, errnoCode } from '../errors.ts';
import { isJobId, nextOrder } from '../jobs/id.ts';
import type { JobStateName } from '../jobs/status.ts';
import type { Logger } from '../log.ts';
import { writeFileAtomic } from '../spool/atomic.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import type { JobLocks } from '../spool/lock.ts';
import type { QueueRegistry } from '../spool/queues.ts';
import { type JobState, readJobState } from '../spool/state-file.ts';
import type { Transitions } from '../spool/transition.ts';
import type { Dependencies } from './dependencies.ts';
import { findJob, findQueued, underLock } from './job-access.ts';
import { notRunningHere, outcomeOf, type PauseOfQueue, type Pauses } from './pause.ts';
import type { QueuedIndex } from './queued-index.ts';
import { planReorder, type PriorityMove, queuedInOrder } from './reorder.ts';
import type { RunSlots } from './run-slots.ts';

/** A change of a queued job: a value sets, null clears, undefined leaves as it is. */
export interface QueuedChange {
  notBefore?: string | null | undefined;
  host?: string | null | undefined;
}

export interface ControlVerbsDeps {
  config: ConfigStore;
  queues: QueueRegistry;
  layout: SpoolLayout;
  transitions: Transitions;
  locks: JobLocks;
  log: Logger;
  index: QueuedIndex;
  slots: RunSlots;
  pauses: Pauses;
  dependencies: Dependencies;
  /** Index a job queued again (retry). */
  requeue: (state: JobState) => void;
  /** Schedule a dispatch pass. */
  pump: () => void;
  /** The dispatcher still starts jobs (it is not stopping). */
  accepting: () => boolean;
  makeJob?: ((id: string) => boolean) | undefined;
}

/**
 * The control verbs on one job or queue (the plain-file requests and the API use these): cancel,
 * pause, resume, retry, priority, reorder, move, start time, host, notes. Each changes the spool
 * under the job's lock, then the index.
 */
export class ControlVerbs {
  readonly #d: ControlVerbsDeps;

  constructor(deps: ControlVerbsDeps) {
    this.#d = deps;
  }

  /** Cancel a queued or running job; 'elsewhere' if another dispatcher runs it. */
  async cancel(id: string, reason = 'cancelled'): Promise<'cancelled' | 'stopping' | 'elsewhere'> {
    const run = this.#d.slots.get(id);
    if (run !== undefined) {
      run.controller.abort('cancel');
      return 'stopping';
    }
    const where = this.#find(id);
    if (where.state !== 'queued') {
      if (where.state === 'running') return 'elsewhere';
      throw new BatchdError(
        'CONFLICT',
        `Job ${id} is ${where.state}; only queued or running jobs can be cancelled`,
        { jobId: id },
      );
    }
    await underLock(this.#d.locks, id, () => {
      this.#d.transitions.move({ id, queue: where.queue }, 'queued', 'cancelled', {
        reason,
        update: (s) => {
          s.last = {
            attempt: s.attempts,
            outcome: 'cancelled',
            error: reason,
            ended_at: new Date().toISOString(),
          };
        },
      });
    });
    this.#d.index.forget(id);
    this.#d.dependencies.ended(id, 'cancelled');
    return 'cancelled';
  }

  /**
   * Freeze a running job (pause.ts); 'elsewhere' if another dispatcher runs it. `byQueue`: part of
   * its queue's pause (a `<id>.freeze` request), thawed when the queue is enabled again.
   */
  async pause(id: string, by: string, byQueue = false): Promise<'paused' | 'elsewhere'> {
    const run = this.#d.slots.get(id);
    if (run === undefined) return notRunningHere(id, this.#find(id).state, 'pause');
    if (!this.#d.accepting())
      throw new BatchdError('CONFLICT', `The daemon is stopping; job ${id} is not paused`, { jobId: id });
    return this.#d.pauses.pause(run, by, byQueue);
  }

  /** Thaw a paused job; 'elsewhere' if another dispatcher runs it. */
  async resume(id: string, by: string): Promise<'resumed' | 'elsewhere'> {
    const run = this.#d.slots.get(id);
    if (run === undefined) return notRunningHere(id, this.#find(id).state, 'resume');
    return this.#d.pauses.resume(run, by);
  }

  /**
   * Freeze the running jobs of a queue (with its pause): those that run here at once, and for each
   * that another dispatcher on the spool runs, a `<id>.freeze` request that it carries out (its
   * jobs are not this one's to signal). What became of each.
   */
  async pauseQueue(queue: string, by: string): Promise<PauseOfQueue[]> {
    const runs = [...this.#d.slots.values()].filter((r) => r.entry.queue === queue);
    const here = await Promise.all(
      runs.map((run) => outcomeOf(run.entry.id, this.#d.pauses.pause(run, by, true))),
    );
    return [...here, ...this.#freezeElsewhere(queue, by)];
  }

  /** Thaw the jobs that a pause of their queue froze here (those paused one by one stay paused). */
  resumeQueue(queue: string, by: string): Promise<PauseOfQueue[]> {
    const { pauses } = this.#d;
    const runs = [...this.#d.slots.values()].filter(
      (r) => r.entry.queue === queue && pauses.pausedByQueue(r.entry.id),
    );
    // A freeze no dispatcher has taken yet must not freeze a job of the queue now running again.
    this.#dropFreezeRequests(queue);
    return Promise.all(runs.map((run) => outcomeOf(run.entry.id, pauses.resume(run, by))));
  }

  #freezeElsewhere(queue: string, by: string): PauseOfQueue[] {
    const { layout, slots } = this.#d;
    const requested: PauseOfQueue[] = [];
    for (const id of listing(layout.stateDir(queue, 'running'))) {
      if (!isJobId(id) || slots.has(id)) continue;
      try {
        writeFileAtomic(path.join(layout.folder(queue, 'requests'), `${id}.freeze`), `${by}\n`, false);
        requested.push({ id, result: 'requested' });
      } catch (error) {
        requested.push({ id, result: 'refused', error: coerceError(error).message });
      }
    }
    return requested;
  }

  #dropFreezeRequests(queue: string): void {
    const dir = this.#d.layout.folder(queue, 'requests');
    for (const name of listing(dir)) {
      if (!name.endsWith('.freeze')) continue;
      try {
        unlinkSync(path.join(dir, name));
      } catch {
        // taken meanwhile
      }
    }
  }

  /** Queue a failed or cancelled job again; on_fail's count starts over. */
  async retry(id: string): Promise<JobState> {
    const where = this.#find(id);
    if (where.state !== 'failed' && where.state !== 'cancelled') {
      throw new BatchdError(
        'CONFLICT',
        `Job ${id} is ${where.state}; only failed or cancelled jobs can be retried`,
        { jobId: id },
      );
    }
    const state = await underLock(this.#d.locks, id, () =>
      this.#d.transitions.move({ id, queue: where.queue }, where.state, 'queued', {
        reason: 'retry requested',
        update: (s) => {
          s.retries = 0;
          s.order = nextOrder();
          s.cancel_requested = undefined;
        },
      }),
    );
    this.#d.requeue(state);
    return state;
  }

  async setPriority(id: string, priority: number): Promise<void> {
    const where = this.#findQueued(id, 'only queued jobs can be re-prioritised');
    await underLock(this.#d.locks, id, () => {
      this.#d.transitions.update({ id, queue: where.queue }, 'queued', `priority set to ${priority}`, (s) => {
        s.priority = priority;
      });
    });
    const { index } = this.#d;
    const entry = index.get(id);
    if (entry !== undefined) {
      index.unplace(entry);
      entry.priority = priority;
      index.place(entry);
      this.#d.pump();
    }
  }

  async move(id: string, toQueue: string): Promise<void> {
    if (!this.#d.queues.has(toQueue))
      throw new BatchdError('UNKNOWN_QUEUE', `Unknown queue "${toQueue}"`, { queue: toQueue });
    const where = this.#findQueued(id, 'only queued jobs can be moved');
    if (where.queue === toQueue) return;
    await underLock(this.#d.locks, id, () => {
      this.#d.transitions.move({ id, queue: where.queue }, 'queued', 'queued', {
        toQueue,
        reason: `moved from ${where.queue} to ${toQueue}`,
      });
    });
    const { index } = this.#d;
    const entry = index.get(id);
    if (entry !== undefined) {
      index.unplace(entry);
      entry.queue = toQueue;
      index.place(entry);
      this.#d.pump();
    }
  }

  /** Notes live in state.yaml (job.yaml is written once): changed under the job's lock, never while it runs. */
  async setNotes(id: string, notes: string | null): Promise<void> {
    try {
      await underLock(this.#d.locks, id, () => {
        const where = this.#find(id);
        if (where.state === 'running' || this.#d.slots.has(id))
          throw new BatchdError('CONFLICT', `Job ${id} is running; change its notes when it has ended`, {
            jobId: id,
          });
        this.#d.transitions.update({ id, queue: where.queue }, where.state, 'notes changed', (s) => {
          (s as { notes?: string | null }).notes = notes;
        });
      });
    } catch (error) {
      if (errnoCode(error) === 'ENOENT')
        throw new BatchdError('JOB_GONE', `Job ${id} moved while its notes were changed; try again`, {
          jobId: id,
        });
      throw error;
    }
  }

  /** Change a queued job's not_before and/or host (null clears; undefined leaves it) in one write. */
  async changeQueued(id: string, change: QueuedChange): Promise<void> {
    const host = change.host;
    if (typeof host === 'string' && this.#d.config.get('hosts', host) === undefined) {
      const message = `Unknown host "${host}"`;
      throw new BatchdError('UNKNOWN_HOST', message, { host }, { problems: [{ field: 'host', message }] });
    }
    const where = this.#findQueued(id, "only a queued job's start time or host can change");
    const said = [
      change.notBefore === undefined
        ? ''
        : `not_before ${change.notBefore === null ? 'cleared' : `set to ${change.notBefore}`}`,
      host === undefined ? '' : `host ${host === null ? 'cleared' : `set to ${host}`}`,
    ];
    await underLock(this.#d.locks, id, () => {
      // Claimed by this dispatcher but not yet started: it would start with what it read before.
      if (this.#d.slots.has(id))
        throw new BatchdError('CONFLICT', `Job ${id} is starting; it can no longer be changed`, {
          jobId: id,
        });
      this.#d.transitions.update(
        { id, queue: where.queue },
        'queued',
        said.filter(Boolean).join(', '),
        (s) => {
          if (change.notBefore !== undefined) s.not_before = change.notBefore ?? undefined;
          if (host !== undefined) s.host = host ?? undefined;
        },
      );
      // Still under the lock, so no pass of the loop sees the job half changed.
      const { index } = this.#d;
      const entry = index.get(id);
      if (entry === undefined) return;
      index.unplace(entry);
      if (change.notBefore !== undefined)
        entry.notBefore = change.notBefore === null ? undefined : Date.parse(change.notBefore);
      if (host !== undefined) entry.host = host ?? undefined;
      index.place(entry);
    });
    this.#d.pump();
  }

  /** batchd's first/more/less/last (reorder.ts): to the front or back, or one place up or down. */
  async reorder(id: string, move: PriorityMove): Promise<void> {
    const where = this.#findQueued(id, 'only queued jobs can be re-prioritised');
    const plan = planReorder(queuedInOrder(this.#d.layout, where.queue), id, move);
    if (plan.kind === 'priority') await this.setPriority(id, plan.priority);
    else if (plan.kind === 'swap')
      await this.#swap(where.queue, id, plan.with, move === 'more' ? 'up' : 'down');
  }

  /** Two queued jobs trade their priority and order, under both locks; never left sharing one place. */
  async #swap(queue: string, a: string, b: string, way: 'up' | 'down'): Promise<void> {
    const { transitions } = this.#d;
    const releaseA = await this.#d.locks.acquire(a);
    if (releaseA === undefined)
      throw new BatchdError('JOB_LOCKED', `Job ${a} is held by a running dispatcher; try again`, {
        jobId: a,
      });
    try {
      await underLock(this.#d.locks, b, () => {
        if (this.#d.slots.has(a) || this.#d.slots.has(b))
          throw new BatchdError('CONFLICT', `Job ${a} or ${b} is starting; try again`, { jobId: a });
        const jobA = { id: a, queue };
        const jobB = { id: b, queue };
        let other: JobState;
        try {
          other = readJobState(this.#d.layout.jobDir(queue, 'queued', b), { locked: true });
        } catch {
          throw new BatchdError('JOB_GONE', `Job ${b} is no longer queued in ${queue}; try again`, {
            jobId: b,
          });
        }
        const theirs = { priority: other.priority, order: other.order };
        let mine = theirs;
        const put = (place: { priority: number; order: number }) => (s: JobState) => {
          s.priority = place.priority;
          s.order = place.order;
        };
        transitions.update(jobA, 'queued', `moved one place ${way} (swapped with ${b})`, (s) => {
          mine = { priority: s.priority, order: s.order };
          put(theirs)(s);
        });
        try {
          transitions.update(
            jobB,
            'queued',
            `moved one place ${way === 'up' ? 'down' : 'up'} (swapped with ${a})`,
            put(mine),
          );
        } catch (error) {
          try {
            transitions.update(jobA, 'queued', 'swap undone', put(mine));
          } catch (undo) {
            this.#d.log.error(
              { jobId: a, err: coerceError(undo) },
              'could not undo half a swap: two jobs share a place',
            );
          }
          throw error;
        }
        this.#replace(a, theirs);
        this.#replace(b, mine);
      });
    } finally {
      await releaseA().catch(() => undefined);
    }
    this.#d.pump();
  }

  #replace(id: string, place: { priority: number; order: number }): void {
    const { index } = this.#d;
    const entry = index.get(id);
    if (entry === undefined) return;
    index.unplace(entry);
    entry.priority = place.priority;
    entry.order = place.order;
    index.place(entry);
  }

  #find(id: string): { queue: string; state: JobStateName } {
    this.#made(id);
    return findJob(this.#d.layout, this.#d.queues, id);
  }

  #findQueued(id: string, rule: string): { queue: string; state: 'queued' } {
    this.#made(id);
    return findQueued(this.#d.layout, this.#d.queues, id, rule);
  }

  /** A task's job named before its folder was made: made now, so the verb finds it. */
  #made(id: string): void {
    if (!this.#d.index.has(id)) this.#d.makeJob?.(id);
  }
}

/** A folder's names; none if it is not there. */
function listing(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
