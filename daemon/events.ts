import { EventEmitter } from 'node:events';

import type { FinishedStateName, JobStateName } from './jobs/status.ts';

/**
 * The one event stream. The API's live views, metrics and hook plugins subscribe to it; nothing
 * else is a source of truth (the spool is).
 */
export interface BatchdEvents {
  'job:accepted': { jobId: string; queue: string; task?: string | undefined };
  'job:transition': {
    jobId: string;
    queue: string;
    from: JobStateName;
    to: JobStateName;
    toQueue?: string | undefined;
    reason: string;
  };
  /** A job's record changed where it is (priority, notes, not_before, host): read-side indexes refresh it. */
  'job:updated': { jobId: string; queue: string; state: JobStateName; reason: string };
  /** A finished job's folder was deleted (DELETE /job/:id, DELETE /queue/:q?status=S). */
  'job:purged': { jobId: string; queue: string; from: FinishedStateName; reason: string };
  /** A running job was frozen or thawed (dispatch/pause.ts); it stays in running/. */
  'job:paused': { jobId: string; queue: string; reason: string };
  'job:resumed': { jobId: string; queue: string; reason: string };
  'job:rejected': { queue: string; file: string; message: string };
  /** A queued job's `state.yaml` does not read as a record (spool/state-record.ts): left where it is, not run. */
  'job:invalid': { jobId: string; queue: string; file: string; message: string };
  'queue:changed': { queue: string };
  'config:reloaded': { file: string };
  'config:invalid': { file: string; message: string };
  'host:state': { host: string; state: string; reason?: string | undefined };
}

export type BatchdEventName = keyof BatchdEvents;

export class EventBus {
  readonly #emitter = new EventEmitter();
  readonly #onListenerError: (error: unknown, event: string) => void;

  constructor(onListenerError: (error: unknown, event: string) => void) {
    this.#emitter.setMaxListeners(0);
    this.#onListenerError = onListenerError;
  }

  on<E extends BatchdEventName>(event: E, listener: (payload: BatchdEvents[E]) => void): () => void {
    this.#emitter.on(event, listener);
    return () => this.#emitter.off(event, listener);
  }

  /** A throwing listener is logged, never propagated: listeners must not crash the daemon. */
  emit<E extends BatchdEventName>(event: E, payload: BatchdEvents[E]): void {
    for (const listener of this.#emitter.listeners(event)) {
      try {
        (listener as (p: BatchdEvents[E]) => void)(payload);
      } catch (error) {
        this.#onListenerError(error, event);
      }
    }
  }
}
