import { coerceError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { BatchStatus, BatchSystem } from './batch-system.ts';

/** A job being followed: resolves once the batch system says it ended or forgot it. */
export interface Followed {
  readonly end: Promise<BatchStatus>;
  /** The last state seen before the end (pending, running…), for messages. */
  last(): BatchStatus | undefined;
  /** Stop following (the run gave up waiting). */
  stop(): void;
}

interface Waiter {
  resolve: (status: BatchStatus) => void;
  onStatus: (status: BatchStatus) => void;
  last: BatchStatus | undefined;
}

/**
 * Follows every job of one batch-system controller that this dispatcher has submitted: one
 * `status` call per poll for all of them (never one per job), and one `cancel` call for all the
 * cancels asked for in the same turn of the event loop.
 */
export class BatchPoller {
  #system: BatchSystem;
  readonly #controller: string;
  readonly #log: Logger;
  readonly #waiters = new Map<string, Waiter>();
  readonly #cancels = new Set<string>();
  readonly #closing = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #polling = false;
  #cancelling: Promise<void> | undefined;

  constructor(system: BatchSystem, controller: string, log: Logger) {
    this.#system = system;
    this.#controller = controller;
    this.#log = log;
  }

  /** Polls of the batch system made so far (one per interval while jobs are followed). */
  polls = 0;

  /**
   * The controller's file changed: later polls and cancels go to the batch system it describes
   * now. The jobs followed stay followed (their runs wait on this poller, not on the file).
   */
  use(system: BatchSystem): void {
    this.#system = system;
  }

  /** `onStatus` hears every state seen, the end included. */
  follow(id: string, onStatus: (status: BatchStatus) => void = () => undefined): Followed {
    let resolveEnd: (status: BatchStatus) => void = () => undefined;
    const end = new Promise<BatchStatus>((resolve) => (resolveEnd = resolve));
    const waiter: Waiter = { resolve: resolveEnd, onStatus, last: undefined };
    this.#waiters.set(id, waiter);
    this.#schedule();
    return {
      end,
      last: () => waiter.last,
      stop: () => {
        if (this.#waiters.get(id) === waiter) this.#waiters.delete(id);
      },
    };
  }

  /** Cancel `id` in the batch system, batched with the other cancels of this turn. */
  cancel(id: string): void {
    this.#cancels.add(id);
    if (this.#cancels.size > 1) return;
    setImmediate(() => {
      const ids = [...this.#cancels];
      this.#cancels.clear();
      const previous = this.#cancelling ?? Promise.resolve();
      this.#cancelling = previous.then(() =>
        this.#system.cancel(ids, this.#closing.signal).catch((error: unknown) => {
          this.#log.warn(
            { controller: this.#controller, ids, err: coerceError(error) },
            'cancelling jobs in the batch system failed',
          );
        }),
      );
    });
  }

  /** Stops following (the daemon stops); the jobs themselves are left to the batch system. */
  async close(): Promise<void> {
    this.#closing.abort('shutdown');
    clearTimeout(this.#timer);
    await this.#cancelling;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#polling || this.#closing.signal.aborted) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#poll();
    }, this.#system.pollIntervalMs);
    this.#timer.unref();
  }

  async #poll(): Promise<void> {
    if (this.#waiters.size === 0) return;
    this.#polling = true;
    try {
      this.polls += 1;
      const statuses = await this.#system.status([...this.#waiters.keys()], this.#closing.signal);
      for (const [id, status] of statuses) {
        const waiter = this.#waiters.get(id);
        if (waiter === undefined) continue;
        waiter.onStatus(status);
        if (status.phase === 'ended' || status.phase === 'gone') {
          this.#waiters.delete(id);
          waiter.resolve(status);
        } else waiter.last = status;
      }
    } catch (error) {
      // A controller that does not answer now may answer at the next poll: the jobs keep running.
      if (!this.#closing.signal.aborted)
        this.#log.warn(
          { controller: this.#controller, err: coerceError(error) },
          'asking the batch system for its jobs failed; asking again at the next poll',
        );
    } finally {
      this.#polling = false;
    }
    if (this.#waiters.size > 0) this.#schedule();
  }
}
