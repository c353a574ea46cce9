import { mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';

import { BatchdError, errnoCode } from '../errors.ts';
import type { EventBus } from '../events.ts';
import {
  type FinishedStateName,
  isFinished,
  isLegalMove,
  type JobPlace,
  type JobStateName,
} from '../jobs/status.ts';
import type { Logger } from '../log.ts';
import { diskError, fsyncDir, nextOf } from './atomic.ts';
import type { SpoolLayout } from './layout.ts';
import type { SparePool } from './spares.ts';
import { type JobState, readJobState, readJobStateWritten, STATE_FILE, writeJobState } from './state-file.ts';

export interface TransitionOptions {
  reason: string;
  /** Only for queued -> queued: the queue the job moves to. */
  toQueue?: string | undefined;
  /** Changes to the runtime record made with the move. */
  update?: ((state: JobState) => void) | undefined;
  /** The record as the caller last wrote it, to save a read. */
  known?: JobState | undefined;
  /**
   * The record this daemon wrote when it accepted or made the job, which may still be the one on
   * disk: taken if the file holds it unchanged (state-file.ts, readJobStateWritten), else read.
   */
  written?: JobState | undefined;
}

/**
 * The only code that moves job folders. Every move is checked against the state table, written to
 * `state.yaml` with its reason, done as one rename, logged as `from -> to` and announced on the
 * event stream. The caller holds the job's lock (or owns a job nobody else can see yet).
 * Acceptance, journal replay and recovery, which run where no instance is at hand (and announce
 * their jobs as accepted), make their commits with `moveJobFolder`, under the same table.
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
    if (!isLegalMove(from, to) || (from === to && toQueue === job.queue)) throw illegal(job, from, to);
    const source = this.#layout.jobDir(job.queue, from, job.id);
    const target = this.#layout.jobDir(toQueue, to, job.id);
    const durable = this.#durable();
    let state: JobState;
    try {
      state =
        options.known ??
        (options.written === undefined
          ? readJobState(source, { locked: true })
          : readJobStateWritten(source, options.written));
    } catch (error) {
      throw gone(error, job, from, to);
    }
    options.update?.(state);
    recordMove(state, from, to, options.reason, toQueue);
    try {
      writeJobState(source, state, durable, this.#spares);
      if (isFinished(to)) this.#ensureShard(path.dirname(target));
      moveJobFolder(job, from, to, source, target);
      if (durable) {
        fsyncDir(path.dirname(source));
        fsyncDir(path.dirname(target));
      }
    } catch (error) {
      throw gone(diskError(error, source), job, from, to);
    }
    // A finished job is rarely written again: its temp file goes back to the pool for the next claim.
    if (isFinished(to)) this.#spares?.reclaim(nextOf(path.join(target, STATE_FILE)));
    this.#announce(job, from, to, options.reason, toQueue);
    return state;
  }

  /**
   * The record of a job claimed as it is accepted (claim on arrival): `claim` writes the claim and
   * the move queued -> running is recorded, as `move` would; its acceptance then commits the folder
   * straight into `running/` (the table's staging -> running), and `accepted` announces both.
   */
  claimAtAcceptance(claim: (state: JobState) => void, reason: string): (state: JobState) => void {
    return (state) => {
      claim(state);
      recordMove(state, 'queued', 'running', reason);
    };
  }

  /**
   * Announce jobs whose acceptance committed them: `job:accepted` for each, and for a job claimed at
   * its acceptance (committed into `running/`) the move its record holds, queued -> running.
   */
  accepted(
    queue: string,
    jobs: readonly { spec: { id: string; task?: { name: string } | undefined }; state: JobState }[],
  ): void {
    for (const { spec, state } of jobs) {
      this.#events.emit('job:accepted', { jobId: spec.id, queue, task: spec.task?.name });
      if (state.state === 'running')
        this.#announce(
          { id: spec.id, queue },
          'queued',
          'running',
          state.history.at(-1)?.reason ?? 'started',
        );
    }
  }

  /** Log and announce a move. */
  #announce(
    job: { id: string; queue: string },
    from: JobStateName,
    to: JobStateName,
    reason: string,
    toQueue = job.queue,
  ): void {
    this.#log.debug({ jobId: job.id, queue: toQueue, reason }, `job ${from} -> ${to}`);
    this.#events.emit('job:transition', { jobId: job.id, queue: job.queue, from, to, toQueue, reason });
  }

  /**
   * Delete a finished job: its folder leaves the queue for `trash` (a folder of the caller's, removed
   * with everything in it afterwards) in one rename, so a retry or notes change racing with it
   * either wins or finds the job gone. False: the job was no longer there.
   */
  purge(job: { id: string; queue: string }, from: FinishedStateName, trash: string, reason: string): boolean {
    try {
      moveJobFolder(
        job,
        from,
        'trash',
        this.#layout.jobDir(job.queue, from, job.id),
        path.join(trash, job.id),
      );
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return false;
      throw diskError(error, this.#layout.jobDir(job.queue, from, job.id));
    }
    this.#log.debug({ jobId: job.id, queue: job.queue, reason }, `job ${from} -> deleted`);
    this.#events.emit('job:purged', { jobId: job.id, queue: job.queue, from, reason });
    return true;
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
    this.#events.emit('job:updated', { jobId: job.id, queue: job.queue, state, reason });
    return record;
  }

  #ensureShard(dir: string): void {
    if (this.#shards.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    this.#shards.add(dir);
  }
}

/**
 * The one rename of a job folder. Refused with TRANSITION_ILLEGAL, and nothing moved, unless the
 * table (jobs/status.ts, FOLDER_MOVES) lists the move; the rename's own errors are the caller's.
 */
export function moveJobFolder(
  job: { id: string; queue: string },
  from: JobPlace,
  to: JobPlace,
  source: string,
  target: string,
): void {
  if (!isLegalMove(from, to)) throw illegal(job, from, to);
  renameSync(source, target);
}

function illegal(job: { id: string; queue: string }, from: JobPlace, to: JobPlace): BatchdError {
  return new BatchdError('TRANSITION_ILLEGAL', `A job cannot go from ${from} to ${to}`, {
    jobId: job.id,
    queue: job.queue,
    from,
    to,
  });
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
