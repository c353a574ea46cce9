import { mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';

import { BatchdError, errnoCode } from '../errors.ts';
import type { EventBus } from '../events.ts';
import { type JobStateName, isFinished, isLegalTransition } from '../jobs/status.ts';
import type { Logger } from '../log.ts';
import { diskError, fsyncDir, nextOf } from './atomic.ts';
import type { SpoolLayout } from './layout.ts';
import type { SparePool } from './spares.ts';
import { type JobState, readJobState, STATE_FILE, writeJobState } from './state-file.ts';

export interface TransitionOptions {
  reason: string;
  /** Only for queued -> queued: the queue the job moves to. */
  toQueue?: string | undefined;
  /** Changes to the runtime record made with the move. */
  update?: ((state: JobState) => void) | undefined;
  /** The record as the caller last wrote it, to save a read. */
  known?: JobState | undefined;
}

/**
 * The only code that moves job folders. Every move is checked against the state table, written to
 * `state.yaml` with its reason, done as one rename, logged as `from -> to` and announced on the
 * event stream. The caller holds the job's lock (or owns a job nobody else can see yet).
 */
export class Transitions {
  readonly #layout: SpoolLayout;
  readonly #events: EventBus;
  readonly #log: Logger;
  readonly #durable: () => boolean;
  readonly #spares: SparePool | undefined;
  readonly #shards = new Set<string>();

  /** `spares`: the dispatcher's pool of spare files, for state writes (atomic.ts, writeFileRecycled). */
  constructor(
    layout: SpoolLayout,
    events: EventBus,
    log: Logger,
    durable: () => boolean,
    spares?: SparePool,
  ) {
    this.#layout = layout;
    this.#events = events;
    this.#log = log;
    this.#durable = durable;
    this.#spares = spares;
  }

  move(
    job: { id: string; queue: string },
    from: JobStateName,
    to: JobStateName,
    options: TransitionOptions,
  ): JobState {
    const toQueue = options.toQueue ?? job.queue;
    if (!isLegalTransition(from, to) || (from === to && toQueue === job.queue)) {
      throw new BatchdError('TRANSITION_ILLEGAL', `A job cannot go from ${from} to ${to}`, {
        jobId: job.id,
        from,
        to,
      });
    }
    const source = this.#layout.jobDir(job.queue, from, job.id);
    const target = this.#layout.jobDir(toQueue, to, job.id);
    const durable = this.#durable();
    let state: JobState;
    try {
      state = options.known ?? readJobState(source, { locked: true });
    } catch (error) {
      throw gone(error, job, from, to);
    }
    options.update?.(state);
    recordMove(state, from, to, options.reason, toQueue);
    try {
      writeJobState(source, state, durable, this.#spares);
      if (isFinished(to)) this.#ensureShard(path.dirname(target));
      renameSync(source, target);
      if (durable) {
        fsyncDir(path.dirname(source));
        fsyncDir(path.dirname(target));
      }
    } catch (error) {
      throw gone(diskError(error, source), job, from, to);
    }
    // A finished job is rarely written again: its temp file goes back to the pool for the next claim.
    if (isFinished(to)) this.#spares?.reclaim(nextOf(path.join(target, STATE_FILE)));
    this.announce(job, from, to, options.reason, toQueue);
    return state;
  }

  /**
   * Log and announce a move. `move` does it for each move; a job that its acceptance committed
   * straight into `running/` (accept.ts, with the record of this move) is announced by its caller.
   */
  announce(
    job: { id: string; queue: string },
    from: JobStateName,
    to: JobStateName,
    reason: string,
    toQueue = job.queue,
  ): void {
    this.#log.debug({ jobId: job.id, queue: toQueue, reason }, `job ${from} -> ${to}`);
    this.#events.emit('job:transition', { jobId: job.id, queue: job.queue, from, to, toQueue, reason });
  }

  /** Change a job's runtime record without moving it (priority), under the job's lock. */
  update(
    job: { id: string; queue: string },
    state: JobStateName,
    reason: string,
    change: (s: JobState) => void,
  ): JobState {
    const dir = this.#layout.jobDir(job.queue, state, job.id);
    let record: JobState;
    try {
      record = readJobState(dir, { locked: true });
      change(record);
      record.history.push({ at: new Date().toISOString(), from: state, to: state, reason });
      writeJobState(dir, record, this.#durable(), this.#spares);
    } catch (error) {
      throw gone(diskError(error, dir), job, state, state);
    }
    this.#log.debug({ jobId: job.id, queue: job.queue }, reason);
    return record;
  }

  #ensureShard(dir: string): void {
    if (this.#shards.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    this.#shards.add(dir);
  }
}

/** A move as the job's record keeps it: its state, its queue, and a line of history. */
export function recordMove(
  state: JobState,
  from: JobStateName,
  to: JobStateName,
  reason: string,
  toQueue = state.queue,
): void {
  const fromQueue = state.queue;
  state.state = to;
  state.queue = toQueue;
  state.history.push({
    at: new Date().toISOString(),
    from,
    to,
    queue: toQueue === fromQueue ? undefined : toQueue,
    reason,
  });
}

function gone(error: unknown, job: { id: string; queue: string }, from: string, to: string): unknown {
  if (error instanceof BatchdError) return error;
  if (errnoCode(error) === 'ENOENT') {
    return new BatchdError(
      'JOB_GONE',
      `Job ${job.id} is no longer in ${job.queue}/${from}`,
      { jobId: job.id, from, to },
      { cause: error },
    );
  }
  return error;
}
