import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { mergeLimits } from '../config/limits.ts';
import type { JobType } from '../config/schema.ts';
import type { ConfigStore } from '../config/store.ts';
import { BatchdError, coerceError, errnoCode } from '../errors.ts';
import { mergeCluster } from '../hosts/batch-system.ts';
import type { EventBus } from '../events.ts';
import type { Executor, RunOutcome } from '../executors/types.ts';
import { nextOrder } from '../jobs/id.ts';
import { assertInputFiles, runsHere } from '../jobs/input-files.ts';
import type { JobSpec } from '../jobs/spec.ts';
import { type JobStateName } from '../jobs/status.ts';
import { planCommand } from '../jobs/template.ts';
import { describeAttemptEnd, formatDuration, type Logger } from '../log.ts';
import { locateJob } from '../spool/find.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import type { JobLocks, Release } from '../spool/lock.ts';
import { SELF } from '../spool/owner.ts';
import type { QueueRegistry } from '../spool/queues.ts';
import {
  type AttemptResult,
  type JobState,
  readJobSpec,
  readJobState,
  RESULT_FILE,
} from '../spool/state-file.ts';
import { recordMove, type Transitions } from '../spool/transition.ts';
import { describeWait, type WaitReason } from '../jobs/wait.ts';
import { countInterruption, nextStep } from './outcome.ts';
import { notRunningHere, outcomeOf, type PauseOfQueue, Pauses, settlePause } from './pause.ts';
import { type Entry, ReadyList } from './ready-list.ts';
import { planReorder, type PriorityMove, queuedInOrder } from './reorder.ts';
import { isOpen, msUntilOpen } from './schedule.ts';
import { explainWait, type WaitFacts } from './wait-reason.ts';

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
}

/** A change of a queued job: a value sets, null clears, undefined leaves as it is. */
export interface QueuedChange {
  notBefore?: string | null | undefined;
  host?: string | null | undefined;
}

/** The reason a claim gives its move into `running/`. */
const STARTED = 'started';

/** What a claim writes into a job's record (with its move into `running/`). */
function claimRecord(host: string | undefined): (state: JobState) => void {
  return (s) => {
    s.attempts += 1;
    s.paused_at = undefined; // left by a crash during a pause: a pause ends with its attempt
    s.running = {
      attempt: s.attempts,
      started_at: new Date().toISOString(),
      host: host ?? 'localhost',
      owner: SELF,
    };
  };
}

function entryOf(state: JobState): Entry {
  return {
    id: state.id,
    queue: state.queue,
    type: state.type,
    host: state.host,
    task: state.task,
    priority: state.priority,
    order: state.order,
    notBefore: state.not_before === undefined ? undefined : Date.parse(state.not_before),
    pending: new Set(),
  };
}

/** Specs kept from acceptance until the claim (about 1 KiB each). */
const KEPT_SPECS = 10_000;

interface Running {
  entry: Entry;
  /** Its spec, when kept from acceptance. */
  spec: JobSpec | undefined;
  host: string | undefined;
  controller: AbortController;
  lost: boolean;
  /** The job's record from the start of its attempt on (pause.ts writes into it). */
  state?: JobState | undefined;
}

/**
 * The scheduling loop. It holds the queued jobs it knows of (ids and ordering fields only) and the
 * jobs it runs; the spool stays the truth, and every change of a job's folder goes through
 * Transitions under the job's lock.
 */
export class Dispatcher {
  readonly #d: DispatcherDeps;
  readonly #ready = new Map<string, ReadyList>();
  /** Queued jobs waiting for dependencies or not_before. */
  readonly #waiting = new Map<string, Entry>();
  readonly #known = new Map<string, Entry>();
  /**
   * The specs of jobs accepted by this daemon, kept until they are claimed (a bounded number):
   * `job.yaml` is written once, at acceptance, so the claim need not read it back.
   */
  readonly #specs = new Map<string, JobSpec>();
  readonly #dependents = new Map<string, Set<string>>();
  readonly #running = new Map<string, Running>();
  readonly #perQueue = new Map<string, number>();
  readonly #perType = new Map<string, number>();
  readonly #perHost = new Map<string, number>();
  #pumpQueued = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #accepting = true;
  readonly #idleWaiters: (() => void)[] = [];
  /** The wait reason last logged per queued job: a line is logged only when it changes. */
  readonly #said = new WeakMap<Entry, string>();
  readonly #pauses: Pauses;

  constructor(deps: DispatcherDeps) {
    this.#d = deps;
    this.#pauses = new Pauses(deps);
    // Jobs frozen by a pause of their queue stay frozen while it is disabled, however it is enabled again.
    deps.events.on('queue:changed', ({ queue }) => {
      if (deps.queues.has(queue) && deps.queues.settings(queue).enabled)
        void this.resumeQueue(queue, `the enabling of queue ${queue}`);
    });
  }

  get runningCount(): number {
    return this.#running.size;
  }

  get queuedCount(): number {
    return this.#known.size;
  }

  isRunningHere(id: string): boolean {
    return this.#running.has(id);
  }

