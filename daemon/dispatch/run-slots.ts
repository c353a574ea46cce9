import type { ConfigStore } from '../config/store.ts';
import type { JobSpec } from '../jobs/spec.ts';
import type { QueueRegistry } from '../spool/queues.ts';
import type { JobState } from '../spool/state-file.ts';
import type { Entry } from './ready-list.ts';

/** A job this dispatcher runs, from its claim until its end is recorded. */
export interface Running {
  entry: Entry;
  /** Its spec, when kept from acceptance. */
  spec: JobSpec | undefined;
  host: string | undefined;
  controller: AbortController;
  lost: boolean;
  /** The job's record from the start of its attempt on (pause.ts writes into it). */
  state?: JobState | undefined;
}

export interface RunSlotsDeps {
  config: ConfigStore;
  queues: QueueRegistry;
  /** Whether a job may start on its host now, with `running` of this dispatcher's jobs there. */
  hostAvailable?: ((host: string | undefined, running: number) => boolean) | undefined;
}

/**
 * The jobs this dispatcher runs and the slots they hold: each counts against its queue's
 * `parallel`, its type's `max_jobs` and its host's limits until it is finished.
 */
export class RunSlots {
  readonly #d: RunSlotsDeps;
  readonly #running = new Map<string, Running>();
  readonly #perQueue = new Map<string, number>();
  readonly #perType = new Map<string, number>();
  readonly #perHost = new Map<string, number>();
  readonly #idleWaiters: (() => void)[] = [];

  constructor(deps: RunSlotsDeps) {
    this.#d = deps;
  }

  get size(): number {
    return this.#running.size;
  }

  has(id: string): boolean {
    return this.#running.has(id);
  }

  get(id: string): Running | undefined {
    return this.#running.get(id);
  }

  values(): IterableIterator<Running> {
    return this.#running.values();
  }

  /** A job takes a worker: it counts against its limits until it is `free`d. */
  occupy(entry: Entry, spec: JobSpec | undefined, host: string | undefined): Running {
    const run: Running = { entry, spec, host, controller: new AbortController(), lost: false };
    this.#running.set(entry.id, run);
    bump(this.#perQueue, entry.queue, 1);
    bump(this.#perType, entry.type, 1);
    if (host !== undefined) bump(this.#perHost, host, 1);
    return run;
  }

  free(run: Running): void {
    this.#running.delete(run.entry.id);
    bump(this.#perQueue, run.entry.queue, -1);
    bump(this.#perType, run.entry.type, -1);
    if (run.host !== undefined) bump(this.#perHost, run.host, -1);
    if (this.#running.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  /** Resolves when no job runs here any more. */
  whenIdle(): Promise<void> {
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  runningInQueue(queue: string): number {
    return this.#perQueue.get(queue) ?? 0;
  }

  runningOfType(type: string): number {
    return this.#perType.get(type) ?? 0;
  }

  /** The queue's `parallel` is not reached. */
  queueHasRoom(queue: string): boolean {
    const parallel = this.#d.queues.settings(queue).parallel;
    return parallel === undefined || this.runningInQueue(queue) < parallel;
  }

  /** The type's `max_jobs` is not reached, and the host takes another job (limits, back-off). */
  withinLimits(typeName: string, host: string | undefined): boolean {
    const type = this.#d.config.jobType(typeName);
    if (type?.max_jobs !== undefined && this.runningOfType(typeName) >= type.max_jobs) return false;
    return this.hostTakes(host);
  }

  /** The host takes another job now (per-host limits, a host that is down). */
  hostTakes(host: string | undefined): boolean {
    return this.#d.hostAvailable?.(host, host === undefined ? 0 : (this.#perHost.get(host) ?? 0)) ?? true;
  }

  /** Where a job runs: its own host, else its type's, else its queue's, else this machine. */
  hostOf(job: { queue: string; type: string; host?: string | undefined }): string | undefined {
    return (
      job.host ??
      this.#d.config.jobType(job.type)?.host_name ??
      this.#d.queues.settings(job.queue).host_name ??
      undefined
    );
  }
}

function bump(map: Map<string, number>, key: string, by: number): void {
  map.set(key, (map.get(key) ?? 0) + by);
}
