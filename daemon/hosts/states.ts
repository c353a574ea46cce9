import type { EventBus } from '../events.ts';
import type { Logger } from '../log.ts';
import { type HostError, HostErrorHistory } from './error-history.ts';

/**
 * `unknown`: not contacted yet; `ready`: reachable, no job of this daemon on it; `busy`: running
 * jobs; `failed`: unreachable or failed to start, backed off until `retryAt`.
 */
export const HOST_STATES = ['unknown', 'stopped', 'starting', 'ready', 'busy', 'stopping', 'failed'] as const;
export type HostStateName = (typeof HOST_STATES)[number];

export interface HostStatus {
  state: HostStateName;
  reason?: string | undefined;
  /** Consecutive failures: the back-off doubles with each. */
  failures: number;
  /** While down: no job starts on the host before this time (ms since epoch). */
  retryAt?: number | undefined;
  since: number;
}

const ERRORS_KEPT = 5;

/**
 * What this daemon believes about each host, in memory. Every change goes through `#set`, which
 * logs it as `from -> to` and emits `host:state`; nothing else writes a status.
 */
export class HostStates {
  readonly #status = new Map<string, HostStatus>();
  readonly #events: EventBus;
  readonly #log: Logger;
  /** Called when a host may take more jobs (up, stopped, back-off over): the dispatcher looks again. */
  readonly #onRetry: () => void;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** The last few failures of each host, newest last (the web page's "last error"). */
  readonly #errors = new Map<string, HostError[]>();
  /** Where they are kept across restarts (`errorsFile`), if anywhere. */
  readonly #history: HostErrorHistory | undefined;

  constructor(events: EventBus, log: Logger, onRetry: () => void, errorsFile?: string) {
    this.#events = events;
    this.#log = log;
    this.#onRetry = onRetry;
    if (errorsFile !== undefined) {
      this.#history = new HostErrorHistory(errorsFile, ERRORS_KEPT, log);
      for (const [host, errors] of this.#history.load()) this.#errors.set(host, errors);
    }
  }

  get(host: string): HostStatus {
    return this.#status.get(host) ?? { state: 'unknown', failures: 0, since: 0 };
  }

  all(): Map<string, HostStatus> {
    return new Map(this.#status);
  }

  /** The host's last failures (at most ERRORS_KEPT), oldest first. */
  errors(host: string): readonly { at: string; reason: string }[] {
    return this.#errors.get(host) ?? [];
  }

  /**
   * Whether a job may start on a host now, given how many of this daemon's jobs run there. A host
   * not known to be up takes one job, which finds out (and brings it up); a down host takes none
   * during its back-off; a host being stopped takes none until it is stopped.
   */
  admits(host: string, running: number, maxJobs: number | null | undefined): boolean {
    if (maxJobs !== undefined && maxJobs !== null && running >= maxJobs) return false;
    const status = this.get(host);
    if (status.state === 'ready' || status.state === 'busy') return true;
    if (status.state === 'stopping') return false;
    if (status.state === 'failed' && (status.retryAt ?? 0) > Date.now()) return false;
    return running === 0;
  }

  /** The host answered: ready, or busy when this daemon runs jobs on it. */
  ready(host: string, busy = false): void {
    const current = this.get(host).state;
    const next = busy ? 'busy' : 'ready';
    if (current === next) return;
    const wasUp = current === 'ready' || current === 'busy';
    this.#set(host, { state: next, failures: 0, since: Date.now() });
    if (!wasUp) this.#onRetry();
  }

  /** Between ready and busy as jobs start and end; other states are left alone. */
  busy(host: string, busy: boolean): void {
    const current = this.get(host).state;
    if (current === 'ready' || current === 'busy') this.ready(host, busy);
  }

  transition(host: string, state: 'starting' | 'stopping' | 'stopped', reason?: string): void {
    const status = this.get(host);
    this.#set(host, { state, reason, failures: status.failures, since: Date.now() });
    if (state === 'stopped') this.#onRetry();
  }

  failed(host: string, reason: string, backoff: { initial: number; max: number }): void {
    const current = this.get(host);
    // Jobs that shared a dropped connection report one outage, not one each.
    if (current.state === 'failed' && (current.retryAt ?? 0) > Date.now()) return;
    const failures = current.failures + 1;
    const delay = Math.min(backoff.initial * 2 ** Math.min(failures - 1, 30), backoff.max);
    const retryAt = Date.now() + delay;
    const errors = [...this.errors(host), { at: new Date().toISOString(), reason }];
    this.#errors.set(host, errors.slice(-ERRORS_KEPT));
    this.#history?.save(new Map([[host, errors.slice(-ERRORS_KEPT)]]));
    this.#set(host, { state: 'failed', reason, failures, retryAt, since: Date.now() });
    clearTimeout(this.#timers.get(host));
    const timer = setTimeout(() => {
      this.#timers.delete(host);
      this.#onRetry();
    }, delay + 5);
    timer.unref();
    this.#timers.set(host, timer);
  }

  /** The host file is gone or changed: start from nothing. */
  forget(host: string): void {
    clearTimeout(this.#timers.get(host));
    this.#timers.delete(host);
    this.#status.delete(host);
    if (this.#errors.delete(host)) this.#history?.save(new Map(), [host]);
  }

  close(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  #set(host: string, next: HostStatus): void {
    const from = this.get(host).state;
    this.#status.set(host, next);
    const retryIn = next.retryAt === undefined ? undefined : next.retryAt - Date.now();
    const log = next.state === 'failed' ? this.#log.warn.bind(this.#log) : this.#log.info.bind(this.#log);
    log(
      { host, from, to: next.state, reason: next.reason, retryInMs: retryIn },
      `host ${host}: ${from} -> ${next.state}`,
    );
    this.#events.emit('host:state', { host, state: next.state, reason: next.reason });
  }
}
