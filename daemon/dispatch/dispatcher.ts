import type { ConfigStore } from '../config/store.ts';
import type { EventBus } from '../events.ts';
import type { Executor } from '../jobs/executor.ts';
import type { JobSpec } from '../jobs/spec.ts';
import type { WaitReason } from '../jobs/wait.ts';
import type { Logger } from '../log.ts';
import type { ClaimAtAcceptance } from '../spool/acceptance.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import type { JobLocks, Release } from '../spool/lock.ts';
import type { QueueRegistry } from '../spool/queues.ts';
import type { JobState } from '../spool/state-file.ts';
import type { Transitions } from '../spool/transition.ts';
import { ControlVerbs, type QueuedChange } from './control-verbs.ts';
import { Dependencies } from './dependencies.ts';
import { JobRuns } from './job-runs.ts';
import { type PauseOfQueue, Pauses } from './pause.ts';
import { entryOf, QueuedIndex } from './queued-index.ts';
import type { Entry } from './ready-list.ts';
import type { PriorityMove } from './reorder.ts';
import { RunSlots } from './run-slots.ts';
import { isOpen, msUntilOpen } from './schedule.ts';
import { WaitLog } from './wait-log.ts';
import { WakeTimer } from './wake-timer.ts';

export type { QueuedChange } from './control-verbs.ts';

export interface DispatcherDeps {
  config: ConfigStore;
  queues: QueueRegistry;
  layout: SpoolLayout;
  transitions: Transitions;
  locks: JobLocks;
  events: EventBus;
  log: Logger;
  /** The executor for a job's host (undefined host: this machine). */
  executorFor: (host: string | undefined) => Executor;
  /** Whether a job may start on its host now, with `running` of this dispatcher's jobs there (per-host limits, a host that is down). */
  hostAvailable?: (host: string | undefined, running: number) => boolean;
  /**
   * Make the folder of a job of a committed task that has none yet (tasks/materialise.ts), for a
   * verb or a dependency that names it before its turn; true when it now has one.
   */
  makeJob?: (id: string) => boolean;
  /**
   * Told of each job record the dispatcher is handed (acceptance, scans, requeues, claims on
   * arrival), and of the record each of its jobs' ends wrote (job-runs.ts).
   */
  indexed?: (state: JobState, spec?: JobSpec) => void;
}

/** Whether a job may start depends only on its type and host: one refusal answers for all alike. */
const sameAs = (entry: Entry): string => `${entry.type}\n${entry.host ?? ''}`;

/**
 * The scheduling loop, and the face of dispatching to the rest of the daemon. It holds the queued
 * jobs it knows of (queued-index.ts) and the jobs it runs (run-slots.ts); job-runs.ts runs and
 * records them, dependencies.ts follows `after`, control-verbs.ts changes jobs on request. The spool
 * stays the truth, and every change of a job's folder goes through Transitions under the job's lock.
 */
export class Dispatcher {
  readonly #d: DispatcherDeps;
  readonly #index: QueuedIndex;
  readonly #slots: RunSlots;
  readonly #waits: WaitLog;
  readonly #dependencies: Dependencies;
  readonly #runs: JobRuns;
  readonly #control: ControlVerbs;
  readonly #pauses: Pauses;
  readonly #wake = new WakeTimer(() => this.pump());
  #pumpQueued = false;
  #accepting = true;
  /** Whether a ready job may start now (its type's and host's limits); made once, for every pass. */
  readonly #mayStart: (entry: Entry) => boolean;

