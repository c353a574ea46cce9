import { randomUUID } from 'node:crypto';
import path from 'node:path';

import type { HookConfig } from '../config/schema.ts';
import type { ConfigStore } from '../config/store.ts';
import { coerceError } from '../errors.ts';
import type { BatchdEvents, EventBus } from '../events.ts';
import { isFinished, type JobStateName } from '../jobs/status.ts';
import type { Logger } from '../log.ts';
import { locateJob } from '../spool/find.ts';
import { QUEUE_FILE, type SpoolLayout } from '../spool/layout.ts';
import type { QueueRegistry } from '../spool/queues.ts';
import { readConfigText } from '../config/safe-read.ts';
import { type JobState, readJobState } from '../spool/state-file.ts';
import { locateTaskJobs, readManifest } from '../tasks/tasks.ts';
import { type HookSource, type HookSpec, loadHookDrivers, resolveHooks } from './hook-config.ts';
import { HookDelivery } from './hook-delivery.ts';
import { hostEventOf, JOB_END_EVENTS, jobEventOf } from './hook-derive.ts';
import type { HookEvent, HookEventName } from '../config/hook-events.ts';
import { TaskTracker } from './hook-tasks.ts';
import type { PluginRegistry } from './registry.ts';

/** At stop, how long pending deliveries may still take before they are dropped. */
export const STOP_GRACE_MS = 3_000;

export interface HookRunnerOptions {
  config: ConfigStore;
  queues: QueueRegistry;
  layout: SpoolLayout;
  events: EventBus;
  log: Logger;
  registry: PluginRegistry;
}

/** A bus event as observed, with when: turned into hook events off the dispatcher's path. */
type Observed =
  | { kind: 'accepted'; at: number; e: BatchdEvents['job:accepted'] }
  | { kind: 'transition'; at: number; e: BatchdEvents['job:transition'] }
  | { kind: 'host'; at: number; e: BatchdEvents['host:state'] };

/**
 * Lifecycle hooks (`hooks:` in batchd.yaml and in each queue.yaml) on the daemon's event stream.
 * The bus listeners only note what happened; a turn of the event loop later each note becomes at
 * most one hook event (reading the job's record only for an end event some hook wants) and goes
 * into the FIFO of every hook subscribed to it, which delivers at its own pace.
 */
export class HookRunner {
  readonly #o: HookRunnerOptions;
  #global: HookDelivery[] = [];
  readonly #perQueue = new Map<string, HookDelivery[]>();
  /** Hooks removed from the configuration, finishing their backlog. */
  readonly #retiring = new Set<Promise<void>>();
  /** Every event some hook wants (for some queue): with none, the listeners return at once. */
  #wanted = new Set<HookEventName>();
  /** Some hook wants job or task events; some hook wants host events. */
  #jobsWanted = false;
  #hostsWanted = false;
  #inbox: Observed[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  readonly #tasks: TaskTracker;
  /** The last hook event of each host: a host repeating its state is no news. */
  readonly #hosts = new Map<string, HookEventName>();
  readonly #unsubscribe: (() => void)[];
  /** Configuration changes apply one at a time (loading a plugin is asynchronous). */
  #applying: Promise<void> = Promise.resolve();

