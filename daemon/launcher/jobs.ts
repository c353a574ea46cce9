import type { LauncherEvent, WireEvent } from './protocol.ts';

export type ExitEvent = Extract<LauncherEvent, { op: 'exit' }>;

/** What the caller of a launcher hears about one job. */
export interface JobHandlers {
  onStarted(pid: number): void;
  /** Output sent back (remote launchers); all of it arrives before onExit. */
  onData?(fd: 1 | 2, data: Buffer): void;
  onExit(event: ExitEvent): void;
}

/**
 * The jobs a launcher is running, by the key each request carries: the one place that hands keys
 * out, routes the launcher's events to their job, and ends every job when the launcher is gone.
 */
export class LauncherJobs<H extends JobHandlers = JobHandlers> {
  readonly #pending = new Map<number, H>();
  #nextKey = 1;

  add(handlers: H): number {
    const key = this.#nextKey++;
    this.#pending.set(key, handlers);
    return key;
  }

  has(key: number): boolean {
    return this.#pending.has(key);
  }

  route(event: WireEvent): void {
    if (event.op === 'ready') return;
    const handlers = this.#pending.get(event.key);
    if (handlers === undefined) return;
    if (event.op === 'started') handlers.onStarted(event.pid);
    else if (event.op === 'data') handlers.onData?.(event.fd, event.data);
    else {
      this.#pending.delete(event.key);
      handlers.onExit(event);
    }
  }

  /** The launcher is gone: every job it had ends with `error` (no exit status). */
  endAll(error: string): void {
    for (const key of [...this.#pending.keys()]) this.fail(key, error);
  }

  /** End one job that the launcher never got. */
  fail(key: number, error: string): void {
    const handlers = this.#pending.get(key);
    this.#pending.delete(key);
    handlers?.onExit({ op: 'exit', key, code: null, signal: null, error });
  }
}
