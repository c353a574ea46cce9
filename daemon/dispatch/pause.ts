import { BatchdError, coerceError } from '../errors.ts';
import type { EventBus } from '../events.ts';
import type { Executor } from '../jobs/executor.ts';
import type { JobStateName } from '../jobs/status.ts';
import { formatDuration, type Logger } from '../log.ts';
import type { JobState } from '../spool/state-file.ts';
import type { Transitions } from '../spool/transition.ts';

export interface PauseDeps {
  transitions: Transitions;
  events: EventBus;
  log: Logger;
  executorFor: (host: string | undefined) => Executor;
}

/** A job this dispatcher runs, as pausing sees it (the dispatcher's record of the run). */
export interface PausableRun {
  entry: { id: string; queue: string };
  host: string | undefined;
  controller: AbortController;
  /**
   * The job's record as the dispatcher last wrote it, from the start of its attempt on. The end of
   * the attempt is written from it, so every write here is copied into it.
   */
  state?: JobState | undefined;
}

interface Pause {
  since: number;
  /** Frozen by a pause of its queue: thawed when the queue is enabled again. */
  byQueue: boolean;
  /** Thaws the job when its run is stopped (cancel, shutdown) while it is paused. */
  onStop: () => void;
}

/**
 * Pause and resume of running jobs. The executor freezes and thaws the job's processes (and holds
 * its timeout meanwhile); this records it: `paused_at` in `state.yaml` while paused, the time added
 * to `paused_seconds` on resume, a line of history each way, and a `job:paused`/`job:resumed` event.
 * A paused job stays in `running/` and keeps its worker. A paused job that is stopped (cancel,
 * shutdown) is thawed so that it can end: its executor does so with the stop, and this makes sure
 * for any executor. A pause never outlives its attempt.
 */
export class Pauses {
  readonly #d: PauseDeps;
  readonly #paused = new Map<string, Pause>();
  /** The last pause or resume of each job: the next one waits for it. */
  readonly #busy = new Map<string, Promise<unknown>>();

  constructor(deps: PauseDeps) {
    this.#d = deps;
  }

  isPaused(id: string): boolean {
    return this.#paused.has(id);
  }

  pausedByQueue(id: string): boolean {
    return this.#paused.get(id)?.byQueue === true;
  }

  /** Freeze a running job; a job already paused stays as it is. */
  pause(run: PausableRun, by: string, byQueue = false): Promise<'paused'> {
    return this.#oneAtATime(run.entry.id, () => this.#pause(run, by, byQueue));
  }

  /** Thaw a paused job; a job that is not paused stays as it is. */
  resume(run: PausableRun, by: string): Promise<'resumed'> {
    return this.#oneAtATime(run.entry.id, () => this.#resume(run, by));
  }

  /** The run is over (its end is recorded): forget its pause. */
  ended(id: string): void {
    this.#paused.delete(id);
  }

