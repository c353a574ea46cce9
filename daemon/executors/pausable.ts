import { BatchdError } from '../errors.ts';
import type { StopControl } from './stops.ts';

/** How one running job is frozen and thawed: a signal to its process group, however it is sent. */
export type FreezeSignal = (op: 'STOP' | 'CONT') => void;

/**
 * Whether a run can be frozen: yes, not yet known (the wrapper has not said), or no and why.
 */
type Pausability = { can: true } | { can: 'unknown' } | { can: false; why: string };

/**
 * The running jobs of an executor that pause and resume reach, by job id. The job's StopControl
 * holds its timeout while it is frozen, and thaws it first should it be stopped meanwhile. A run
 * whose host cannot freeze it is refused with PAUSE_UNSUPPORTED, never paused in name only.
 */
export class PausableRuns {
  readonly #host: string;
  readonly #runs = new Map<string, { control: StopControl; send: FreezeSignal; pausability: Pausability }>();

  /** `host`: where the runs are, for the refusal's wording. */
  constructor(host: string) {
    this.#host = host;
  }

  /** A run; `known`: whether it can be frozen is known now (else `able` or `unable` tells later). */
  add(jobId: string, control: StopControl, send: FreezeSignal, known = true): void {
    this.#runs.set(jobId, { control, send, pausability: known ? { can: true } : { can: 'unknown' } });
  }

  able(jobId: string): void {
    const run = this.#runs.get(jobId);
    if (run !== undefined) run.pausability = { can: true };
  }

  unable(jobId: string, why: string): void {
    const run = this.#runs.get(jobId);
    if (run !== undefined) run.pausability = { can: false, why };
  }

  delete(jobId: string): void {
    this.#runs.delete(jobId);
  }

  /** False while the job cannot be frozen yet (not running here, starting, stopping, paused). */
  pause(jobId: string): Promise<boolean> {
    const run = this.#runs.get(jobId);
    if (run === undefined || run.control.paused || run.control.stopping !== undefined)
      return Promise.resolve(false);
    const { pausability } = run;
    if (pausability.can === false)
      return Promise.reject(
        new BatchdError(
          'PAUSE_UNSUPPORTED',
          `Job ${jobId} cannot be paused: host ${this.#host} ${pausability.why}`,
          { jobId, host: this.#host, reason: pausability.why },
        ),
      );
    if (pausability.can === 'unknown') return Promise.resolve(false);
    run.send('STOP');
    run.control.pause(() => run.send('CONT'));
    return Promise.resolve(true);
  }

  resume(jobId: string): Promise<boolean> {
    const run = this.#runs.get(jobId);
    if (run === undefined || !run.control.paused) return Promise.resolve(false);
    run.send('CONT');
    run.control.resume();
    return Promise.resolve(true);
  }
}
