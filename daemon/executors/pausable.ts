import type { StopControl } from './stops.ts';

/** How one running job is frozen and thawed: a signal to its process group, however it is sent. */
export type FreezeSignal = (op: 'STOP' | 'CONT') => void;

/**
 * The running jobs of an executor that pause and resume reach, by job id. The job's StopControl
 * holds its timeout while it is frozen, and thaws it first should it be stopped meanwhile.
 */
export class PausableRuns {
  readonly #runs = new Map<string, { control: StopControl; send: FreezeSignal }>();

  add(jobId: string, control: StopControl, send: FreezeSignal): void {
    this.#runs.set(jobId, { control, send });
  }

  delete(jobId: string): void {
    this.#runs.delete(jobId);
  }

  pause(jobId: string): Promise<boolean> {
    const run = this.#runs.get(jobId);
    if (run === undefined || run.control.paused || run.control.stopping !== undefined)
      return Promise.resolve(false);
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