  knows(id: string): boolean {
    return this.#known.has(id) || this.#running.has(id);
  }

  /** Index a queued job (from acceptance, with its spec, or a rescan or a requeue). */
  add(state: JobState, spec?: JobSpec): void {
    if (this.#known.has(state.id) || this.#running.has(state.id)) return;
    if (spec !== undefined && this.#specs.size < KEPT_SPECS) this.#specs.set(state.id, spec);
    const entry = entryOf(state);
    this.#known.set(entry.id, entry);
    for (const dep of state.after) {
      if (this.#known.has(dep) || this.#running.has(dep)) {
        entry.pending.add(dep);
        this.#addDependent(dep, entry.id);
        continue;
      }
      const where = locateJob(this.#d.layout, this.#d.queues.names(), dep);
      if (where === undefined || where.state === 'failed' || where.state === 'cancelled') {
        const why =
          where === undefined ? `dependency ${dep} no longer exists` : `dependency ${dep} ${where.state}`;
        entry.pending.add(dep); // keeps it out of the ready list while it is failed
        this.#place(entry, true);
        void this.#failQueued(entry, why);
        return;
      }
      if (where.state !== 'done') {
        // Queued or running under another dispatcher: looked at again on each rescan.
        entry.pending.add(dep);
        this.#addDependent(dep, entry.id);
      }
    }
    // Indexed (start-up, rescans): its wait was logged when it was accepted.
    this.#place(entry, spec === undefined);
    this.#autostart(entry.queue);
    this.pump();
  }

  /** Why a queued job this dispatcher knows has not started (undefined: not queued here). */
  waitReason(id: string, now = new Date()): WaitReason | undefined {
    const entry = this.#known.get(id);
    return entry === undefined ? undefined : explainWait(this.#waitFacts(entry, now));
  }

  #waitFacts(entry: Entry, now: Date): WaitFacts {
    const settings = this.#d.queues.settings(entry.queue);
    const host = this.#hostOf(entry);
    const type = this.#d.config.jobType(entry.type);
    return {
      queue: entry.queue,
      type: entry.type,
      host,
      now,
      queueEnabled: settings.enabled,
      notBefore: entry.notBefore,
      pending: [...entry.pending],
      scheduleName: settings.schedule_name,
      schedule: this.#d.config.schedule(settings.schedule_name),
      workers: { busy: this.#running.size, max: this.#d.config.daemon.dispatcher.workers },
      queueLimit: { running: this.#perQueue.get(entry.queue) ?? 0, max: settings.parallel ?? undefined },
      typeLimit: { running: this.#perType.get(entry.type) ?? 0, max: type?.max_jobs },
      hostTakes:
        this.#d.hostAvailable?.(host, host === undefined ? 0 : (this.#perHost.get(host) ?? 0)) ?? true,
    };
  }

  /**
   * Log a queued job's wait reason once, when it changes (not on every pass). Ordinary waiting
   * (busy workers, jobs ahead) and a task's jobs are logged at debug; `quiet` only records it.
   */
  #sayWait(entry: Entry, wait: WaitReason, quiet = false): void {
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
  #sayHeadWaits(now: Date): void {
    for (const list of this.#ready.values()) {
      for (const head of list) {
        this.#sayWait(head, explainWait(this.#waitFacts(head, now)));
        break;
      }
    }
  }

  /** Forget a queued job that left `queued/` by another way (claimed elsewhere, moved by hand). */
  forget(id: string): void {
    const entry = this.#known.get(id);
    if (entry === undefined) return;
    this.#unplace(entry);
    this.#known.delete(id);
    this.#specs.delete(id);
  }

  /** Ids of the queued jobs indexed for a queue (for rescans). */
  knownIn(queue: string): Set<string> {
    const ids = new Set<string>();
    for (const entry of this.#known.values()) if (entry.queue === queue) ids.add(entry.id);
    return ids;
  }

  /** Dependencies that live with other dispatchers: look at the spool again. */
  recheckDependencies(): void {
    for (const entry of [...this.#waiting.values()]) {
      for (const dep of [...entry.pending]) {
        if (this.#known.has(dep) || this.#running.has(dep)) continue;
        const where = locateJob(this.#d.layout, this.#d.queues.names(), dep);
        if (where === undefined) this.#dependencyEnded(dep, 'failed', `dependency ${dep} no longer exists`);
        else this.#dependencyEnded(dep, where.state);
      }
    }
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
    clearTimeout(this.#timer);
    // A paused job would hold the stop for the whole grace time: it is stopped (and queued again) now.
    for (const run of this.#running.values())
      if (this.#pauses.isPaused(run.entry.id)) run.controller.abort('shutdown');
    if (this.#running.size > 0) {
      this.#d.log.info({ running: this.#running.size, graceMs }, 'waiting for running jobs');
      const idle = new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([idle, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
      await this.stopAll();
    }
  }

  /** Stop every running job now; they go back to `queued/` with the attempt counted. */
  async stopAll(): Promise<void> {
    this.#accepting = false;
    if (this.#running.size === 0) return;
    const idle = new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    for (const run of this.#running.values()) run.controller.abort('shutdown');
    await idle;
  }

  /** The lock of a running job was lost: someone else may own it now, so stop without recording. */
  lockLost(id: string): void {
    const run = this.#running.get(id);
    if (run === undefined) return;
    run.lost = true;
    run.controller.abort('cancel');
  }

  // ---- control: cancel, retry, priority, move (the plain-file requests and the API use these) ----

  /** Cancel a queued or running job. Returns false if another dispatcher runs it. */
  async cancel(id: string, reason = 'cancelled'): Promise<'cancelled' | 'stopping' | 'elsewhere'> {
    const run = this.#running.get(id);
    if (run !== undefined) {
      run.controller.abort('cancel');
      return 'stopping';
    }
    const where = this.#locate(id);
    if (where.state !== 'queued') {
      if (where.state === 'running') return 'elsewhere';
      throw new BatchdError(
        'CONFLICT',
        `Job ${id} is ${where.state}; only queued or running jobs can be cancelled`,
        { jobId: id },
      );
    }
    await this.#underLock(id, () => {
      this.#d.transitions.move({ id, queue: where.queue }, 'queued', 'cancelled', {
        reason,
        update: (s) => {
          s.last = {
            attempt: s.attempts,
            outcome: 'cancelled',
            error: reason,
            ended_at: new Date().toISOString(),
          };
        },
      });
    });
    const entry = this.#known.get(id);
    if (entry !== undefined) this.forget(id);
    this.#dependencyEnded(id, 'cancelled');
    return 'cancelled';
  }

  /** Freeze a running job (pause.ts); 'elsewhere' if another dispatcher runs it. */
  async pause(id: string, by: string): Promise<'paused' | 'elsewhere'> {
    const run = this.#running.get(id);
    if (run === undefined) return notRunningHere(id, this.#locate(id).state, 'pause');
    if (!this.#accepting)
      throw new BatchdError('CONFLICT', `The daemon is stopping; job ${id} is not paused`, { jobId: id });
    return this.#pauses.pause(run, by);
  }

  /** Thaw a paused job; 'elsewhere' if another dispatcher runs it. */
  async resume(id: string, by: string): Promise<'resumed' | 'elsewhere'> {
    const run = this.#running.get(id);
    if (run === undefined) return notRunningHere(id, this.#locate(id).state, 'resume');
    return this.#pauses.resume(run, by);
  }

  /** Freeze the jobs of a queue that run here (with its pause); what became of each. */
  pauseQueue(queue: string, by: string): Promise<PauseOfQueue[]> {
    const runs = [...this.#running.values()].filter((r) => r.entry.queue === queue);
    return Promise.all(runs.map((run) => outcomeOf(run.entry.id, this.#pauses.pause(run, by, true))));
  }

  /** Thaw the jobs that a pause of their queue froze here (those paused one by one stay paused). */
  resumeQueue(queue: string, by: string): Promise<PauseOfQueue[]> {
    const runs = [...this.#running.values()].filter(
      (r) => r.entry.queue === queue && this.#pauses.pausedByQueue(r.entry.id),
    );
    return Promise.all(runs.map((run) => outcomeOf(run.entry.id, this.#pauses.resume(run, by))));
  }

  /** Queue a failed or cancelled job again; on_fail's count starts over. */
  async retry(id: string): Promise<JobState> {
    const where = this.#locate(id);
    if (where.state !== 'failed' && where.state !== 'cancelled') {
      throw new BatchdError(
        'CONFLICT',
        `Job ${id} is ${where.state}; only failed or cancelled jobs can be retried`,
        { jobId: id },
      );
    }
    const state = await this.#underLock(id, () =>
      this.#d.transitions.move({ id, queue: where.queue }, where.state, 'queued', {
        reason: 'retry requested',
        update: (s) => {
          s.retries = 0;
          s.order = nextOrder();
          s.cancel_requested = undefined;
        },
      }),
    );
    this.add(state);
    return state;
  }

  async setPriority(id: string, priority: number): Promise<void> {
    const where = this.#locateQueued(id, 'only queued jobs can be re-prioritised');
    await this.#underLock(id, () => {
      this.#d.transitions.update({ id, queue: where.queue }, 'queued', `priority set to ${priority}`, (s) => {
        s.priority = priority;
      });
    });
    const entry = this.#known.get(id);
    if (entry !== undefined) {
      this.#unplace(entry);
      entry.priority = priority;
      this.#place(entry);
      this.pump();
    }
  }

  async move(id: string, toQueue: string): Promise<void> {
    if (!this.#d.queues.has(toQueue))
      throw new BatchdError('UNKNOWN_QUEUE', `Unknown queue "${toQueue}"`, { queue: toQueue });
    const where = this.#locateQueued(id, 'only queued jobs can be moved');
    if (where.queue === toQueue) return;
    await this.#underLock(id, () => {
      this.#d.transitions.move({ id, queue: where.queue }, 'queued', 'queued', {
        toQueue,
        reason: `moved from ${where.queue} to ${toQueue}`,
      });
    });
    const entry = this.#known.get(id);
    if (entry !== undefined) {
      this.#unplace(entry);
      entry.queue = toQueue;
      this.#place(entry);
      this.pump();
    }
  }

  setNotBefore(id: string, at: string | null): Promise<void> {
    return this.changeQueued(id, { notBefore: at });
  }

  setHost(id: string, host: string | null): Promise<void> {
    return this.changeQueued(id, { host });
  }

  /** Notes live in state.yaml (job.yaml is written once): changed under the job's lock, never while it runs. */
  async setNotes(id: string, notes: string | null): Promise<void> {
    try {
      await this.#underLock(id, () => {
        const where = this.#locate(id);
        if (where.state === 'running' || this.#running.has(id))
          throw new BatchdError('CONFLICT', `Job ${id} is running; change its notes when it has ended`, {
            jobId: id,
          });
        this.#d.transitions.update({ id, queue: where.queue }, where.state, 'notes changed', (s) => {
          (s as { notes?: string | null }).notes = notes;
        });
      });
    } catch (error) {
      if (errnoCode(error) === 'ENOENT')
        throw new BatchdError('JOB_GONE', `Job ${id} moved while its notes were changed; try again`, {
          jobId: id,
        });
      throw error;
    }
  }

  /** Change a queued job's not_before and/or host (null clears; undefined leaves it) in one write. */
  async changeQueued(id: string, change: QueuedChange): Promise<void> {
    const host = change.host;
    if (typeof host === 'string' && this.#d.config.get('hosts', host) === undefined) {
      const message = `Unknown host "${host}"`;
      throw new BatchdError('UNKNOWN_HOST', message, { host }, { problems: [{ field: 'host', message }] });
    }
    const where = this.#locateQueued(id, "only a queued job's start time or host can change");
    const said = [
      change.notBefore === undefined
        ? ''
        : `not_before ${change.notBefore === null ? 'cleared' : `set to ${change.notBefore}`}`,
      host === undefined ? '' : `host ${host === null ? 'cleared' : `set to ${host}`}`,
    ];
    await this.#underLock(id, () => {
      // Claimed by this dispatcher but not yet started: it would start with what it read before.
      if (this.#running.has(id))
        throw new BatchdError('CONFLICT', `Job ${id} is starting; it can no longer be changed`, {
          jobId: id,
        });
      this.#d.transitions.update(
        { id, queue: where.queue },
        'queued',
        said.filter(Boolean).join(', '),
        (s) => {
          if (change.notBefore !== undefined) s.not_before = change.notBefore ?? undefined;
          if (host !== undefined) s.host = host ?? undefined;
        },
      );
      // Still under the lock, so no pass of the loop sees the job half changed.
      const entry = this.#known.get(id);
      if (entry === undefined) return;
      this.#unplace(entry);
      if (change.notBefore !== undefined)
        entry.notBefore = change.notBefore === null ? undefined : Date.parse(change.notBefore);
      if (host !== undefined) entry.host = host ?? undefined;
      this.#place(entry);
    });
    this.pump();
  }

  /** batchd's first/more/less/last (reorder.ts): to the front or back, or one place up or down. */
  async reorder(id: string, move: PriorityMove): Promise<void> {
    const where = this.#locateQueued(id, 'only queued jobs can be re-prioritised');
    const plan = planReorder(queuedInOrder(this.#d.layout, where.queue), id, move);
    if (plan.kind === 'priority') await this.setPriority(id, plan.priority);
    else if (plan.kind === 'swap')
      await this.#swap(where.queue, id, plan.with, move === 'more' ? 'up' : 'down');
  }

  /** Two queued jobs trade their priority and order, under both locks; never left sharing one place. */
  async #swap(queue: string, a: string, b: string, way: 'up' | 'down'): Promise<void> {
    const releaseA = await this.#d.locks.acquire(a);
    if (releaseA === undefined)
      throw new BatchdError('JOB_LOCKED', `Job ${a} is held by a running dispatcher; try again`, {
        jobId: a,
      });
    try {
      await this.#underLock(b, () => {
        if (this.#running.has(a) || this.#running.has(b))
          throw new BatchdError('CONFLICT', `Job ${a} or ${b} is starting; try again`, { jobId: a });
        const jobA = { id: a, queue };
        const jobB = { id: b, queue };
        let other: JobState;
        try {
          other = readJobState(this.#d.layout.jobDir(queue, 'queued', b), { locked: true });
        } catch {
          throw new BatchdError('JOB_GONE', `Job ${b} is no longer queued in ${queue}; try again`, {
            jobId: b,
          });
        }
        const theirs = { priority: other.priority, order: other.order };
        let mine = theirs;
        const put = (place: { priority: number; order: number }) => (s: JobState) => {
          s.priority = place.priority;
          s.order = place.order;
        };
        this.#d.transitions.update(jobA, 'queued', `moved one place ${way} (swapped with ${b})`, (s) => {
          mine = { priority: s.priority, order: s.order };
          put(theirs)(s);
        });
        try {
          this.#d.transitions.update(
            jobB,
            'queued',
            `moved one place ${way === 'up' ? 'down' : 'up'} (swapped with ${a})`,
            put(mine),
          );
        } catch (error) {
          try {
            this.#d.transitions.update(jobA, 'queued', 'swap undone', put(mine));
          } catch (undo) {
            this.#d.log.error(
              { jobId: a, err: coerceError(undo) },
              'could not undo half a swap: two jobs share a place',
            );
          }
          throw error;
        }
        this.#replace(a, theirs);
        this.#replace(b, mine);
      });
    } finally {
      await releaseA().catch(() => undefined);
    }
    this.pump();
  }

  #replace(id: string, place: { priority: number; order: number }): void {
    const entry = this.#known.get(id);
    if (entry === undefined) return;
    this.#unplace(entry);
    entry.priority = place.priority;
    entry.order = place.order;
    this.#place(entry);
  }

  // ---- the loop ----

  #dispatch(): void {
    const workers = this.#d.config.daemon.dispatcher.workers;
    const now = new Date();
    let wakeIn = Infinity;
    this.#releaseWaiting(now.getTime());
    const openQueues: string[] = [];
    for (const [queue, list] of this.#ready) {
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
    while (this.#running.size < workers && openQueues.length > 0) {
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
      this.#start(best);
    }
    this.#sayHeadWaits(now);
    this.#armTimer(wakeIn);
  }

  /** The best job of a queue that may start now, if the queue has room. */
  #candidate(queue: string): Entry | undefined {
    if (!this.#queueHasRoom(queue)) return undefined;
    // Whether a job may start depends only on its type and host: one refusal answers for all alike.
    const sameAs = (entry: Entry): string => `${entry.type}\n${entry.host ?? ''}`;
    return this.#ready
      .get(queue)
      ?.find((entry) => this.#withinLimits(entry.type, this.#hostOf(entry)), sameAs);
  }

  /** The queue's `parallel` is not reached. */
  #queueHasRoom(queue: string): boolean {
    const parallel = this.#d.queues.settings(queue).parallel;
    return parallel === undefined || (this.#perQueue.get(queue) ?? 0) < parallel;
  }

  /** The type's `max_jobs` is not reached, and the host takes another job (limits, back-off). */
  #withinLimits(typeName: string, host: string | undefined): boolean {
    const type = this.#d.config.jobType(typeName);
    if (type?.max_jobs !== undefined && (this.#perType.get(typeName) ?? 0) >= type.max_jobs) return false;
    return this.#d.hostAvailable?.(host, host === undefined ? 0 : (this.#perHost.get(host) ?? 0)) ?? true;
  }

  /** Where a job runs: its own host, else its type's, else its queue's, else this machine. */
  #hostOf(job: { queue: string; type: string; host?: string | undefined }): string | undefined {
    return (
      job.host ??
      this.#d.config.jobType(job.type)?.host_name ??
      this.#d.queues.settings(job.queue).host_name ??
      undefined
    );
  }

  #start(entry: Entry): void {
    this.#unplace(entry);
    this.#known.delete(entry.id);
    const spec = this.#specs.get(entry.id);
    this.#specs.delete(entry.id);
    const run = this.#occupy(entry, spec, this.#hostOf(entry));
    this.#track(run, this.#execute(run));
  }

  /**
   * A single job being accepted, if it may start at once: a worker is free, nothing is ready to
   * start anywhere (it would go first), its queue is open and none of its limits is reached. Its lock
   * is then taken, and its acceptance writes the claim's record (the function returned) and commits
   * it straight into `running/` (accept.ts); `startClaimed` runs it. That saves the claim's read and
   * rewrite of `state.yaml` and a rename on the way from a drop to its process. Jobs for other hosts,
   * jobs of tasks, and jobs with dependencies or a start time still ahead take the ordinary way
   * through `queued/`.
   */
  claimOnArrival(spec: JobSpec): { record: (state: JobState) => void; release: Release } | undefined {
    if (!this.#accepting || spec.after.length > 0 || spec.task !== undefined) return undefined;
    if (spec.not_before !== undefined && !(Date.parse(spec.not_before) <= Date.now())) return undefined;
    if (this.#running.size >= this.#d.config.daemon.dispatcher.workers) return undefined;
    this.#releaseWaiting(Date.now()); // jobs whose start time has come are ready, and go first
    for (const list of this.#ready.values()) if (list.size > 0) return undefined;
    const settings = this.#d.queues.settings(spec.queue);
    const schedule = this.#d.config.schedule(settings.schedule_name);
    if (!settings.enabled || schedule === undefined || !isOpen(schedule, new Date())) return undefined;
    if (this.#d.config.jobType(spec.type) === undefined || this.#hostOf(spec) !== undefined) return undefined;
    if (!this.#queueHasRoom(spec.queue) || !this.#withinLimits(spec.type, undefined)) return undefined;
    let release: Release | undefined;
    try {
      release = this.#d.locks.take(spec.id);
    } catch {
      return undefined; // the ordinary way reports what is wrong with the lock folder
    }
    if (release === undefined) return undefined;
    const record = (state: JobState): void => {
      claimRecord(undefined)(state);
      recordMove(state, 'queued', 'running', STARTED);
    };
    return { record, release };
  }

  /** Run a job that `claimOnArrival` claimed and its acceptance committed into `running/`. */
  startClaimed(state: JobState, spec: JobSpec, release: Release): void {
    const entry = entryOf(state);
    this.#d.transitions.announce(entry, 'queued', 'running', STARTED);
    const run = this.#occupy(entry, spec, undefined);
    this.#track(run, this.#executeClaimed(run, state, release));
  }

  /**
   * Follow a running job a stopped dispatcher left whose work goes on elsewhere (a cluster job):
   * recovery took it over under its lock, which is released once its end is recorded.
   */
  adopt(state: JobState, release: Release): void {
    const run = this.#occupy(entryOf(state), undefined, state.running?.host);
    this.#track(run, this.#executeClaimed(run, state, release));
  }

  /** A job takes a worker: it counts against its limits until it is finished. */
  #occupy(entry: Entry, spec: JobSpec | undefined, host: string | undefined): Running {
    const run: Running = { entry, spec, host, controller: new AbortController(), lost: false };
    this.#running.set(entry.id, run);
    bump(this.#perQueue, entry.queue, 1);
    bump(this.#perType, entry.type, 1);
    if (host !== undefined) bump(this.#perHost, host, 1);
    return run;
  }

  #track(run: Running, execution: Promise<JobState | undefined>): void {
    execution.then(
      (requeued) => this.#finished(run, requeued),
      (error: unknown) => {
        this.#d.log.error({ jobId: run.entry.id, err: coerceError(error) }, 'job handling failed');
        this.#finished(run);
      },
    );
  }

  /** After the attempt and its lock are done with; a job queued again is indexed only now. */
  #finished(run: Running, requeued?: JobState): void {
    this.#running.delete(run.entry.id);
    this.#pauses.ended(run.entry.id);
    bump(this.#perQueue, run.entry.queue, -1);
    bump(this.#perType, run.entry.type, -1);
    if (run.host !== undefined) bump(this.#perHost, run.host, -1);
    if (requeued !== undefined) this.add(requeued);
    if (this.#running.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
    this.pump();
  }

  /**
   * The job's lock was busy: another dispatcher is claiming it (then it leaves queued/ at once), or a
   * short control operation (priority, move…) holds it. Index it again if it is still queued.
   */
  #lookAgainLater(entry: Entry): void {
    const timer = setTimeout(() => {
      if (!this.#accepting || this.knows(entry.id)) return;
      try {
        this.add(readJobState(this.#d.layout.jobDir(entry.queue, 'queued', entry.id)));
      } catch {
        // claimed or moved elsewhere: nothing to do
      }
    }, 100);
    timer.unref();
  }

  /** One attempt under the job's lock; returns the job's record if it was queued again. */
  async #execute(run: Running): Promise<JobState | undefined> {
    const { entry } = run;
    const job = { id: entry.id, queue: entry.queue };
    const release = await this.#d.locks.acquire(entry.id);
    if (release === undefined) {
      this.#lookAgainLater(entry);
      return undefined;
    }
    let state: JobState;
    try {
      state = this.#d.transitions.move(job, 'queued', 'running', {
        reason: STARTED,
        update: claimRecord(run.host),
      });
    } catch (error) {
      await release().catch(() => undefined);
      if (error instanceof BatchdError && error.code === 'JOB_GONE') return undefined;
      throw error;
    }
    return this.#executeClaimed(run, state, release);
  }

  /** The attempt of a claimed job and its record; then its lock is released. */
  async #executeClaimed(run: Running, state: JobState, release: Release): Promise<JobState | undefined> {
    const job = { id: run.entry.id, queue: run.entry.queue };
    run.state = state;
    try {
      const type = this.#d.config.jobType(run.entry.type);
      this.#d.log.info(
        {
          job: {
            id: job.id,
            queue: job.queue,
            type: run.entry.type,
            host: run.host ?? 'localhost',
            attempt: state.attempts,
          },
        },
        `job ${job.id} started (${run.entry.type} in ${job.queue} on ${run.host ?? 'localhost'}, attempt ${state.attempts})`,
      );
      const outcome = await this.#attempt(run, state, type, run.host);
      if (run.lost || outcome.detached === true) return undefined;
      return await this.#recordWhenPossible(run, job, state, outcome, type, run.host);
    } finally {
      await release().catch(() => undefined);
    }
  }

  async #attempt(
    run: Running,
    state: JobState,
    type: JobType | undefined,
    host: string | undefined,
  ): Promise<RunOutcome> {
    const now = new Date().toISOString();
    if (run.controller.signal.aborted) {
      const outcome = run.controller.signal.reason === 'shutdown' ? 'interrupted' : 'cancelled';
      return { outcome, error: outcome, startedAt: now, endedAt: now };
    }
    if (type === undefined) {
      return {
        outcome: 'error',
        error: `job type "${state.type}" no longer exists`,
        startedAt: now,
        endedAt: now,
      };
    }
    const dir = this.#d.layout.jobDir(state.queue, 'running', state.id);
    try {
      const spec = run.spec ?? readJobSpec(dir);
      const daemon = this.#d.config.daemon;
      const plan = planCommand(type, spec.params, daemon.variables);
      const env: Record<string, string> = {
        ...type.environment,
        ...plan.env,
        BATCHD_JOB_ID: state.id,
        BATCHD_QUEUE: state.queue,
        BATCHD_TASK: state.task ?? '',
        BATCHD_ATTEMPT: String(state.attempts),
        BATCHD_JOB_DIR: dir,
        BATCHD_RESULT: path.join(dir, RESULT_FILE),
      };
      const cwd = type.workdir === undefined ? dir : this.#d.config.resolve(type.workdir);
      // A job that waited (for jobs or a time) was accepted before its input had to exist.
      if (runsHere(host)) assertInputFiles(type, spec.params, cwd);
      const executor = this.#d.executorFor(host);
      return await executor.run(
        {
          jobId: state.id,
          queue: state.queue,
          attempt: state.attempts,
          dir,
          plan,
          env,
          cwd,
          timeoutMs: state.timeout_ms ?? type.timeout,
          killGraceMs: daemon.dispatcher.kill_grace,
          limits: mergeLimits(type.limits, this.#d.queues.settings(state.queue).limits, spec.limits),
          cluster: mergeCluster(type.cluster, this.#d.queues.settings(state.queue).cluster, spec.cluster),
          job: { type, params: spec.params, variables: daemon.variables },
        },
        run.controller.signal,
      );
    } catch (error) {
      return {
        outcome: 'error',
        error: coerceError(error).message,
        startedAt: now,
        endedAt: new Date().toISOString(),
      };
    }
  }

  /**
   * A full disk must not turn a finished job into an interrupted one that runs again: its outcome
   * is kept here, under the job's lock, and written once there is room. Only if this dispatcher
   * stops (or loses the lock) first is the job left to recovery.
   */
  async #recordWhenPossible(
    run: Running,
    job: { id: string; queue: string },
    state: JobState,
    outcome: RunOutcome,
    type: JobType | undefined,
    host: string | undefined,
  ): Promise<JobState | undefined> {
    // A failed write leaves state.yaml as it was, but the record in memory half updated: read it again.
    for (let known: JobState | undefined = state; ; known = undefined) {
      try {
        return this.#record(job, state, outcome, type, host, known);
      } catch (error) {
        const diskFull = error instanceof BatchdError && error.code === 'DISK_FULL';
        if (!diskFull || run.lost || run.controller.signal.aborted) {
          this.#d.log.error(
            { jobId: job.id, err: coerceError(error) },
            'could not record the end of a job; recovery will',
          );
          return undefined;
        }
        if (known !== undefined)
          this.#d.log.error(
            { jobId: job.id, err: coerceError(error) },
            'disk full: the end of the job is written once there is room',
          );
        await delay(this.#d.config.daemon.dispatcher.poll_timeout, undefined, {
          signal: run.controller.signal,
        }).catch(() => undefined);
      }
    }
  }

  /** Move a finished attempt to where its outcome sends it; throws if the spool refuses the write. */
  #record(
    job: { id: string; queue: string },
    state: JobState,
    outcome: RunOutcome,
    type: JobType | undefined,
    host: string | undefined,
    known: JobState | undefined,
  ): JobState | undefined {
    const interrupted = outcome.outcome === 'interrupted';
    const interruptions = (state.interruptions ?? 0) + (interrupted ? 1 : 0);
    const step = nextStep(outcome.outcome, outcome.error, type?.on_fail ?? 'continue', state.retries, {
      count: interruptions,
      max: this.#d.config.daemon.dispatcher.max_interruptions,
    });
    const result: AttemptResult = {
      attempt: state.attempts,
      outcome: outcome.outcome,
      exit_code: outcome.exitCode,
      signal: outcome.signal,
      error: outcome.error,
      host: host ?? 'localhost',
      started_at: outcome.startedAt,
      ended_at: outcome.endedAt,
      duration_ms: Date.parse(outcome.endedAt) - Date.parse(outcome.startedAt),
      batch: outcome.batch,
    };
    const next = this.#d.transitions.move(job, 'running', step.to, {
      reason: step.reason,
      known,
      update: (s) => {
        s.running = undefined;
        settlePause(s);
        s.last = result;
        s.results.push(result);
        if (step.toBack) s.order = nextOrder();
        if (step.retry === true) s.retries += 1;
        if (interrupted) countInterruption(s, interruptions);
      },
    });
    this.#d.log.info(
      {
        job: {
          id: job.id,
          queue: job.queue,
          type: state.type,
          host: result.host,
          outcome: result.outcome,
          exitCode: result.exit_code,
          signal: result.signal,
          durationMs: result.duration_ms,
          to: step.to,
        },
      },
      `job ${job.id} ended: ${describeAttemptEnd(result)} after ${formatDuration(result.duration_ms ?? 0)} on ${result.host ?? 'localhost'} → ${step.to}${step.to === 'queued' ? ` (${step.reason})` : ''}`,
    );
    if (step.to === 'queued') return next;
    this.#dependencyEnded(job.id, step.to);
    return undefined;
  }

  // ---- dependencies, waiting, placement ----

  #addDependent(dep: string, id: string): void {
    let set = this.#dependents.get(dep);
    if (set === undefined) this.#dependents.set(dep, (set = new Set()));
    set.add(id);
  }

  #dependencyEnded(dep: string, state: JobStateName, why = `dependency ${dep} ${state}`): void {
    if (state === 'queued' || state === 'running') return;
    const ids = this.#dependents.get(dep);
    if (ids === undefined) return;
    this.#dependents.delete(dep);
    for (const id of ids) {
      const entry = this.#known.get(id);
      if (entry === undefined) continue;
      if (state === 'done') {
        entry.pending.delete(dep);
        if (entry.pending.size === 0) {
          this.#unplace(entry);
          this.#place(entry);
        }
      } else {
        void this.#failQueued(entry, why);
      }
    }
    this.pump();
  }