  constructor(options: HookRunnerOptions) {
    this.#o = options;
    this.#tasks = new TaskTracker((queue, task) => this.#taskJobs(queue, task));
    const { events } = options;
    this.#unsubscribe = [
      events.on('job:accepted', (e) => this.#observe({ kind: 'accepted', at: Date.now(), e })),
      events.on('job:transition', (e) => this.#observe({ kind: 'transition', at: Date.now(), e })),
      events.on('host:state', (e) => this.#observe({ kind: 'host', at: Date.now(), e })),
      events.on('config:reloaded', ({ file }) => {
        if (path.resolve(file) === this.#daemonFile()) this.#reload(() => this.#applyGlobal(false));
      }),
      events.on('queue:changed', ({ queue }) => this.#reload(() => this.#applyQueue(queue))),
    ];
  }

  /** Load the configured hooks. An invalid hook in batchd.yaml refuses the start, as any invalid setting does. */
  async start(): Promise<void> {
    await this.#reconfigure(() => this.#applyGlobal(true));
    for (const queue of this.#o.queues.names()) await this.#reconfigure(() => this.#applyQueue(queue));
  }

  /** What was observed is still delivered, within `graceMs`; then the rest is dropped (and counted in the log). */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    for (const off of this.#unsubscribe) off();
    clearImmediate(this.#scheduled);
    this.#derive();
    await this.#applying;
    const all = [...this.#global, ...[...this.#perQueue.values()].flat()];
    this.#global = [];
    this.#perQueue.clear();
    this.#recount();
    await Promise.all([...all.map((d) => d.close(graceMs)), ...this.#retiring]);
  }

  #observe(item: Observed): void {
    if (!(item.kind === 'host' ? this.#hostsWanted : this.#jobsWanted)) return;
    this.#inbox.push(item);
    this.#scheduled ??= setImmediate(() => this.#derive());
  }

  #derive(): void {
    this.#scheduled = undefined;
    const batch = this.#inbox;
    this.#inbox = [];
    for (const item of batch) {
      try {
        if (item.kind === 'accepted') this.#accepted(item.e, item.at);
        else if (item.kind === 'transition') this.#moved(item.e, item.at);
        else this.#host(item.e, item.at);
      } catch (error) {
        this.#o.log.error({ err: coerceError(error), event: item.kind }, 'hook event not derived');
      }
    }
  }

  #accepted(e: BatchdEvents['job:accepted'], at: number): void {
    if (e.task !== undefined) this.#tasks.accepted(e.jobId, e.queue, e.task);
    this.#send({ event: 'job:queued', queue: e.queue, jobId: e.jobId, task: e.task, reason: 'accepted' }, at);
  }

  #moved(e: BatchdEvents['job:transition'], at: number): void {
    const name = jobEventOf(e.from, e.to);
    const queue = e.toQueue ?? e.queue;
    const tracked = this.#tasks.taskOf(e.jobId);
    const wantsEnd = name !== undefined && JOB_END_EVENTS.has(name) && this.#wants(name, queue);
    const wantsTask = this.#wanted.has('task:finished') && isFinished(e.to) && tracked === undefined;
    const record = wantsEnd || wantsTask ? this.#record(e.jobId, queue, e.to) : undefined;
    const task = tracked?.task ?? record?.task;
    if (name !== undefined) {
      const last = wantsEnd ? record?.last : undefined;
      this.#send(
        {
          event: name,
          queue,
          jobId: e.jobId,
          task,
          host: last?.host ?? record?.host,
          reason: e.reason,
          outcome: last?.outcome,
          exitCode: wantsEnd ? (last?.exit_code ?? null) : undefined,
        },
        at,
      );
    }
    const owner = tracked ?? (task === undefined ? undefined : { queue, task });
    const counts = this.#tasks.moved(e.jobId, e.to, owner);
    if (counts !== undefined && owner !== undefined)
      this.#send({ event: 'task:finished', queue: owner.queue, task: owner.task, counts }, at);
  }

  #host(e: BatchdEvents['host:state'], at: number): void {
    const name = hostEventOf(e.state);
    if (name === undefined || this.#hosts.get(e.host) === name) return;
    this.#hosts.set(e.host, name);
    this.#send({ event: name, host: e.host, reason: e.reason }, at);
  }

  /** Into the FIFO of every hook that wants it. */
  #send(fields: Omit<HookEvent, 'id' | 'time'>, at: number): void {
    if (!this.#wanted.has(fields.event)) return;
    const event: HookEvent = { id: randomUUID(), time: new Date(at).toISOString(), ...fields };
    for (const delivery of this.#deliveries(event.event, event.queue)) delivery.push(event);
  }

  #wants(name: HookEventName, queue: string | undefined): boolean {
    return this.#wanted.has(name) && this.#deliveries(name, queue).length > 0;
  }

  #deliveries(name: HookEventName, queue: string | undefined): HookDelivery[] {
    const takes = (d: HookDelivery): boolean =>
      d.spec.events.has(name) && (queue === undefined || d.spec.queues?.has(queue) !== false);
    const local = queue === undefined ? [] : (this.#perQueue.get(queue) ?? []);
    return [...this.#global, ...local].filter(takes);
  }

  /** The job's record where the move put it (or wherever it went since); undefined if unreadable. */
  #record(id: string, queue: string, state: JobStateName): JobState | undefined {
    try {
      return readJobState(this.#o.layout.jobDir(queue, state, id));
    } catch {
      const found = locateJob(this.#o.layout, this.#o.queues.names(), id);
      try {
        return found === undefined ? undefined : readJobState(found.dir);
      } catch {
        return undefined;
      }
    }
  }

  /** Where a task's jobs are, for a task accepted before this daemon watched it. */
  #taskJobs(queue: string, task: string): Map<string, JobStateName | undefined> | undefined {
    try {
      const manifest = readManifest(this.#o.layout, queue, task);
      const jobs = locateTaskJobs(this.#o.layout, this.#o.queues.names(), manifest);
      return new Map(jobs.map((j) => [j.id, j.state]));
    } catch (error) {
      this.#o.log.warn({ queue, task, err: coerceError(error) }, 'task not found: no task:finished for it');
      return undefined;
    }
  }

  /** A change seen on the bus: applied in turn; what goes wrong is logged (the appliers report bad files). */
  #reload(apply: () => Promise<void>): void {
    this.#reconfigure(apply).catch((error: unknown) =>
      this.#o.log.error({ err: coerceError(error) }, 'hooks not reconfigured'),
    );
  }

  #reconfigure(apply: () => Promise<void>): Promise<void> {
    const next = this.#applying.then(apply);
    this.#applying = next.catch(() => undefined);
    return next;
  }

  async #applyGlobal(initial: boolean): Promise<void> {
    const entries = this.#o.config.daemon.hooks ?? [];
    const file = this.#daemonFile();
    if (fingerprints(entries) === this.#global.map((d) => d.spec.fingerprint).join('\n')) return;
    try {
      const specs = file === undefined ? [] : await this.#resolve(entries, { file, text: '' });
      this.#global = this.#replace(this.#global, specs);
    } catch (error) {
      if (initial) throw error;
      this.#invalid(file ?? 'batchd.yaml', error);
    }
    this.#recount();
  }

  async #applyQueue(queue: string): Promise<void> {
    const current = this.#perQueue.get(queue) ?? [];
    const entries = this.#o.queues.has(queue) ? (this.#o.queues.settings(queue).hooks ?? []) : [];
    if (fingerprints(entries) === current.map((d) => d.spec.fingerprint).join('\n')) return;
    const file = path.join(this.#o.layout.queueDir(queue), QUEUE_FILE);
    try {
      const specs = await this.#resolve(entries, { file, text: '', queue });
      const next = this.#replace(current, specs);
      if (next.length === 0) this.#perQueue.delete(queue);
      else this.#perQueue.set(queue, next);
    } catch (error) {
      this.#invalid(file, error);
    }
    this.#recount();
  }

  async #resolve(entries: readonly HookConfig[], source: HookSource): Promise<HookSpec[]> {
    if (entries.length === 0) return [];
    const failed = await loadHookDrivers(this.#o.registry, entries);
    // Read again for line numbers: the entries were parsed from this text (or an edit just after it).
    return resolveHooks(this.#o.registry, entries, { ...source, text: readConfigText(source.file) }, failed);
  }

  /** Keep the hooks whose entries did not change (with their backlog); start new ones; retire the rest. */
  #replace(old: readonly HookDelivery[], specs: readonly HookSpec[]): HookDelivery[] {
    const unused = [...old];
    const next = specs.map((spec) => {
      const same = unused.findIndex((d) => d.spec.fingerprint === spec.fingerprint);
      if (same >= 0) return unused.splice(same, 1)[0] as HookDelivery;
      const log = this.#o.log.child({ hook: spec.name, driver: spec.driver });
      const hook = spec.plugin.create(spec.settings, {
        name: spec.name,
        log,
        resolve: (p) => this.#o.config.resolve(p),
      });
      this.#o.log.info(
        { hook: spec.name, events: [...spec.events] },
        `hook ${spec.name} (${spec.driver}) ready`,
      );
      return new HookDelivery(spec, hook, log);
    });
    for (const gone of unused) {
      const closing = gone.close(STOP_GRACE_MS).finally(() => this.#retiring.delete(closing));
      this.#retiring.add(closing);
    }
    return next;
  }

  #recount(): void {
    const all = [...this.#global, ...[...this.#perQueue.values()].flat()];
    this.#wanted = new Set(all.flatMap((d) => [...d.spec.events]));
    this.#jobsWanted = [...this.#wanted].some((e) => !e.startsWith('host:'));
    this.#hostsWanted = [...this.#wanted].some((e) => e.startsWith('host:'));
  }

  #invalid(file: string, error: unknown): void {
    const message = coerceError(error).message;
    this.#o.log.error({ file }, `invalid hooks (the last good ones stay in force): ${message}`);
    this.#o.events.emit('config:invalid', { file, message });
  }

  #daemonFile(): string | undefined {
    return this.#o.config.dir === undefined ? undefined : path.resolve(this.#o.config.dir, 'batchd.yaml');
  }
}

function fingerprints(entries: readonly HookConfig[]): string {
  return entries.map((e) => JSON.stringify(e)).join('\n');
}
