import type { OwnedBatchJob, BatchSystem } from '../hosts/batch-system.ts';
import { BatchPoller } from '../hosts/batch-system-poller.ts';
import type { HostLayer } from '../hosts/layer.ts';
import type { Executor } from '../jobs/executor.ts';
import type { Logger } from '../log.ts';
import { SELF } from '../spool/owner.ts';
import { type JobState, writeJobState } from '../spool/state-file.ts';
import { BatchSystemExecutor } from './batch-system.ts';

/**
 * Submissions to one controller at once: a burst of hundreds of concurrent `sbatch` calls makes
 * slurmctld time out on some of them (measured here: 106 of 200 failed).
 */
const SUBMIT_SLOTS = 4;

/**
 * Copies of job files to or from one controller's cluster at once (`staging: copy`): each is an
 * SSH connection to the login node, and sshd drops new connections beyond its MaxStartups (10).
 */
const TRANSFER_SLOTS = 4;

/** How long one `owned` answer serves the adoptions after a restart (one call, not one per job). */
const OWNED_FRESH_MS = 3_000;

/** How long asking a batch system for its settings may take before its first submission. */
const ADVICE_TIMEOUT_MS = 15_000;

/** The controllers whose plugin is a batch system (etc/controllers/, `driver: slurm`). */
export interface BatchSystemSource {
  batchSystem(controller: string): BatchSystem | undefined;
}

interface ControllerState {
  system: BatchSystem;
  poller: BatchPoller;
  owned: { at: number; jobs: Promise<OwnedBatchJob[]> } | undefined;
  slots: Slots;
  transfers: Slots;
  /** The batch system's advice, asked and logged before its first submission. */
  advised: Promise<void> | undefined;
}

/** A counting semaphore: at most `size` of the functions given run at once, the rest in order. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free -= 1;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next === undefined) this.#free += 1;
      else next();
    }
  }
}

/**
 * Hosts whose controller is a batch system: their executors, one poller per controller (shared
 * by its hosts), and the adoption of their running jobs after a dispatcher died.
 */
export class BatchSystemHosts {
  readonly #systems: BatchSystemSource;
  readonly #hosts: HostLayer;
  readonly #log: Logger;
  readonly #controllers = new Map<string, ControllerState>();
  readonly #executors = new Map<string, { controller: string; executor: BatchSystemExecutor }>();

  readonly #parallel: (queue: string) => number | undefined;
  readonly #durable: () => boolean;

  /**
   * `parallel`: a queue's `parallel` setting (the `%` limit of its tasks' arrays); `durable`:
   * whether job records are fsynced (`storage.fsync`).
   */
  constructor(
    systems: BatchSystemSource,
    hosts: HostLayer,
    parallel: (queue: string) => number | undefined,
    log: Logger,
    durable: () => boolean = () => true,
  ) {
    this.#systems = systems;
    this.#hosts = hosts;
    this.#parallel = parallel;
    this.#log = log;
    this.#durable = durable;
  }

  /** The host's controller, if it is a batch system. */
  controllerOf(host: string): string | undefined {
    const config = this.#hosts.host(host);
    if (config === undefined) return undefined;
    return this.#systems.batchSystem(config.controller) === undefined ? undefined : config.controller;
  }

  executorFor(host: string): Executor | undefined {
    const controller = this.controllerOf(host);
    if (controller === undefined) return undefined;
    const existing = this.#executors.get(host);
    if (existing?.controller === controller) return existing.executor;
    const executor = new BatchSystemExecutor({
      host,
      controller,
      system: () => this.#state(controller)?.system,
      poller: () => this.#state(controller)?.poller,
      ready: () => this.#hosts.states.ready(host, true),
      failed: (reason) => this.#hosts.lost(host, reason),
      owned: (signal) => this.#owned(controller, signal),
      submitting: async (submit) => {
        const state = this.#state(controller);
        if (state === undefined) return submit();
        await (state.advised ??= this.#advise(controller, state.system));
        return state.slots.run(submit);
      },
      transferring: (transfer) => {
        const slots = this.#state(controller)?.transfers;
        return slots === undefined ? transfer() : slots.run(transfer);
      },
      parallel: this.#parallel,
      durable: this.#durable,
      log: this.#log,
    });
    this.#executors.set(host, { controller, executor });
    return executor;
  }

  /**
   * A job in `running/` whose dispatcher died, on a batch-system host: it goes on in the cluster,
   * so this dispatcher takes it over (its owner rewritten, under the lock recovery holds) and
   * follows it by its recorded id, or finds it by its tag. False: not a batch-system job.
   */
  adoptable(dir: string, state: JobState): boolean {
    const running = state.running;
    if (state.state !== 'running' || running === undefined) return false;
    const controller = this.controllerOf(running.host);
    if (controller === undefined) return false;
    running.owner = SELF;
    running.batch = { ...running.batch, controller: running.batch?.controller ?? controller };
    writeJobState(dir, state, true);
    this.#log.warn(
      { jobId: state.id, host: running.host, batchId: running.batch.id },
      'adopted a running cluster job of a stopped dispatcher',
    );
    return true;
  }

  async close(): Promise<void> {
    for (const { executor } of this.#executors.values()) await executor.close();
    for (const { poller } of this.#controllers.values()) await poller.close();
    this.#executors.clear();
    this.#controllers.clear();
  }

  /** The controller's batch system and poller, made again when its file changed. */
  #state(controller: string): ControllerState | undefined {
    const system = this.#systems.batchSystem(controller);
    if (system === undefined) return undefined;
    const existing = this.#controllers.get(controller);
    if (existing?.system === system) return existing;
    if (existing !== undefined) {
      // The file changed while jobs run: their waits are on this poller, so it stays.
      existing.system = system;
      existing.owned = undefined;
      existing.advised = undefined;
      existing.poller.use(system);
      return existing;
    }
    const state: ControllerState = {
      system,
      poller: new BatchPoller(system, controller, this.#log),
      owned: undefined,
      slots: new Slots(SUBMIT_SLOTS),
      transfers: new Slots(TRANSFER_SLOTS),
      advised: undefined,
    };
    this.#controllers.set(controller, state);
    return state;
  }

  /** Logs the batch system's advice as warnings; a failure to ask is only noted (it advises). */
  async #advise(controller: string, system: BatchSystem): Promise<void> {
    if (system.advice === undefined) return;
    try {
      for (const advice of await system.advice(AbortSignal.timeout(ADVICE_TIMEOUT_MS)))
        this.#log.warn({ controller }, advice);
    } catch (error) {
      this.#log.debug({ controller, err: error }, 'could not ask the batch system for its settings');
    }
  }

  #owned(controller: string, signal: AbortSignal): Promise<OwnedBatchJob[]> {
    const state = this.#state(controller);
    if (state === undefined) return Promise.resolve([]);
    if (state.owned !== undefined && Date.now() - state.owned.at < OWNED_FRESH_MS) return state.owned.jobs;
    const jobs = state.system.owned(signal);
    state.owned = { at: Date.now(), jobs };
    // A failed answer is not kept: the next adoption asks again.
    jobs.catch(() => (state.owned = undefined));
    return jobs;
  }
}
