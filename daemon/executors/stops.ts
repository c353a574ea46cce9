import type { RunRequest, StopReason } from '../jobs/executor.ts';

/** Why a run is being stopped from outside. */
export type Stopping = 'timeout' | StopReason;

/**
 * Cancel, shutdown and timeout of one running job, the same for every executor: TERM to the job's
 * process group, KILL after the grace time. `kill` delivers a signal however the executor can.
 */
export class StopControl {
  #stopping: Stopping | undefined;
  #done = false;
  readonly #timers: NodeJS.Timeout[] = [];
  /** The timeout's timer, and when it fires (or, while paused, how much of it is left). */
  #timeout: NodeJS.Timeout | undefined;
  #deadline = 0;
  #left: number | undefined;
  /** Paused: how to let the job run again before it is stopped. */
  #thaw: (() => void) | undefined;
  readonly #request: Pick<RunRequest, 'timeoutMs' | 'killGraceMs'>;
  readonly #kill: (signal: 'SIGTERM' | 'SIGKILL') => void;
  #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#stop(this.#signal?.reason === 'shutdown' ? 'shutdown' : 'cancel');

  constructor(
    request: Pick<RunRequest, 'timeoutMs' | 'killGraceMs'>,
    kill: (signal: 'SIGTERM' | 'SIGKILL') => void,
  ) {
    this.#request = request;
    this.#kill = kill;
  }

  get stopping(): Stopping | undefined {
    return this.#stopping;
  }

  /** Follow `signal` from now on: call once the job was handed over, so a kill can reach it. */
  watch(signal: AbortSignal): void {
    if (this.#done) return;
    this.#signal = signal;
    if (signal.aborted) this.#onAbort();
    else signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** The job's process started: its timeout runs from now. */
  started(): void {
    const limit = this.#request.timeoutMs;
    if (limit !== undefined && !this.#done) this.#arm(limit);
  }

  get paused(): boolean {
    return this.#thaw !== undefined;
  }

  /**
   * The job was frozen: its timeout stops running (what is left of it runs after `resume`).
   * `thaw` lets it run again, should it be stopped while frozen (a frozen job cannot end).
   */
  pause(thaw: () => void): void {
    if (this.#done || this.#thaw !== undefined) return;
    this.#thaw = thaw;
    if (this.#timeout !== undefined) {
      clearTimeout(this.#timeout);
      this.#timeout = undefined;
      this.#left = Math.max(0, this.#deadline - Date.now());
    }
  }

  /** The job runs again: so does the rest of its timeout. */
  resume(): void {
    if (this.#thaw === undefined) return;
    this.#thaw = undefined;
    const left = this.#left;
    this.#left = undefined;
    if (left !== undefined && !this.#done) this.#arm(left);
  }

  #arm(ms: number): void {
    this.#deadline = Date.now() + ms;
    this.#timeout = setTimeout(() => this.#stop('timeout'), ms);
    this.#timers.push(this.#timeout);
  }

  /** A timer that ends with the run (an executor's own clean-up). */
  later(ms: number, work: () => void): void {
    if (!this.#done) this.#timers.push(setTimeout(work, ms));
  }

  /** The run ended: no more signals, no timers left. */
  ended(): void {
    this.#done = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    for (const timer of this.#timers) clearTimeout(timer);
  }

  #stop(why: Stopping): void {
    if (this.#stopping !== undefined || this.#done) return;
    this.#stopping = why;
    const thaw = this.#thaw;
    if (thaw !== undefined) {
      this.#thaw = undefined;
      this.#left = undefined;
      thaw();
    }
    this.#kill('SIGTERM');
    this.later(this.#request.killGraceMs, () => this.#kill('SIGKILL'));
  }
}
