import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import type { ResourceLimits } from '../config/limits.ts';
import { BatchdError, coerceError } from '../errors.ts';
import { programOf } from '../jobs/template.ts';
import type { Logger } from '../log.ts';
import { STDERR_FILE, STDOUT_FILE } from '../spool/state-file.ts';
import { type ContainmentMode, detectCgroups } from './cgroup-detect.ts';
import { type JobCgroup, JobCgroups } from './cgroup.ts';
import { limitOutcome, rlimitOptions } from './limit-outcome.ts';
import { Launcher } from './launcher.ts';
import { ShortCommands } from './short-command.ts';
import type { ExitEvent } from '../launcher/jobs.ts';
import { StopControl, type Stopping } from './stops.ts';
import type { Executor, RunOutcome, RunRequest } from '../jobs/executor.ts';

export const SCRIPT_FILE = 'script.sh';

export interface LocalOptions {
  /** `dispatcher.containment`, read at start. */
  containment: ContainmentMode;
  /** Names this daemon's cgroups (the spool's id). */
  tag: string;
  /** Tests: contain jobs in the cgroup2 mount at this point (cgroup-detect.ts). */
  cgroupV2Mount?: string | undefined;
}

/** A job running here: what pause, resume and a stop need to reach all of it. */
interface LocalRun {
  key: number;
  control: StopControl;
  group: JobCgroup | undefined;
  started: boolean;
}

/**
 * Runs jobs on this machine through the launcher process, each in its own process group and,
 * where the machine allows, its own cgroup (which holds every process it starts, however it
 * detaches): cancel, timeout and the job's end kill all of it, pause freezes all of it.
 */
export class LocalExecutor implements Executor {
  readonly name = 'local';
  readonly #launcher: Launcher;
  /** Plugins' short commands (`sbatch`, `squeue`), started by the same launcher. */
  readonly commands: ShortCommands;
  readonly #log: Logger;
  readonly #cgroups: JobCgroups | undefined;
  readonly #running = new Map<string, LocalRun>();
  readonly #runs = new Set<Promise<RunOutcome>>();
  /** Groups a crashed daemon left, removed before the first job starts. */
  readonly #swept: Promise<void>;

