import type { ConfigStore } from '../config/store.ts';
import { describeWait, type WaitReason } from '../jobs/wait.ts';
import type { Logger } from '../log.ts';
import type { QueueRegistry } from '../spool/queues.ts';
import type { Entry, ReadyList } from './ready-list.ts';
import type { RunSlots } from './run-slots.ts';
import { explainWait } from './wait-reason.ts';

export interface WaitLogDeps {
  config: ConfigStore;
  queues: QueueRegistry;
  log: Logger;
  slots: RunSlots;
}

/** Why a queued job waits, and a log line each time that changes (not on every pass). */
export class WaitLog {
  readonly #d: WaitLogDeps;
  /** The wait reason last logged per queued job. */
  readonly #said = new WeakMap<Entry, string>();

  constructor(deps: WaitLogDeps) {
    this.#d = deps;
  }

  /** Why a queued job has not started at `now`. */
  reasonFor(entry: Entry, now: Date): WaitReason {
    const { config, queues, slots } = this.#d;
    const settings = queues.settings(entry.queue);
    const host = slots.hostOf(entry);
    return explainWait({
      queue: entry.queue,
      type: entry.type,
      host,
      now,
      queueEnabled: settings.enabled,
      notBefore: entry.notBefore,
      pending: [...(entry.pending ?? [])],
      scheduleName: settings.schedule_name,
      schedule: config.schedule(settings.schedule_name),
      workers: { busy: slots.size, max: config.daemon.dispatcher.workers },
      queueLimit: { running: slots.runningInQueue(entry.queue), max: settings.parallel ?? undefined },
      typeLimit: { running: slots.runningOfType(entry.type), max: config.jobType(entry.type)?.max_jobs },
      hostTakes: slots.hostTakes(host),
    });
  }

  /**
   * Log a queued job's wait reason once, when it changes. Ordinary waiting (busy workers, jobs
   * ahead) and a task's jobs are logged at debug; `quiet` only records it.
   */
  say(entry: Entry, wait: WaitReason, quiet = false): void {
    const key = `${wait.reason}\n${wait.until ?? ''}\n${wait.job ?? ''}`;
    if (this.#said.get(entry) === key) return;
    this.#said.set(entry, key);
    if (quiet) return;
    const ordinary = wait.reason === 'workers' || wait.reason === 'turn' || entry.task !== undefined;
    const level = ordinary ? 'debug' : 'info';
    if (!this.#d.log.isLevelEnabled(level)) return;
    this.#d.log[level](
      { job: { id: entry.id, queue: entry.queue }, waiting: wait },
      `job ${entry.id} waits: ${describeWait(wait)}`,
    );
  }

  /** After a pass: the first job of each queue that did not start says why (once per reason). */
  sayHeads(ready: ReadonlyMap<string, ReadyList>, now: Date): void {
    for (const list of ready.values()) {
      for (const head of list) {
        this.say(head, this.reasonFor(head, now));
        break;
      }
    }
  }
}
