import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { HOUSEKEEPING } from './config/defaults.ts';
import { parseText } from './config/parse.ts';
import { type DaemonConfig, daemonConfigSchema } from './config/schema.ts';
import { ConfigStore } from './config/store.ts';
import { Dispatcher } from './dispatch/dispatcher.ts';
import { BatchdError, coerceError, errnoCode } from './errors.ts';
import { EventBus } from './events.ts';
import { LocalExecutor } from './executors/local.ts';
import { ShellExecutor } from './executors/shell.ts';
import { SshExecutor } from './executors/ssh.ts';
import type { Executor } from './jobs/executor.ts';
import { HostClaims, spoolId } from './hosts/claims.ts';
import { BatchSystemHosts } from './executors/batch-system-hosts.ts';
import { HOST_ERRORS_FILE } from './hosts/error-history.ts';
import { HostLayer } from './hosts/layer.ts';
import { Reaper } from './hosts/reaper.ts';
import { isJobId } from './jobs/id.ts';
import type { JobSpec } from './jobs/spec.ts';
import { validateJobData, validateJobText } from './jobs/validate.ts';
import { createLogger, type Logger } from './log.ts';
import { TAG } from './plugins/api.ts';
import { Controllers } from './plugins/controllers.ts';
import { HookRunner } from './plugins/hooks.ts';
import { PluginRegistry } from './plugins/registry.ts';
import type { AcceptedJob, Origin } from './spool/accept.ts';
import { Acceptance } from './spool/acceptance.ts';
import { locateJob } from './spool/find.ts';
import { AcceptJournal } from './spool/journal.ts';
import { Intake } from './spool/intake.ts';
import { DispatcherRoll } from './spool/dispatchers.ts';
import { assertQueueName, SpoolLayout } from './spool/layout.ts';
import { JobLocks, type Release } from './spool/lock.ts';
import { applyStorageMode } from './spool/modes.ts';
import { QueueRegistry } from './spool/queues.ts';
import { type ClaimRecovery, recoverRunning, recoverSpool, recoverStagingNow } from './spool/recovery.ts';
import { RequestFolder } from './spool/requests.ts';
import { readConfigText } from './config/safe-read.ts';
import { sweepFinished } from './spool/retention.ts';
import { readJobState, STATE_FILE } from './spool/state-file.ts';
import { Transitions } from './spool/transition.ts';
import { TaskMaterialiser } from './tasks/materialise.ts';
import { SpoolWatcher } from './spool/watch.ts';
import type {
  DaemonPort,
  FrontEnd,
  FrontEndStarter,
  JobControl,
  QueueAdmin,
  ScheduleFiles,
  SubmitInput,
} from './service/port.ts';
import { COMPACT_AFTER_RECORDS, compactHeap } from './service/heap.ts';
import { SpoolQueueAdmin } from './service/queue-admin.ts';
import { SpoolReads } from './service/reads.ts';
import { ConfigScheduleFiles } from './service/schedule-files.ts';

export interface DaemonOptions {
  /** The config folder (already located); undefined: embedded defaults. */
  configDir?: string | undefined;
  /** Overrides batchd.yaml's `spool`. */
  spool?: string | undefined;
  /** Create a missing spool as a copy of this folder (overrides batchd.yaml's `spool_seed`). */
  spoolFrom?: string | undefined;
  logger?: Logger | undefined;
}

export type { SubmitInput } from './service/port.ts';

/**
 * The wiring: configuration, spool, intake, dispatcher and executors, and their timers. It
 * implements the port front ends use (service/port.ts) and knows no front end: start.ts starts
 * the HTTP API beside it.
 */