  constructor(log: Logger, options: LocalOptions = { containment: 'group', tag: 'local' }) {
    this.#launcher = new Launcher(log);
    this.commands = new ShortCommands(this.#launcher);
    this.#log = log;
    const layout =
      options.containment === 'group'
        ? undefined
        : detectCgroups(options.tag, { v2Mount: options.cgroupV2Mount });
    if (layout === undefined && options.containment === 'cgroup')
      throw new BatchdError(
        'CONFIG_INVALID',
        'dispatcher.containment is "cgroup" but no writable cgroup hierarchy is here (v2 with cgroup.kill and cgroup.freeze, or v1 with the freezer); set it to "auto" or "group"',
        { field: 'dispatcher.containment' },
      );
    this.#cgroups = layout === undefined ? undefined : new JobCgroups(layout);
    log.info(
      { containment: this.#cgroups?.kind ?? 'group' },
      `local jobs are contained by ${this.containment}`,
    );
    this.#swept = (this.#cgroups?.sweepStale() ?? Promise.resolve(0)).then(
      (count) => {
        if (count > 0) log.warn({ count }, `removed ${count} job cgroups a stopped daemon left`);
      },
      (error: unknown) => log.warn({ err: coerceError(error) }, 'could not remove old job cgroups'),
    );
  }

  /** How local jobs are contained, for the log, /health and metrics. */
  get containment(): string {
    return this.#cgroups?.describe() ?? 'process group (no cgroup available)';
  }

  get containmentKind(): 'cgroup-v2' | 'cgroup-v1' | 'group' {
    return this.#cgroups?.kind ?? 'group';
  }

  run(request: RunRequest, signal: AbortSignal): Promise<RunOutcome> {
    const run = this.#run(request, signal);
    this.#runs.add(run);
    void run.finally(() => this.#runs.delete(run));
    return run;
  }

  async #run(request: RunRequest, signal: AbortSignal): Promise<RunOutcome> {
    await this.#swept;
    const startedAt = new Date().toISOString();
    const limits = request.limits;
    const cgroups = this.#cgroups;
    let group: JobCgroup | undefined;
    try {
      const { file, args } = commandLine(request);
      group = cgroups?.create(`job-${request.jobId}-${request.attempt}`, limits);
      const { event, stopping } = await this.#launch(request, signal, { file, args, group, limits });
      const hits = group === undefined ? [] : (cgroups?.limitsHit(group) ?? []);
      const endedAt = new Date().toISOString();
      const base = { exitCode: event.code, signal: event.signal, startedAt, endedAt };
      return limitOutcome(limits, hits, outcomeOf(request, event, stopping, base));
    } catch (error) {
      const endedAt = new Date().toISOString();
      return { outcome: 'spawn-failed', error: coerceError(error).message, startedAt, endedAt };
    } finally {
      if (group !== undefined) await this.#release(group);
    }
  }

  /** Freeze the job's cgroup (resolves once nothing of it runs), or SIGSTOP its process group. */
  async pause(jobId: string): Promise<boolean> {
    const run = this.#running.get(jobId);
    const cgroups = this.#cgroups;
    if (run === undefined || run.control.paused || run.control.stopping !== undefined) return false;
    if (run.group === undefined || cgroups === undefined) this.#launcher.kill(run.key, 'SIGSTOP');
    else cgroups.freeze(run.group, true);
    run.control.pause(() => this.#thaw(run));
    if (run.group !== undefined) await cgroups?.frozen(run.group);
    return true;
  }

  resume(jobId: string): Promise<boolean> {
    const run = this.#running.get(jobId);
    if (run === undefined || !run.control.paused) return Promise.resolve(false);
    this.#thaw(run);
    run.control.resume();
    return Promise.resolve(true);
  }

  async close(): Promise<void> {
    await this.#launcher.close();
    this.commands.close();
    // Runs still open remove their cgroups first; then this daemon's folders can go.
    await Promise.allSettled(this.#runs);
    this.#cgroups?.close();
  }

  #launch(
    request: RunRequest,
    signal: AbortSignal,
    job: { file: string; args: string[]; group: JobCgroup | undefined; limits: ResourceLimits | undefined },
  ): Promise<{ event: ExitEvent; stopping: Stopping | undefined }> {
    return new Promise((resolve) => {
      const run: LocalRun = {
        key: 0,
        group: job.group,
        started: false,
        control: new StopControl(request, (sig) => this.#signal(run, sig)),
      };
      run.key = this.#launcher.spawn(
        {
          file: job.file,
          args: job.args,
          cwd: request.cwd,
          env: request.env,
          stdout: path.join(request.dir, STDOUT_FILE),
          stderr: path.join(request.dir, STDERR_FILE),
          // A job that prints nothing leaves no empty log files behind (two file creations less).
          options: ['lazy', ...rlimitOptions(job.limits, this.#cgroups)],
          join: job.group?.join,
        },
        {
          onStarted: () => {
            run.started = true;
            run.control.started();
          },
          onExit: (event) => {
            run.control.ended();
            this.#running.delete(request.jobId);
            resolve({ event, stopping: run.control.stopping });
          },
        },
      );
      this.#running.set(request.jobId, run);
      run.control.watch(signal);
    });
  }

  /** TERM or KILL: to every process in the job's cgroup once it is there, else to its group. */
  #signal(run: LocalRun, signal: 'SIGTERM' | 'SIGKILL'): void {
    const cgroups = this.#cgroups;
    if (run.group === undefined || cgroups === undefined || !run.started) {
      this.#launcher.kill(run.key, signal);
      return;
    }
    if (signal === 'SIGTERM') cgroups.signal(run.group, signal);
    else void cgroups.killAll(run.group).catch(() => undefined);
  }

  #thaw(run: LocalRun): void {
    if (run.group !== undefined) this.#cgroups?.freeze(run.group, false);
    else this.#launcher.kill(run.key, 'SIGCONT');
  }

  /** Whatever the job left running goes; then its cgroups. */
  async #release(group: JobCgroup): Promise<void> {
    try {
      await this.#cgroups?.release(group);
    } catch (error) {
      this.#log.warn({ err: coerceError(error), cgroup: group.name }, 'could not remove a job cgroup');
    }
  }
}

/** How the attempt ended, from the launcher's exit event and whether it was being stopped. */
function outcomeOf(
  request: RunRequest,
  event: ExitEvent,
  stopping: Stopping | undefined,
  base: Pick<RunOutcome, 'exitCode' | 'signal' | 'startedAt' | 'endedAt'>,
): RunOutcome {
  if (stopping === 'timeout') {
    const limit = `${(request.timeoutMs ?? 0) / 1000} s`;
    return { ...base, outcome: 'timeout', error: `timed out after ${limit}` };
  }
  if (stopping === 'cancel') return { ...base, outcome: 'cancelled', error: 'cancelled' };
  if (stopping === 'shutdown') return { ...base, outcome: 'interrupted', error: 'the daemon shut down' };
  if (event.error !== undefined && event.errno !== 'ENOENT')
    return { ...base, outcome: 'spawn-failed', error: event.error };
  if (event.code === 0) return { ...base, outcome: 'success' };
  if (event.signal !== null) return { ...base, outcome: 'signal', error: `killed by ${event.signal}` };
  return { ...base, outcome: 'exit-code', error: event.error ?? `exit code ${event.code}` };
}

/** The job's program; a script plan is first written into the job folder. */
function commandLine(request: RunRequest): { file: string; args: string[] } {
  const plan = request.plan;
  if (plan.kind !== 'script') return programOf(plan, undefined);
  const script = path.join(request.dir, SCRIPT_FILE);
  writeFileSync(script, plan.script);
  if (plan.interpreter !== undefined) chmodSync(script, 0o755);
  return programOf(plan, script);
}
