import { setTimeout as delay } from 'node:timers/promises';

import type { JobType } from '../config/schema.ts';
import { BatchdError, coerceError } from '../errors.ts';
import type { RunOutcome } from '../jobs/executor.ts';
import { nextOrder } from '../jobs/id.ts';
import { type NextStep, nextStep } from '../jobs/outcome.ts';
import type { JobSpec } from '../jobs/spec.ts';
import { describeAttemptEnd, formatDuration, type Logger } from '../log.ts';
import type { JobLocks, Release } from '../spool/lock.ts';
import { SELF } from '../spool/owner.ts';
import { type AttemptResult, type JobState, readJobState } from '../spool/state-file.ts';
import type { Transitions } from '../spool/transition.ts';
import { type AttemptDeps, runAttempt } from './attempt.ts';
import type { Dependencies } from './dependencies.ts';
import { type Pauses, settlePause } from './pause.ts';
import { entryOf, type QueuedIndex } from './queued-index.ts';
import type { Entry } from './ready-list.ts';
import type { Running, RunSlots } from './run-slots.ts';

/** The reason a claim gives its move into `running/`. */
const STARTED = 'started';

/** What a claim writes into a job's record (with its move into `running/`). */
function claimRecord(host: string | undefined): (state: JobState) => void {
  return (s) => {
    s.attempts += 1;
    s.paused_at = undefined; // left by a crash during a pause: a pause ends with its attempt
    s.running = {
      attempt: s.attempts,
      started_at: new Date().toISOString(),
      host: host ?? 'localhost',
      owner: SELF,
    };
  };
}

export interface JobRunsDeps extends AttemptDeps {
  transitions: Transitions;
  locks: JobLocks;
  log: Logger;
  index: QueuedIndex;
  slots: RunSlots;
  pauses: Pauses;
  dependencies: Dependencies;
  /** Index a queued job (one queued again, or one whose lock was busy and is still queued). */
  requeue: (state: JobState) => void;
  /** Whether the dispatcher knows the job (queued or running here). */
  knows: (id: string) => boolean;
  /** Schedule a dispatch pass. */
  pump: () => void;
  /** The dispatcher still starts jobs (it is not stopping). */
  accepting: () => boolean;
  /** Told of the record a job's end wrote (the job list's sort values take it from here, unread). */
  indexed?: ((state: JobState) => void) | undefined;
}

/**
 * The runs of jobs: the claim into `running/` under the job's lock, the attempt, and the record of
 * where its outcome sends it (done, failed, or queued again for a retry or after an interruption).
 */
export class JobRuns {
  readonly #d: JobRunsDeps;

  constructor(deps: JobRunsDeps) {
    this.#d = deps;
  }

  /** Start a ready job the loop picked: it leaves the index and takes a worker. */
  start(entry: Entry, host: string | undefined): void {
    const kept = this.#d.index.take(entry);
    const run = this.#d.slots.occupy(entry, kept?.spec, host);
    this.#track(run, this.#execute(run, kept?.state));
  }

  /**
   * Take the lock of a job being accepted straight into `running/` (dispatcher.ts, claimOnArrival):
   * the record its acceptance writes, and the lock; undefined if the lock is busy.
   */
  claimAtOnce(id: string): { record: (state: JobState) => void; release: Release } | undefined {
    let release: Release | undefined;
    try {
      release = this.#d.locks.take(id);
    } catch {
      return undefined; // the ordinary way reports what is wrong with the lock folder
    }
    if (release === undefined) return undefined;
    return { record: this.#d.transitions.claimAtAcceptance(claimRecord(undefined), STARTED), release };
  }

  /** Run a job that `claimAtOnce` claimed and its acceptance committed into `running/`. */
  startClaimed(state: JobState, spec: JobSpec, release: Release): void {
    const entry = entryOf(state); // announced with its acceptance (Transitions.accepted)
    const run = this.#d.slots.occupy(entry, spec, undefined);
    this.#track(run, this.#executeClaimed(run, state, release));
  }

  /** Follow a running job whose work goes on elsewhere, taken over under its lock by recovery. */
  adopt(state: JobState, release: Release): void {
    const run = this.#d.slots.occupy(entryOf(state), undefined, state.running?.host);
    this.#track(run, this.#executeClaimed(run, state, release));
  }

  #track(run: Running, execution: Promise<JobState | undefined>): void {
    execution.then(
      (requeued) => this.#finished(run, requeued),
      (error: unknown) => {
        this.#d.log.error({ jobId: run.entry.id, err: coerceError(error) }, 'job handling failed');
        this.#finished(run);
      },
    );
  }