export class Daemon implements DaemonPort {
  readonly config: ConfigStore;
  readonly events: EventBus;
  readonly log: Logger;
  readonly layout: SpoolLayout;
  readonly queues: QueueRegistry;
  readonly dispatcher: Dispatcher;
  /** Remote hosts (etc/hosts/): SSH connections, limits, back-off. */
  readonly hosts: HostLayer;
  /** Host-provider plugins by controller (etc/controllers/). */
  readonly controllers: Controllers;
  readonly plugins: PluginRegistry;
  /** Lifecycle hooks (`hooks:` in batchd.yaml and queue.yaml) on the event stream. */
  readonly hooks: HookRunner;
  readonly reaper: Reaper;
  readonly #claims: HostClaims;
  readonly #reaping = new AbortController();
  #reapTimer: NodeJS.Timeout | undefined;
  readonly transitions: Transitions;
  /** Claim locks, shared by the dispatcher, recovery and the API. */
  readonly locks: JobLocks;
  /** The dispatchers sharing this spool (a head count for people). */
  readonly dispatchers: DispatcherRoll;
  /** The read views of the spool (for front ends). */
  readonly reads: SpoolReads;
  /** Queue create, update, delete and purge (for front ends). */
  readonly queueAdmin: QueueAdmin;
  /** Schedules kept in the config folder (for front ends). */
  readonly schedules: ScheduleFiles;
  readonly #intake: Intake;
  /** The one way jobs enter the spool: drops and API submissions. */
  readonly #acceptance: Acceptance;
  /** Makes the job folders of committed tasks as the dispatcher needs them. */
  readonly #tasks: TaskMaterialiser;
  readonly #requests: RequestFolder;
  readonly #watcher: SpoolWatcher;
  readonly #local: LocalExecutor;
  /** Hosts whose controller is a batch system (Slurm): their executors and pollers. */
  readonly #batchHosts: BatchSystemHosts;
  readonly #executors = new Map<string, Executor>();
  #rescanTimer: NodeJS.Timeout | undefined;
  #lastRetention = 0;
  /** Queued jobs whose state.yaml did not read, with the error reported (#reportInvalid). */
  readonly #invalid = new Map<string, string>();
  #rescanning = false;
  #stopping: Promise<void> | undefined;