  constructor(deps: DispatcherDeps) {
    this.#d = deps;
    const pump = (): void => this.pump();
    const accepting = (): boolean => this.#accepting;
    const requeue = (state: JobState): void => this.add(state);
    const slots = (this.#slots = new RunSlots(deps));
    const waits = (this.#waits = new WaitLog({ ...deps, slots }));
    const index = (this.#index = new QueuedIndex((entry, quiet) => {
      waits.say(entry, waits.reasonFor(entry, new Date()), quiet);
      if (entry.pending === undefined && entry.notBefore !== undefined)
        this.#armTimer(entry.notBefore - Date.now());
    }));
    const pauses = (this.#pauses = new Pauses(deps));
    const dependencies = (this.#dependencies = new Dependencies({ ...deps, index, running: slots, pump }));
    const parts = { ...deps, index, slots, pauses, dependencies, requeue, pump, accepting };
    this.#runs = new JobRuns({ ...parts, knows: (id) => this.knows(id) });
    this.#control = new ControlVerbs(parts);
    this.#mayStart = (entry) => slots.withinLimits(entry.type, slots.hostOf(entry));
    // Jobs frozen by a pause of their queue stay frozen while it is disabled, however it is enabled again.
    deps.events.on('queue:changed', ({ queue }) => {
      if (deps.queues.has(queue) && deps.queues.settings(queue).enabled)
        void this.resumeQueue(queue, `the enabling of queue ${queue}`);
    });
  }

  get runningCount(): number {
    return this.#slots.size;
  }

  get queuedCount(): number {
    return this.#index.size;
  }

  isRunningHere(id: string): boolean {
    return this.#slots.has(id);
  }

  knows(id: string): boolean {
    return this.#index.has(id) || this.#slots.has(id);
  }

  /** Index a queued job (from acceptance, with its spec, or a rescan or a requeue). */
  add(state: JobState, spec?: JobSpec): void {
    this.#d.indexed?.(state, spec);
    if (this.knows(state.id)) return;
    const entry = entryOf(state);
    this.#index.know(entry, spec === undefined ? undefined : { spec, state });
    const failed = this.#dependencies.wait(entry, state.after);
    if (failed !== undefined) {
      this.#index.place(entry, true);
      void this.#dependencies.fail(entry, failed);
      return;
    }
    // Indexed (start-up, rescans): its wait was logged when it was accepted.
    this.#index.place(entry, spec === undefined);
    this.#autostart(entry.queue);
    this.pump();
  }

  /** Why a queued job this dispatcher knows has not started (undefined: not queued here). */
  waitReason(id: string, now = new Date()): WaitReason | undefined {
    const entry = this.#index.get(id);
    return entry === undefined ? undefined : this.#waits.reasonFor(entry, now);
  }

  /** Forget a queued job that left `queued/` by another way (claimed elsewhere, moved by hand). */
  forget(id: string): void {
    this.#index.forget(id);
  }

  /** Ids of the queued jobs indexed for a queue (for rescans). */
  knownIn(queue: string): Set<string> {
    return this.#index.knownIn(queue);
  }

  /** Dependencies that live with other dispatchers: look at the spool again. */
  recheckDependencies(): void {
    this.#dependencies.recheck();
  }

  /** Schedule a dispatch pass; many calls in one tick make one pass. */
  pump(): void {
    if (this.#pumpQueued || !this.#accepting) return;
    this.#pumpQueued = true;
    queueMicrotask(() => {
      this.#pumpQueued = false;
      this.#dispatch();
    });
  }

  /** Stop starting jobs; wait for running ones up to `graceMs`, then stop them (they are requeued). */
  async shutdown(graceMs: number): Promise<void> {
    this.#accepting = false;
    this.#wake.clear();
    // A paused job would hold the stop for the whole grace time: it is stopped (and queued again) now.
    for (const run of this.#slots.values())
      if (this.#pauses.isPaused(run.entry.id)) run.controller.abort('shutdown');
    if (this.#slots.size > 0) {
      this.#d.log.info({ running: this.#slots.size, graceMs }, 'waiting for running jobs');
      const idle = this.#slots.whenIdle();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([idle, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
      await this.stopAll();
    }
  }

  /** Stop every running job now; they go back to `queued/` with the attempt counted. */
  async stopAll(): Promise<void> {
    this.#accepting = false;
    if (this.#slots.size === 0) return;
    const idle = this.#slots.whenIdle();
    for (const run of this.#slots.values()) run.controller.abort('shutdown');
    await idle;
  }

  /** The lock of a running job was lost: someone else may own it now, so stop without recording. */
  lockLost(id: string): void {
    const run = this.#slots.get(id);
    if (run === undefined) return;
    run.lost = true;
    run.controller.abort('cancel');
  }

  // ---- control verbs (control-verbs.ts): the plain-file requests and the API use these ----

  /** Cancel a queued or running job; 'elsewhere' if another dispatcher runs it. */
  cancel(id: string, reason?: string): Promise<'cancelled' | 'stopping' | 'elsewhere'> {
    return this.#control.cancel(id, reason);
  }

  /** Freeze a running job (pause.ts); 'elsewhere' if another dispatcher runs it. `byQueue`: see pause.ts. */
  pause(id: string, by: string, byQueue = false): Promise<'paused' | 'elsewhere'> {
    return this.#control.pause(id, by, byQueue);
  }

  /** Thaw a paused job; 'elsewhere' if another dispatcher runs it. */
  resume(id: string, by: string): Promise<'resumed' | 'elsewhere'> {
    return this.#control.resume(id, by);
  }

  /** Freeze the running jobs of a queue (with its pause), here or by request elsewhere; what became of each. */
  pauseQueue(queue: string, by: string): Promise<PauseOfQueue[]> {
    return this.#control.pauseQueue(queue, by);
  }

  /** Thaw the jobs that a pause of their queue froze here (those paused one by one stay paused). */
  resumeQueue(queue: string, by: string): Promise<PauseOfQueue[]> {
    return this.#control.resumeQueue(queue, by);
  }

  /** Queue a failed or cancelled job again; on_fail's count starts over. */
  retry(id: string): Promise<JobState> {
    return this.#control.retry(id);
  }

  setPriority(id: string, priority: number): Promise<void> {
    return this.#control.setPriority(id, priority);
  }

  move(id: string, toQueue: string): Promise<void> {
    return this.#control.move(id, toQueue);
  }

  setNotBefore(id: string, at: string | null): Promise<void> {
    return this.changeQueued(id, { notBefore: at });
  }

  setHost(id: string, host: string | null): Promise<void> {
    return this.changeQueued(id, { host });
  }

  /** Notes live in state.yaml (job.yaml is written once): changed under the job's lock, never while it runs. */
  setNotes(id: string, notes: string | null): Promise<void> {
    return this.#control.setNotes(id, notes);
  }

  /** Change a queued job's not_before and/or host (null clears; undefined leaves it) in one write. */
  changeQueued(id: string, change: QueuedChange): Promise<void> {
    return this.#control.changeQueued(id, change);
  }

  /** batchd's first/more/less/last (reorder.ts): to the front or back, or one place up or down. */
  reorder(id: string, move: PriorityMove): Promise<void> {
    return this.#control.reorder(id, move);
  }

  // ---- the loop ----

  #dispatch(): void {
    const workers = this.#d.config.daemon.dispatcher.workers;
    const now = new Date();
    let wakeIn = Infinity;
    this.#releaseWaiting(now.getTime());
    const openQueues: string[] = [];
    for (const [queue, list] of this.#index.ready) {
      if (list.size === 0) continue;
      const settings = this.#d.queues.settings(queue);
      // Also after a reload of queue.yaml has disabled a queue that autostart had enabled.
      if (!settings.enabled && !this.#autostart(queue)) continue;
      const schedule = this.#d.config.schedule(settings.schedule_name);
      if (schedule === undefined) {
        this.#d.log.warn(
          { queue, schedule: settings.schedule_name },
          'queue names an unknown schedule; it starts no jobs',
        );
        continue;
      }
      if (!isOpen(schedule, now)) {
        wakeIn = Math.min(wakeIn, msUntilOpen(schedule, now));
        continue;
      }
      openQueues.push(queue);
    }
    while (this.#slots.size < workers && openQueues.length > 0) {
      let best: Entry | undefined;
      let bestQueuePriority = 0;
      for (let i = openQueues.length - 1; i >= 0; i--) {
        const queue = openQueues[i] as string;
        const candidate = this.#candidate(queue);
        if (candidate === undefined) {
          openQueues.splice(i, 1);
          continue;
        }
        const qp = this.#d.queues.settings(queue).priority;
        if (
          best === undefined ||
          candidate.priority > best.priority ||
          (candidate.priority === best.priority &&
            (qp > bestQueuePriority || (qp === bestQueuePriority && candidate.order < best.order)))
        ) {
          best = candidate;
          bestQueuePriority = qp;
        }
      }
      if (best === undefined) break;
      this.#runs.start(best, this.#slots.hostOf(best));
    }
    this.#waits.sayHeads(this.#index.ready, now);
    this.#armTimer(wakeIn);
  }

  /** The best job of a queue that may start now, if the queue has room. */
  #candidate(queue: string): Entry | undefined {
    if (!this.#slots.queueHasRoom(queue)) return undefined;
    return this.#index.ready.get(queue)?.find(this.#mayStart, sameAs);
  }

  /**
   * A single job being accepted, if it may start at once: a worker is free, nothing is ready to
   * start anywhere (it would go first), its queue is open and none of its limits is reached. Its lock
   * is then taken, and its acceptance (spool/acceptance.ts) writes the claim's record and commits
   * it straight into `running/`; `startClaimed` runs it. That saves the claim's read and rewrite
   * of `state.yaml` and a rename on the way from a drop to its process. Jobs for other hosts,
   * jobs of tasks, and jobs with dependencies or a start time still ahead take the ordinary way
   * through `queued/`.
   */
  claimOnArrival(spec: JobSpec): ClaimAtAcceptance | undefined {
    if (!this.#accepting || spec.after.length > 0 || spec.task !== undefined) return undefined;
    if (spec.not_before !== undefined && !(Date.parse(spec.not_before) <= Date.now())) return undefined;
    if (this.#slots.size >= this.#d.config.daemon.dispatcher.workers) return undefined;
    this.#releaseWaiting(Date.now()); // jobs whose start time has come are ready, and go first
    if (this.#index.anyReady()) return undefined;
    const settings = this.#d.queues.settings(spec.queue);
    const schedule = this.#d.config.schedule(settings.schedule_name);
    if (!settings.enabled || schedule === undefined || !isOpen(schedule, new Date())) return undefined;
    if (this.#d.config.jobType(spec.type) === undefined || this.#slots.hostOf(spec) !== undefined)
      return undefined;
    if (!this.#slots.queueHasRoom(spec.queue) || !this.#slots.withinLimits(spec.type, undefined))
      return undefined;
    return this.#runs.claimAtOnce(spec.id);
  }

  /** Run a job that `claimOnArrival` claimed and its acceptance committed into `running/`. */
  startClaimed(state: JobState, spec: JobSpec, release: Release): void {
    this.#d.indexed?.(state, spec);
    this.#runs.startClaimed(state, spec, release);
  }

  /**
   * Follow a running job a stopped dispatcher left whose work goes on elsewhere (a cluster job):
   * recovery took it over under its lock, which is released once its end is recorded.
   */
  adopt(state: JobState, release: Release): void {
    this.#runs.adopt(state, release);
  }

  #releaseWaiting(now: number): void {
    this.#armTimer(this.#index.releaseWaiting(now));
  }

  #armTimer(ms: number): void {
    if (this.#accepting) this.#wake.arm(ms);
  }

  /** Enable a disabled queue that holds autostart_job_count jobs; returns whether it did. */
  #autostart(queue: string): boolean {
    const settings = this.#d.queues.settings(queue);
    const threshold = settings.autostart_job_count;
    if (settings.enabled || threshold === null || threshold === undefined) return false;
    const count = this.#index.countIn(queue);
    if (count < threshold) return false;
    this.#d.log.info({ queue, count }, 'queue enabled by autostart_job_count');
    this.#d.queues.autostarted(queue);
    return true;
  }
}