  /** After the attempt and its lock are done with; a job queued again is indexed only now. */
  #finished(run: Running, requeued?: JobState): void {
    this.#d.slots.free(run);
    this.#d.pauses.ended(run.entry.id);
    if (requeued !== undefined) this.#d.requeue(requeued);
    this.#d.pump();
  }

  /**
   * The job's lock was busy: another dispatcher is claiming it (then it leaves queued/ at once), or a
   * short control operation (priority, move…) holds it. Index it again if it is still queued.
   */
  #lookAgainLater(entry: Entry): void {
    const timer = setTimeout(() => {
      if (!this.#d.accepting() || this.#d.knows(entry.id)) return;
      try {
        this.#d.requeue(readJobState(this.#d.layout.jobDir(entry.queue, 'queued', entry.id)));
      } catch {
        // claimed or moved elsewhere: nothing to do
      }
    }, 100);
    timer.unref();
  }

  /**
   * One attempt under the job's lock; returns the job's record if it was queued again. `written`:
   * the record its acceptance wrote, if kept (the claim then skips the schema check of an
   * unchanged file).
   */
  async #execute(run: Running, written: JobState | undefined): Promise<JobState | undefined> {
    const { entry } = run;
    const job = { id: entry.id, queue: entry.queue };
    const release = await this.#d.locks.acquire(entry.id);
    if (release === undefined) {
      this.#lookAgainLater(entry);
      return undefined;
    }
    let state: JobState;
    try {
      state = this.#d.transitions.move(job, 'queued', 'running', {
        reason: STARTED,
        update: claimRecord(run.host),
        written,
      });
    } catch (error) {
      await release().catch(() => undefined);
      if (error instanceof BatchdError && error.code === 'JOB_GONE') return undefined;
      throw error;
    }
    return this.#executeClaimed(run, state, release);
  }

  /** The attempt of a claimed job and its record; then its lock is released. */
  async #executeClaimed(run: Running, state: JobState, release: Release): Promise<JobState | undefined> {
    const job = { id: run.entry.id, queue: run.entry.queue };
    run.state = state;
    try {
      const type = this.#d.config.jobType(run.entry.type);
      this.#d.log.info(
        {
          job: {
            id: job.id,
            queue: job.queue,
            type: run.entry.type,
            host: run.host ?? 'localhost',
            attempt: state.attempts,
          },
        },
        `job ${job.id} started (${run.entry.type} in ${job.queue} on ${run.host ?? 'localhost'}, attempt ${state.attempts})`,
      );
      const outcome = await runAttempt(this.#d, run, state, type, run.host);
      if (run.lost || outcome.detached === true) return undefined;
      return await this.#recordWhenPossible(run, job, state, outcome, type, run.host);
    } finally {
      await release().catch(() => undefined);
    }
  }

  /** Where an attempt's outcome sends its job (jobs/outcome.ts). */
  #stepOf(state: JobState, outcome: RunOutcome, type: JobType | undefined): NextStep {
    const interrupted = outcome.outcome === 'interrupted';
    return nextStep(outcome.outcome, outcome.error, type?.on_fail ?? 'continue', state.retries, {
      count: (state.interruptions ?? 0) + (interrupted ? 1 : 0),
      max: this.#d.config.daemon.dispatcher.max_interruptions,
    });
  }

  /**
   * A full disk must not turn a finished job into an interrupted one that runs again: its outcome
   * is kept here, under the job's lock, and written once there is room. Only if this dispatcher
   * stops (or loses the lock) first is the job left to recovery.
   */
  async #recordWhenPossible(
    run: Running,
    job: { id: string; queue: string },
    state: JobState,
    outcome: RunOutcome,
    type: JobType | undefined,
    host: string | undefined,
  ): Promise<JobState | undefined> {
    // A failed write leaves state.yaml as it was, but the record in memory half updated: read it again.
    for (let known: JobState | undefined = state; ; known = undefined) {
      try {
        return this.#record(job, state, outcome, type, host, known);
      } catch (error) {
        const diskFull = error instanceof BatchdError && error.code === 'DISK_FULL';
        if (!diskFull || run.lost || run.controller.signal.aborted) {
          this.#d.log.error(
            { jobId: job.id, err: coerceError(error) },
            'could not record the end of a job; recovery will',
          );
          return undefined;
        }
        if (known !== undefined)
          this.#d.log.error(
            { jobId: job.id, err: coerceError(error) },
            'disk full: the end of the job is written once there is room',
          );
        await delay(this.#d.config.daemon.dispatcher.poll_timeout, undefined, {
          signal: run.controller.signal,
        }).catch(() => undefined);
      }
    }
  }

  /** Move a finished attempt to where its outcome sends it; throws if the spool refuses the write. */
  #record(
    job: { id: string; queue: string },
    state: JobState,
    outcome: RunOutcome,
    type: JobType | undefined,
    host: string | undefined,
    known: JobState | undefined,
  ): JobState | undefined {
    const interrupted = outcome.outcome === 'interrupted';
    const interruptions = (state.interruptions ?? 0) + (interrupted ? 1 : 0);
    const step = this.#stepOf(state, outcome, type);
    const result: AttemptResult = {
      attempt: state.attempts,
      outcome: outcome.outcome,
      exit_code: outcome.exitCode,
      signal: outcome.signal,
      error: outcome.error,
      host: host ?? 'localhost',
      started_at: outcome.startedAt,
      ended_at: outcome.endedAt,
      duration_ms: Date.parse(outcome.endedAt) - Date.parse(outcome.startedAt),
      batch: outcome.batch,
      limit_hit: outcome.limitHit,
    };
    const next = this.#d.transitions.move(job, 'running', step.to, {
      reason: step.reason,
      known,
      update: (s) => {
        s.running = undefined;
        settlePause(s);
        s.last = result;
        s.results.push(result);
        if (step.toBack) s.order = nextOrder();
        if (step.retry === true) s.retries += 1;
        if (interrupted) s.interruptions = interruptions; // apart from the retries: not the job's failure
      },
    });
    this.#d.log.info(
      {
        job: {
          id: job.id,
          queue: job.queue,
          type: state.type,
          host: result.host,
          outcome: result.outcome,
          exitCode: result.exit_code,
          signal: result.signal,
          durationMs: result.duration_ms,
          to: step.to,
        },
      },
      `job ${job.id} ended: ${describeAttemptEnd(result)} after ${formatDuration(result.duration_ms ?? 0)} on ${result.host ?? 'localhost'} → ${step.to}${step.to === 'queued' ? ` (${step.reason})` : ''}`,
    );
    if (step.to === 'queued') return next;
    this.#d.indexed?.(next);
    this.#d.dependencies.ended(job.id, step.to);
    return undefined;
  }
}