  async #failQueued(entry: Entry, why: string): Promise<void> {
    try {
      await this.#underLock(entry.id, () => {
        this.#d.transitions.move({ id: entry.id, queue: entry.queue }, 'queued', 'failed', {
          reason: why,
          update: (s) => {
            s.last = {
              attempt: s.attempts,
              outcome: 'dependency-failed',
              error: why,
              ended_at: new Date().toISOString(),
            };
          },
        });
      });
    } catch (error) {
      this.#d.log.warn(
        { jobId: entry.id, err: coerceError(error) },
        'could not fail a job whose dependency failed',
      );
      return;
    }
    this.forget(entry.id);
    this.#dependencyEnded(entry.id, 'failed');
  }

  #place(entry: Entry, quiet = false): void {
    if (entry.pending.size > 0 || (entry.notBefore !== undefined && entry.notBefore > Date.now())) {
      this.#waiting.set(entry.id, entry);
      this.#sayWait(entry, explainWait(this.#waitFacts(entry, new Date())), quiet);
      if (entry.pending.size === 0 && entry.notBefore !== undefined)
        this.#armTimer(entry.notBefore - Date.now());
      return;
    }
    let list = this.#ready.get(entry.queue);
    if (list === undefined) this.#ready.set(entry.queue, (list = new ReadyList()));
    list.insert(entry);
  }

  #unplace(entry: Entry): void {
    if (!this.#waiting.delete(entry.id)) this.#ready.get(entry.queue)?.remove(entry);
  }

  #releaseWaiting(now: number): void {
    let next = Infinity;
    for (const entry of this.#waiting.values()) {
      if (entry.pending.size > 0) continue;
      if (entry.notBefore === undefined || entry.notBefore <= now) {
        this.#waiting.delete(entry.id);
        this.#place(entry);
      } else next = Math.min(next, entry.notBefore - now);
    }
    this.#armTimer(next);
  }

  #armTimer(ms: number): void {
    if (!Number.isFinite(ms) || !this.#accepting) return;
    const at = Date.now() + Math.max(ms, 1);
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Infinity;
        this.pump();
      },
      Math.min(Math.max(ms, 1), 2_147_000_000),
    );
  }

  /** Enable a disabled queue that holds autostart_job_count jobs; returns whether it did. */
  #autostart(queue: string): boolean {
    const settings = this.#d.queues.settings(queue);
    const threshold = settings.autostart_job_count;
    if (settings.enabled || threshold === null || threshold === undefined) return false;
    const count =
      (this.#ready.get(queue)?.size ?? 0) +
      [...this.#waiting.values()].filter((e) => e.queue === queue).length;
    if (count < threshold) return false;
    this.#d.log.info({ queue, count }, 'queue enabled by autostart_job_count');
    this.#d.queues.autostarted(queue);
    return true;
  }

  #locate(id: string): { queue: string; state: JobStateName } {
    const where = locateJob(this.#d.layout, this.#d.queues.names(), id);
    if (where === undefined) throw new BatchdError('UNKNOWN_JOB', `No job ${id} in any queue`, { jobId: id });
    return where;
  }

  /** The job's queue, if it is queued; else a CONFLICT saying `rule`. */
  #locateQueued(id: string, rule: string): { queue: string; state: 'queued' } {
    const where = this.#locate(id);
    if (where.state !== 'queued')
      throw new BatchdError('CONFLICT', `Job ${id} is ${where.state}; ${rule}`, { jobId: id });
    return { queue: where.queue, state: 'queued' };
  }

  async #underLock<T>(id: string, fn: () => T): Promise<T> {
    const release: Release | undefined = await this.#d.locks.acquire(id);
    if (release === undefined)
      throw new BatchdError('JOB_LOCKED', `Job ${id} is held by a running dispatcher; try again`, {
        jobId: id,
      });
    try {
      return fn();
    } finally {
      await release().catch(() => undefined);
    }
  }
}

function bump(map: Map<string, number>, key: string, by: number): void {
  map.set(key, (map.get(key) ?? 0) + by);
}