  async #pause(run: PausableRun, by: string, byQueue: boolean): Promise<'paused'> {
    const { id, queue } = run.entry;
    if (this.#paused.has(id)) return 'paused';
    const executor = this.#executorOf(run);
    if (!(await executor.pause(id)))
      throw new BatchdError('JOB_LOCKED', `Job ${id} has no process running yet; try again`, { jobId: id });
    // Stopped while it was being frozen: it must see its stop signal.
    if (run.controller.signal.aborted) {
      await this.#thaw(executor, id);
      throw stopping(id);
    }
    const since = Date.now();
    const reason = `paused by ${by}`;
    try {
      this.#write(run, reason, (s) => {
        s.paused_at = new Date(since).toISOString();
      });
    } catch (error) {
      await this.#thaw(executor, id);
      throw error;
    }
    const onStop = (): void => {
      this.#paused.delete(id);
      void this.#thaw(executor, id);
    };
    run.controller.signal.addEventListener('abort', onStop, { once: true });
    this.#paused.set(id, { since, byQueue, onStop });
    this.#d.log.info({ jobId: id, queue }, `job ${id} ${reason}`);
    this.#d.events.emit('job:paused', { jobId: id, queue, reason });
    return 'paused';
  }

  async #resume(run: PausableRun, by: string): Promise<'resumed'> {
    const { id, queue } = run.entry;
    const pause = this.#paused.get(id);
    if (pause === undefined) return 'resumed';
    // False: its processes are gone (the launcher died); the job's end is on its way, recorded as such.
    await this.#executorOf(run).resume(id);
    this.#paused.delete(id);
    run.controller.signal.removeEventListener('abort', pause.onStop);
    const reason = `resumed by ${by} after ${formatDuration(Date.now() - pause.since)} paused`;
    try {
      this.#write(run, reason, (s) => settlePause(s));
    } catch (error) {
      // Thawed all the same; the end of the attempt folds the pause into paused_seconds.
      this.#d.log.warn({ jobId: id, err: coerceError(error) }, 'could not record the resume of a job');
    }
    this.#d.log.info({ jobId: id, queue }, `job ${id} ${reason}`);
    this.#d.events.emit('job:resumed', { jobId: id, queue, reason });
    return 'resumed';
  }

  /** The run's executor, if it can freeze jobs and the run can be frozen now. */
  #executorOf(run: PausableRun): Freezer {
    const id = run.entry.id;
    if (run.controller.signal.aborted) throw stopping(id);
    if (run.state === undefined)
      throw new BatchdError('JOB_LOCKED', `Job ${id} is starting; try again`, { jobId: id });
    const executor = this.#d.executorFor(run.host);
    if (!canFreeze(executor))
      throw new BatchdError(
        'PAUSE_UNSUPPORTED',
        `Job ${id} runs on ${run.host ?? 'localhost'}, whose ${executor.name} executor cannot pause jobs`,
        { jobId: id, host: run.host },
      );
    return executor;
  }

  async #thaw(executor: Freezer, id: string): Promise<void> {
    try {
      await executor.resume(id);
    } catch (error) {
      this.#d.log.error({ jobId: id, err: coerceError(error) }, 'could not thaw a stopped job');
    }
  }

  /** Write the job's record (the dispatcher holds its lock while it runs) and keep the run's copy in step. */
  #write(run: PausableRun, reason: string, change: (s: JobState) => void): void {
    const next = this.#d.transitions.update(run.entry, 'running', reason, change);
    if (run.state !== undefined) Object.assign(run.state, next);
  }

  #oneAtATime<T>(id: string, work: () => Promise<T>): Promise<T> {
    const result = (this.#busy.get(id) ?? Promise.resolve()).then(work, work);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.#busy.set(id, settled);
    void settled.then(() => {
      if (this.#busy.get(id) === settled) this.#busy.delete(id);
    });
    return result;
  }
}

/** An executor that can pause and resume its jobs. */
type Freezer = Executor & Required<Pick<Executor, 'pause' | 'resume'>>;

function canFreeze(executor: Executor): executor is Freezer {
  return executor.pause !== undefined && executor.resume !== undefined;
}

/** End an open pause in a job's record: its time is added to `paused_seconds`. */
export function settlePause(s: JobState, at = Date.now()): void {
  if (s.paused_at === undefined) return;
  const ms = Math.max(0, at - Date.parse(s.paused_at));
  s.paused_seconds = Math.round(((s.paused_seconds ?? 0) + ms / 1000) * 1000) / 1000;
  s.paused_at = undefined;
}

/**
 * A job to pause or resume that this dispatcher does not run: 'elsewhere' if another dispatcher
 * runs it, else why not. A queued job is refused rather than held: a held job would take a
 * worker to do nothing, and a queue that is disabled, or `not_before`, already holds queued jobs.
 */
export function notRunningHere(id: string, state: JobStateName, verb: 'pause' | 'resume'): 'elsewhere' {
  if (state === 'running') return 'elsewhere';
  const hint =
    state === 'queued' && verb === 'pause'
      ? ' (to hold a queued job, disable its queue or give it a not_before time)'
      : '';
  throw new BatchdError('CONFLICT', `Job ${id} is ${state}; only a running job can be ${verb}d${hint}`, {
    jobId: id,
  });
}

/** What a pause or resume of a queue did to one of its jobs. */
export interface PauseOfQueue {
  id: string;
  /** requested: another dispatcher runs it; a `<id>.freeze` request was left for it. */
  result: 'paused' | 'resumed' | 'refused' | 'requested';
  error?: string | undefined;
}

export async function outcomeOf(id: string, work: Promise<'paused' | 'resumed'>): Promise<PauseOfQueue> {
  try {
    return { id, result: await work };
  } catch (error) {
    return { id, result: 'refused', error: coerceError(error).message };
  }
}

function stopping(id: string): BatchdError {
  return new BatchdError('CONFLICT', `Job ${id} is being stopped; it can no longer be paused or resumed`, {
    jobId: id,
  });
}
