import { coerceError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Hook } from './api.ts';
import type { HookEvent } from '../config/hook-events.ts';
import type { HookSpec } from './hook-config.ts';

/** A backlog this long is worth a warning: the hook is much slower than the daemon's events. */
export const BACKLOG_WARNING = 10_000;

/** After its signal is aborted, how long a delivery in flight is waited for at stop. */
const ABORT_WAIT_MS = 1_000;

/**
 * One hook's deliveries: an in-memory FIFO, handed to the hook one event at a time, in order, each
 * with its own timeout. `push` never waits and never refuses while the daemon runs (the backlog is
 * unbounded), so a slow or failing hook cannot hold up the dispatcher that produced the event.
 */
export class HookDelivery {
  readonly spec: HookSpec;
  readonly #hook: Hook;
  readonly #log: Logger;
  #items: (HookEvent | undefined)[] = [];
  #head = 0;
  #running: Promise<void> | undefined;
  /** Aborted at stop, once the grace period is over: the delivery in flight gives up. */
  readonly #stop = new AbortController();
  #closed = false;
  #warned = false;

  constructor(spec: HookSpec, hook: Hook, log: Logger) {
    this.spec = spec;
    this.#hook = hook;
    this.#log = log;
  }

  get pending(): number {
    return this.#items.length - this.#head;
  }

  push(event: HookEvent): void {
    if (this.#closed) return;
    this.#items.push(event);
    if (!this.#warned && this.pending >= BACKLOG_WARNING) {
      this.#warned = true;
      this.#log.warn(
        { hook: this.spec.name, pending: this.pending },
        `hook ${this.spec.name} is ${this.pending} events behind (none is dropped while batchd runs)`,
      );
    }
    this.#running ??= this.#drain();
  }

  /**
   * Stop taking events; what is pending gets `graceMs` to be delivered, then the delivery in flight
   * is aborted and the rest dropped, with their count logged. Closes the hook.
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    await within(this.#running, graceMs);
    const dropped = this.pending;
    this.#items = [];
    this.#head = 0;
    this.#stop.abort(new Error('batchd is stopping'));
    // A hook honours its signal, so the delivery in flight ends now; one that does not is left behind.
    await within(this.#running, ABORT_WAIT_MS);
    if (dropped > 0)
      this.#log.warn(
        { hook: this.spec.name, dropped },
        `hook ${this.spec.name}: ${dropped} undelivered events dropped at stop`,
      );
    try {
      await this.#hook.close?.();
    } catch (error) {
      this.#log.warn({ hook: this.spec.name, err: coerceError(error) }, 'closing a hook failed');
    }
  }

  async #drain(): Promise<void> {
    try {
      for (let event = this.#next(); event !== undefined; event = this.#next()) await this.#deliver(event);
    } finally {
      this.#running = undefined;
    }
  }

  #next(): HookEvent | undefined {
    if (this.#stop.signal.aborted || this.#head >= this.#items.length) return undefined;
    const event = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head += 1;
    // Drop the delivered prefix now and then, so a long-lived backlog does not keep its past.
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (this.pending < BACKLOG_WARNING / 2) this.#warned = false;
    return event;
  }

  async #deliver(event: HookEvent): Promise<void> {
    const timeout = AbortSignal.timeout(this.spec.timeoutMs);
    const signal = AbortSignal.any([this.#stop.signal, timeout]);
    try {
      await this.#hook.handle(event, signal);
      this.#log.debug({ hook: this.spec.name, event: event.event, delivery: event.id }, 'hook delivered');
    } catch (error) {
      const why = timeout.aborted
        ? `timed out after ${this.spec.timeoutMs} ms`
        : this.#stop.signal.aborted
          ? 'abandoned at stop'
          : coerceError(error).message;
      this.#log.warn(
        {
          hook: this.spec.name,
          event: event.event,
          delivery: event.id,
          jobId: event.jobId,
          host: event.host,
        },
        `hook ${this.spec.name}: ${event.event} not delivered: ${why}`,
      );
    }
  }
}

/** Wait for `work` (if any), but no longer than `ms`. */
async function within(work: Promise<void> | undefined, ms: number): Promise<void> {
  if (work === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  await Promise.race([work, timeout]);
  clearTimeout(timer);
}