  private constructor(options: DaemonOptions) {
    const initial = readDaemonConfig(options.configDir);
    this.log = options.logger ?? createLogger(initial.logging);
    this.events = new EventBus((error, event) =>
      this.log.error({ err: coerceError(error), event }, 'event listener failed'),
    );
    this.config = new ConfigStore(options.configDir, this.events, this.log);
    const spool =
      options.spool !== undefined
        ? path.resolve(options.spool)
        : this.config.resolve(this.config.daemon.spool);
    const seed =
      options.spoolFrom ??
      (this.config.daemon.spool_seed === undefined
        ? undefined
        : this.config.resolve(this.config.daemon.spool_seed));
    if (!existsSync(spool) && seed !== undefined) {
      if (existsSync(seed)) {
        cpSync(seed, spool, { recursive: true });
        this.log.info({ spool, seed }, 'created the spool from its seed');
      } else {
        this.log.warn(
          { spool, seed },
          `spool_seed ${seed} does not exist: starting with an empty spool at ${spool}`,
        );
      }
    }
    mkdirSync(spool, { recursive: true });
    this.layout = new SpoolLayout(spool);
    const durable = (): boolean => this.config.daemon.storage.fsync;
    this.locks = new JobLocks(this.layout, this.config.daemon.dispatcher.lock_stale, this.log, (id) =>
      this.dispatcher.lockLost(id),
    );
    this.transitions = new Transitions(this.layout, this.events, this.log, durable, this.locks.spares);
    this.queues = new QueueRegistry(this.layout, this.events, this.log);
    this.#local = new LocalExecutor(this.log, {
      containment: this.config.daemon.dispatcher.containment,
      tag: spoolId(spool),
    });
    this.plugins = new PluginRegistry(options.configDir);
    this.hooks = new HookRunner({
      config: this.config,
      queues: this.queues,
      layout: this.layout,
      events: this.events,
      log: this.log,
      registry: this.plugins,
    });
    this.controllers = new Controllers(
      this.config,
      this.plugins,
      this.events,
      this.log,
      { [TAG.spool]: spoolId(spool) },
      this.#local.commands.run,
    );
    this.#claims = new HostClaims(spool, this.config.daemon.dispatcher.lock_stale, this.log);
    this.dispatchers = new DispatcherRoll(spool, this.config.daemon.dispatcher.lock_stale, this.log);
    this.hosts = new HostLayer({
      config: this.config,
      events: this.events,
      log: this.log,
      claims: this.#claims,
      pump: () => this.dispatcher.pump(),
      errorsFile: path.join(this.layout.root, HOST_ERRORS_FILE),
      executor: (layer, host, kind) =>
        kind === 'shell' ? new ShellExecutor(layer, host, this.log) : new SshExecutor(layer, host, this.log),
    });
    this.hosts.setProviders(this.controllers);
    this.#batchHosts = new BatchSystemHosts(
      this.controllers,
      this.hosts,
      (queue) => this.queues.settings(queue).parallel,
      this.log,
      durable,
    );
    this.reaper = new Reaper({
      hosts: this.hosts,
      claims: this.#claims,
      // Only controllers some host uses: an example file left in etc/ calls no cloud.
      providers: () => {
        const used = new Set(this.config.list<{ controller: string }>('hosts').map((h) => h.controller));
        return this.controllers.providers().filter((p) => used.has(p.controller));
      },
      log: this.log,
    });
    this.dispatcher = new Dispatcher({
      config: this.config,
      queues: this.queues,
      layout: this.layout,
      transitions: this.transitions,
      locks: this.locks,
      events: this.events,
      log: this.log,
      executorFor: (host) => this.#executorFor(host),
      hostAvailable: (host, running) => this.hosts.admits(host, running),
      makeJob: (id) => this.#tasks.makeNow(id),
      indexed: (state, spec) => this.reads.noteJob(state, spec),
    });
    this.schedules = new ConfigScheduleFiles(this.config);
    this.reads = new SpoolReads(this.layout, this.queues, this.config, this.events, () =>
      this.dispatchers.count(),
    );
    this.queueAdmin = new SpoolQueueAdmin({
      layout: this.layout,
      queues: this.queues,
      config: this.config,
      transitions: this.transitions,
      log: this.log,
      counts: this.reads.counts,
      locate: (id) => this.locate(id),
      settleAcceptances: () => this.settleAcceptances(),
      cancel: (id, reason) => this.dispatcher.cancel(id, reason),
      added: (queue) => this.#addQueue(queue),
      removed: (queue) => this.forgetQueue(queue),
    });
    this.#acceptance = new Acceptance({
      layout: this.layout,
      transitions: this.transitions,
      log: this.log,
      claimOnArrival: (spec) => this.dispatcher.claimOnArrival(spec),
      handOn: (queue, jobs, claimed) => this.#accepted(queue, jobs, claimed),
    });
    this.#tasks = new TaskMaterialiser({
      layout: this.layout,
      events: this.events,
      log: this.log,
      durable,
      holds: (id) => this.dispatcher.knows(id),
      handOn: (jobs) => this.#handOn(jobs),
    });
    this.#intake = new Intake({
      layout: this.layout,
      log: this.log,
      validate: (queue, text, file, slug) =>
        validateJobText(text, this.#validateContext(queue, file, 'drop', slug)),
      acceptance: this.#acceptance,
      onRejected: (queue, file, error) =>
        this.events.emit('job:rejected', { queue, file, message: error.message }),
      limits: () => ({
        maxBytes: this.config.daemon.storage.max_job_file_size,
        stableMs: this.config.daemon.dispatcher.stable_time,
        durable: this.config.daemon.storage.fsync,
      }),
    });
    const settleMs = (): number => this.config.daemon.dispatcher.stable_time;
    this.#requests = new RequestFolder(this.layout, this.dispatcher, this.log, settleMs);
    this.#watcher = new SpoolWatcher(
      this.layout,
      {
        queueAppeared: (queue) => this.#addQueue(queue),
        queueFileChanged: (queue) => {
          this.queues.reload(queue);
          this.dispatcher.pump();
        },
        dropSeen: (queue, name, how) => this.#intake.handle(queue, name, how),
        requestSeen: (queue, name) => void this.#requests.handle(queue, name),
      },
      this.log,
    );
    this.events.on('config:reloaded', () => this.dispatcher.pump());
  }

  /** `frontEnd`: what serves the daemon to clients once it is ready (start.ts: the HTTP API). */
  static async start(options: DaemonOptions, frontEnd?: FrontEndStarter): Promise<Daemon> {
    const daemon = new Daemon(options);
    await daemon.#boot(frontEnd);
    return daemon;
  }

  /** Register an executor for hosts of a kind (the SSH layer, providers). */
  setExecutorResolver(resolver: (host: string) => Executor | undefined): void {
    this.#resolver = resolver;
  }

  #resolver: ((host: string) => Executor | undefined) | undefined;

  #api: FrontEnd | undefined;

  /** The HTTP API, when it listens (started by start.ts, manager.enabled and its port was free). */
  get api(): FrontEnd | undefined {
    return this.#api;
  }

  /** The control verbs on jobs and queues (for front ends). */
  get control(): JobControl {
    return this.dispatcher;
  }

  /** Forget a queue whose folder was removed (the API's DELETE /queue). */
  forgetQueue(queue: string): void {
    this.#tasks.forgetQueue(queue);
    for (const id of this.dispatcher.knownIn(queue)) this.dispatcher.forget(id);
    this.queues.remove(queue);
  }

  /**
   * Accept a job submitted by other means than a drop (the API). It goes through the same
   * validation and acceptance as a dropped file and leaves the same folder behind.
   */
  submit(queue: string, input: SubmitInput, user?: string): AcceptedJob[] {
    const { specs, origin } = this.#submission(queue, input, user);
    const durable = this.config.daemon.storage.fsync;
    return this.#acceptance.accept(queue, specs, { origin, durable, claim: true, wait: false });
  }

  /**
   * submit(), for callers that can wait (the API): with storage.fsync, concurrent submissions share
   * their fsyncs (group commit) and it resolves once the jobs are on disk; a large task is staged in
   * turns of the event loop, so the daemon keeps serving meanwhile.
   */
  async submitAsync(
    queue: string,
    input: SubmitInput,
    user?: string,
    /** The queues the submitter may view: `after:` naming a job elsewhere reads as unknown. */
    sees?: (queue: string) => boolean,
  ): Promise<AcceptedJob[]> {
    const { specs, origin } = this.#submission(queue, input, user, sees);
    const durable = this.config.daemon.storage.fsync;
    return this.#acceptance.accept(queue, specs, { origin, durable, claim: true, wait: true });
  }

  #submission(
    queue: string,
    input: SubmitInput,
    user: string | undefined,
    sees?: (queue: string) => boolean,
  ): { specs: JobSpec[]; origin: Origin } {
    assertQueueName(queue);
    if (!this.queues.has(queue))
      throw new BatchdError('UNKNOWN_QUEUE', `Unknown queue "${queue}"`, { queue });
    const ctx = this.#validateContext(queue, 'request', 'api', undefined, user, sees);
    let specs: JobSpec[];
    let text: string;
    let ext: string;
    if ('text' in input) {
      specs = validateJobText(input.text, ctx);
      text = input.text;
      ext = input.ext;
    } else {
      text = JSON.stringify(input.data, null, 1);
      specs = validateJobData(input.data, text, ctx);
      ext = 'json';
    }
    return { specs, origin: { kind: 'bytes', text, ext } };
  }

  /** Find a job's folder by id. */
  locate(id: string): ReturnType<typeof locateJob> {
    if (!isJobId(id)) return undefined;
    const where = locateJob(this.layout, this.queues.names(), id);
    // A task's job whose folder is not made yet: made now (with those before it), then shown.
    if (where !== undefined || !this.#tasks.makeNow(id)) return where;
    return locateJob(this.layout, this.queues.names(), id);
  }

  /** How local jobs are contained: their own cgroups (v1 or v2), or only their process group. */
  get containment(): { kind: LocalExecutor['containmentKind']; description: string } {
    return { kind: this.#local.containmentKind, description: this.#local.containment };
  }

  /** A stop has begun: the API answers reads but refuses writes (STOPPING) until it closes. */
  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /** First call: orderly (running jobs get the grace time); a second call stops them at once. */
  async stop(): Promise<void> {
    if (this.#stopping !== undefined) {
      this.log.warn('second stop: stopping running jobs now');
      await this.dispatcher.stopAll();
      return this.#stopping;
    }
    this.#stopping = this.#shutdown();
    return this.#stopping;
  }

  async #shutdown(): Promise<void> {
    // The API stays up while running jobs finish: it answers reads (and says it is stopping), and
    // refuses writes from now on (route.ts), so `batch ls` still works during the grace time.
    clearTimeout(this.#rescanTimer);
    this.#intake.close();
    await this.#watcher.close();
    await this.#acceptance.close(); // acceptances under way finish: their drops or callers are answered
    this.#tasks.close(); // the rest of a task's folders are made by the next start
    await this.config.close();
    await this.dispatcher.shutdown(this.config.daemon.dispatcher.grace_time);
    await this.#api?.close(); // after the dispatcher: its last moves were readable to the end
    this.dispatchers.close();
    this.reads.close();
    await this.#local.close();
    clearTimeout(this.#reapTimer);
    this.#reaping.abort('shutdown');
    await this.#batchHosts.close();
    await this.hosts.close();
    await this.hooks.stop(); // last: the final moves and host changes are delivered too
    await this.#claims.close();
    await this.controllers.close();
    for (const executor of this.#executors.values()) await executor.close();
    this.locks.close();
    this.log.info('batchd stopped');
  }

  async #boot(frontEnd: FrontEndStarter | undefined): Promise<void> {
    applyStorageMode(this.config.daemon.storage.mode);
    // May refuse (a forbidden listen address, unusable TLS files) before anything starts.
    const serve = await frontEnd?.(this);
    await this.controllers.start();
    this.queues.scan();
    if (!this.queues.has(this.config.daemon.default_queue))
      this.queues.ensure(this.config.daemon.default_queue);
    await this.hooks.start(); // before recovery: its moves are events too
    await recoverSpool(this.#recovery(), this.queues.names()); // every repair of what a crash left
    await this.#openJournal(); // after the replay of the segments of writers gone
    let indexed = 0;
    for (const queue of this.queues.names()) indexed += this.#indexQueued(queue);
    this.config.watch();
    this.#watcher.start();
    for (const queue of this.queues.names()) {
      this.#watcher.watchQueue(queue);
      this.#scanIncoming(queue);
      await this.#requests.scan(queue);
    }
    this.#scheduleRescan();
    this.#scheduleReap(0);
    this.dispatchers.start();
    this.reads.startWarming(this.config.daemon.dispatcher.poll_timeout);
    this.log.info(
      {
        spool: this.layout.root,
        config: this.config.dir ?? '(embedded defaults)',
        queues: this.queues.names().length,
        queued: indexed,
      },
      `batchd ready; spool: ${this.layout.root}`,
    );
    this.dispatcher.pump();
    if (indexed >= COMPACT_AFTER_RECORDS) compactHeap();
    if (serve !== undefined) this.#api = await serve();
  }

  /** Chosen at start: with storage.fsync and storage.journal, and where `sync -f` works. */
  async #openJournal(): Promise<void> {
    const { storage } = this.config.daemon;
    if (!storage.fsync || !storage.journal) return; // no `sync -f` probe (a syncfs) at every start
    if (!(await AcceptJournal.usable(this.layout.root))) {
      this.log.warn(
        { spool: this.layout.root },
        'no `sync -f` here: durable API submissions fsync each file and folder instead of journaling',
      );
      return;
    }
    const journal = new AcceptJournal(
      this.layout.root,
      this.layout.journalDir(),
      this.log,
      () => this.config.daemon.storage.journal_checkpoint,
    );
    this.#acceptance.useJournal(journal);
  }

  /** Retention: finished jobs past `storage.done_jobs`, once the journal holds none of them. */
  async #sweepFinished(): Promise<void> {
    try {
      await this.settleAcceptances();
    } catch (error) {
      this.log.warn(
        { err: coerceError(error) },
        'retention waits: the acceptance journal cannot be checkpointed',
      );
      return;
    }
    for (const queue of this.queues.names())
      sweepFinished(this.layout, queue, this.config.daemon.storage.done_jobs);
  }

  /**
   * Put every journaled acceptance on disk. Whatever removes job folders waits for it first, or
   * recovery after a power loss could write a removed job again.
   */
  async settleAcceptances(): Promise<void> {
    await this.#acceptance.settle();
  }

  #addQueue(queue: string): void {
    if (this.queues.has(queue)) return;
    // Not a real folder in the spool (refused, with a warning), or deleted since it was seen.
    if (!this.queues.ensure(queue, false)) return;
    this.#watcher.watchQueue(queue);
    this.#scanIncoming(queue);
    this.log.info({ queue }, 'new queue');
  }

  /**
   * Jobs accepted (and announced) by the acceptance, for the dispatcher: a job claimed as it was
   * accepted starts now; a task's jobs are handed on as their folders are made (tasks/materialise.ts).
   */
  #accepted(queue: string, jobs: AcceptedJob[], claimed: Release | undefined): void {
    const [first] = jobs;
    const task = first?.state.task;
    if (task !== undefined) {
      this.log.info({ queue, task, jobs: jobs.length }, 'task accepted');
      this.#tasks.start(queue, task, jobs);
      return;
    }
    this.log.debug({ queue, jobId: first?.spec.id }, 'job accepted');
    if (claimed !== undefined && first !== undefined)
      this.dispatcher.startClaimed(first.state, first.spec, claimed);
    else this.#handOn(jobs);
  }

  #handOn(jobs: AcceptedJob[]): void {
    for (const job of jobs) this.dispatcher.add(job.state, job.spec);
  }

  #validateContext(
    queue: string,
    file: string,
    via: 'drop' | 'api',
    slug?: string,
    user?: string,
    sees?: (queue: string) => boolean,
  ): Parameters<typeof validateJobText>[1] {
    return {
      queue,
      queueSettings: this.queues.settings(queue),
      config: this.config,
      file,
      via,
      slugSource: slug === '' ? undefined : slug,
      user,
      hostExists: (name) => this.config.get('hosts', name) !== undefined,
      jobExists: (id) => {
        if (sees === undefined) return this.dispatcher.knows(id) || this.locate(id) !== undefined;
        const where = this.locate(id);
        return where !== undefined && sees(where.queue);
      },
      maxTaskJobs: this.config.daemon.storage.max_task_jobs,
    };
  }

  #executorFor(host: string | undefined): Executor {
    if (host === undefined || host === 'localhost') return this.#local;
    const executor =
      this.#batchHosts.executorFor(host) ?? this.#resolver?.(host) ?? this.hosts.executorFor(host);
    if (executor === undefined) throw new BatchdError('UNKNOWN_HOST', `Unknown host "${host}"`, { host });
    return executor;
  }

  #scanIncoming(queue: string): void {
    let names: Buffer[];
    try {
      // As bytes: a name that is not valid UTF-8 would otherwise be read as a name that does not exist.
      names = readdirSync(this.layout.folder(queue, 'incoming'), { encoding: 'buffer' });
    } catch {
      return;
    }
    for (const raw of names) {
      const name = raw.toString('utf8');
      if (name.includes('\ufffd') && !Buffer.from(name).equals(raw))
        this.#intake.handleUnreadableName(queue, raw);
      else this.#intake.handle(queue, name);
    }
  }

  /** Index `queued/` jobs this dispatcher does not know (start-up, other dispatchers, hand moves). */
  #indexQueued(queue: string): number {
    let ids: string[];
    try {
      // Ids sort by submission time, so sorted input makes each insertion into the ready list an append.
      ids = readdirSync(this.layout.stateDir(queue, 'queued')).sort();
    } catch {
      return 0;
    }
    const known = this.dispatcher.knownIn(queue);
    let added = 0;
    for (const id of ids) {
      known.delete(id);
      if (!isJobId(id) || this.dispatcher.knows(id)) continue;
      try {
        const state = readJobState(this.layout.jobDir(queue, 'queued', id));
        state.queue = queue; // the folder is the truth
        this.dispatcher.add(state);
        added += 1;
        this.#invalid.delete(id);
      } catch (error) {
        this.#reportInvalid(queue, id, coerceError(error));
      }
    }
    // What this dispatcher indexed but is gone from queued/ was taken by another way.
    for (const id of known) this.dispatcher.forget(id);
    return added;
  }

  /**
   * A queued job whose state.yaml does not read (spool/state-record.ts) stays in queued/ as it is,
   * not run and not rewritten: nothing of it is lost, and once the file is put right the next
   * rescan indexes it. Each problem is logged and emitted once, not at every rescan.
   */
  #reportInvalid(queue: string, id: string, error: Error): void {
    // Gone between the listing and the read: claimed or moved, not broken.
    if (errnoCode(error) === 'ENOENT' || this.#invalid.get(id) === error.message) return;
    this.#invalid.set(id, error.message);
    const file = `${this.layout.jobDir(queue, 'queued', id)}/${STATE_FILE}`;
    this.log.error(
      {
        queue,
        jobId: id,
        file,
        field: error instanceof BatchdError ? error.problems[0]?.field : undefined,
        err: error,
      },
      'unreadable state.yaml in queued/; job not run until the file is fixed',
    );
    this.events.emit('job:invalid', { jobId: id, queue, file, message: error.message });
  }

  async #recover(queue: string): Promise<void> {
    const recovery = this.#recovery();
    // Another machine that died mid-acceptance left it in staging (this one's own, at its start).
    if (recoverStagingNow(recovery, queue).committed > 0) this.#indexQueued(queue);
    await recoverRunning(recovery, queue);
  }

  /** What recovery (spool/recovery.ts) repairs with. */
  #recovery(): ClaimRecovery {
    return {
      layout: this.layout,
      locks: this.locks,
      transitions: this.transitions,
      config: this.config,
      log: this.log,
      isRunningHere: (id) => this.dispatcher.isRunningHere(id),
      adoptable: (dir, state) => this.#batchHosts.adoptable(dir, state),
      adopt: (state, release) => {
        this.dispatcher.adopt(state, release);
        if (state.cancel_requested !== undefined)
          void this.dispatcher.cancel(state.id).catch(() => undefined);
      },
      requeued: (state) => this.dispatcher.add(state),
      resumeTask: (queue, name) => this.#tasks.resume(queue, name),
    };
  }

  #scheduleRescan(): void {
    this.#rescanTimer = setTimeout(() => {
      this.#rescan().then(
        () => this.#scheduleRescan(),
        (error: unknown) => {
          this.log.error({ err: coerceError(error) }, 'rescan failed');
          this.#scheduleRescan();
        },
      );
    }, this.config.daemon.dispatcher.poll_timeout);
    this.#rescanTimer.unref();
  }

  /** Hosts started by batchd that nobody needs any more: looked for at start, then every reap_interval. */
  #scheduleReap(delay: number): void {
    this.#reapTimer = setTimeout(() => {
      this.reaper.reap(this.#reaping.signal).then(
        () => this.#scheduleReap(this.config.daemon.dispatcher.reap_interval),
        (error: unknown) => {
          this.log.error({ err: coerceError(error) }, 'reaping failed');
          this.#scheduleReap(this.config.daemon.dispatcher.reap_interval);
        },
      );
    }, delay);
    this.#reapTimer.unref();
  }

  /** The backstop for everything the watchers missed. */
  async #rescan(): Promise<void> {
    if (this.#rescanning || this.#stopping !== undefined) return;
    this.#rescanning = true;
    try {
      this.config.refresh(this.config.daemon.dispatcher.stable_time);
      for (const queue of this.queues.scan()) this.#addQueue(queue);
      for (const queue of this.queues.names()) {
        this.queues.refresh(queue, this.config.daemon.dispatcher.stable_time);
        this.#watcher.watchQueue(queue);
        this.#scanIncoming(queue);
        await this.#requests.scan(queue);
        this.#indexQueued(queue);
        await this.#recover(queue);
      }
      this.dispatcher.recheckDependencies();
      if (Date.now() - this.#lastRetention > HOUSEKEEPING.retentionEveryMs) {
        this.#lastRetention = Date.now();
        await this.#sweepFinished();
      }
      this.dispatcher.pump();
    } finally {
      this.#rescanning = false;
    }
  }
}

function readDaemonConfig(dir: string | undefined): DaemonConfig {
  if (dir === undefined) return daemonConfigSchema.parse({});
  const file = path.join(dir, 'batchd.yaml');
  if (!existsSync(file)) return daemonConfigSchema.parse({});
  return parseText(readConfigText(file), daemonConfigSchema, file);
}
