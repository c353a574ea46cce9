import { BatchdError, type BatchSystem } from '../../daemon/plugins/api.ts';
import type { CommandResult, SlurmCommand, SlurmRunner } from './command.ts';
import type { SlurmConfig } from './config.ts';
import { SlurmFiles } from './files.ts';
import { batchScript, sbatchOptions, type SlurmResources, type SlurmScript } from './script.ts';
import { baseId, expandArrayId, parseSqueue, SQUEUE_FORMAT, statusOf, type SlurmStatus } from './status.ts';

export interface SubmitJob extends SlurmScript {
  /** batchd's job id: in the Slurm job's name (`batchd-<id>`) and comment. */
  jobId: string;
  workdir?: string;
  resources?: SlurmResources;
}

export interface SubmitArray {
  /** batchd's task id: in the array's name and comment. */
  taskId: string;
  /** Element N runs `jobs[N]`. */
  jobs: readonly SlurmScript[];
  /** How many elements run at once (`--array=0-N%limit`); default: no limit. */
  parallel?: number;
  workdir?: string;
  resources?: SlurmResources;
  /** Where Slurm's own messages for the elements go (`%a` is the element); default /dev/null. */
  slurmLog?: string;
}

/** A Slurm job carrying this spool's comment, found without knowing its id. */
export interface OwnedSlurmJob {
  /** `12`, or `5_3` for an array element. */
  id: string;
  name: string;
  /** The batchd job (or task, for an array) it runs. */
  jobId?: string;
  taskId?: string;
  status: SlurmStatus;
}

/**
 * The client side of one Slurm controller: every call one Slurm command, argument arrays only.
 * `spool` goes into each job's comment, so `owned()` never reports another spool's jobs.
 */
export class SlurmClient implements BatchSystem {
  readonly #runner: SlurmRunner;
  readonly #config: SlurmConfig;
  readonly #controller: string;
  readonly #spool: string;

  /** With `staging: copy`: the job files' side on the login node. */
  readonly files?: (signal: AbortSignal) => SlurmFiles;

  constructor(runner: SlurmRunner, config: SlurmConfig, controller: string, spool: string) {
    this.#runner = runner;
    this.#config = config;
    this.#controller = controller;
    this.#spool = spool;
    if (config.staging === 'copy') this.files = (signal) => new SlurmFiles(config, controller, signal);
  }

  /** The controller file's `poll_interval`: how often the daemon asks for its jobs' states. */
  get pollIntervalMs(): number {
    return this.#config.poll_interval;
  }

  get runner(): SlurmRunner {
    return this.#runner;
  }

  /** Submits one job; returns Slurm's job id. */
  async submit(job: SubmitJob, signal: AbortSignal): Promise<string> {
    const options = sbatchOptions(
      { name: `batchd-${job.jobId}`, comment: this.#comment('job', job.jobId), workdir: job.workdir },
      this.#resources(job.resources),
    );
    options.push(`--output=${job.stdout}`, `--error=${job.stderr}`);
    const script = batchScript(this.#config.shell, `batchd job ${job.jobId}`, [job]);
    return this.#sbatch(options, script, job.jobId, signal);
  }

  /** Submits a task as one array; element N's id is `<returned id>_N`. */
  async submitArray(task: SubmitArray, signal: AbortSignal): Promise<string> {
    if (task.jobs.length === 0)
      throw new BatchdError('PARAM_INVALID', 'an array needs at least one job', {
        taskId: task.taskId,
      });
    const options = sbatchOptions(
      {
        name: `batchd-${task.taskId}`,
        comment: this.#comment('task', task.taskId),
        workdir: task.workdir,
      },
      this.#resources(task.resources),
    );
    const limit = task.parallel === undefined ? '' : `%${task.parallel}`;
    const log = task.slurmLog ?? '/dev/null';
    options.push(`--array=0-${task.jobs.length - 1}${limit}`, `--output=${log}`, `--error=${log}`);
    const script = batchScript(this.#config.shell, `batchd task ${task.taskId}`, task.jobs);
    return this.#sbatch(options, script, task.taskId, signal);
  }

  /**
   * The status of many jobs in one `squeue` call. Ids Slurm no longer knows are `gone`. An
   * array's id (`5`) stands for all its elements; ask for elements as `5_N`.
   */
  async status(ids: readonly string[], signal: AbortSignal): Promise<Map<string, SlurmStatus>> {
    const result = new Map<string, SlurmStatus>();
    if (ids.length === 0) return result;
    const query = [...new Set(ids.map(baseId))].join(',');
    const out = await this.#run(
      'squeue',
      ['-h', '-t', 'all', '-j', query, '-O', SQUEUE_FORMAT],
      signal,
      // squeue fails when none of the ids is known any more: that is an answer, not an error.
      (r) => r.code === 0 || /Invalid job id/i.test(r.stderr),
    );
    const seen = new Map<string, SlurmStatus>();
    for (const row of parseSqueue(out.code === 0 ? out.stdout : ''))
      for (const id of expandArrayId(row.id)) seen.set(id, statusOf(row));
    for (const id of ids) result.set(id, seen.get(id) ?? { phase: 'gone' });
    return result;
  }

  /**
   * Cancels jobs in one `scancel` (an array's id cancels all its elements); Slurm sends SIGTERM,
   * then SIGKILL after its `KillWait`. Unknown or ended ids are no error. (`--signal` is not used:
   * on a pending job, `scancel --signal` waits for the job to start.)
   */
  async cancel(ids: readonly string[], signal: AbortSignal): Promise<void> {
    if (ids.length === 0) return;
    await this.#run(
      'scancel',
      ['--', ...ids],
      signal,
      (r) => r.code === 0 || /Invalid job id|already completing or completed/i.test(r.stderr),
    );
  }

  /**
   * What the user should know of this cluster's settings. proctrack/linuxproc signals a cancelled
   * job's processes one by one, so its shell can run one more line after its running command was
   * killed (seen here in about 1 of 40 cancels under load); cgroup (freezes first) and pgid (one
   * signal to the process group) do not.
   */
  async advice(signal: AbortSignal): Promise<string[]> {
    const out = await this.#run('scontrol', ['show', 'config'], signal);
    const proctrack = /^ProctrackType\s*=\s*(\S+)/m.exec(out.stdout)?.[1];
    if (proctrack !== 'proctrack/linuxproc') return [];
    return [
      "Slurm's ProctrackType is proctrack/linuxproc: a cancelled or timed-out job's processes are " +
        'signalled one by one, so its script can run a further line before it ends; ' +
        'proctrack/cgroup or proctrack/pgid end it at once',
    ];
  }

  /** Every job Slurm still knows that carries this spool's comment (recovery after a crash). */
  async owned(signal: AbortSignal): Promise<OwnedSlurmJob[]> {
    // --me: on a shared cluster, only the jobs of the user batchd submits as.
    const out = await this.#run('squeue', ['--me', '-h', '-t', 'all', '-O', SQUEUE_FORMAT], signal);
    const jobs: OwnedSlurmJob[] = [];
    for (const row of parseSqueue(out.stdout)) {
      const tag = parseComment(row.comment);
      if (tag?.spool !== this.#spool || !row.name.startsWith('batchd-')) continue;
      for (const id of expandArrayId(row.id))
        jobs.push({
          id,
          name: row.name,
          ...(tag.kind === 'job' ? { jobId: tag.id } : { taskId: tag.id }),
          status: statusOf(row),
        });
    }
    return jobs;
  }

  #comment(kind: 'job' | 'task', id: string): string {
    return `batchd.spool=${this.#spool} batchd.${kind}=${id}`;
  }

  #resources(resources: SlurmResources = {}): SlurmResources {
    const defaults = this.#config.defaults;
    return {
      ...defaults,
      ...resources,
      extra: [...defaults.extra, ...(resources.extra ?? [])],
    };
  }

  async #sbatch(options: string[], script: string, id: string, signal: AbortSignal): Promise<string> {
    const out = await this.#run('sbatch', options, signal, undefined, script);
    // --parsable prints `id` or `id;cluster`.
    const slurmId = out.stdout.trim().split(';')[0] ?? '';
    if (!/^\d+$/.test(slurmId))
      throw this.#error('sbatch', `sbatch answered no job id: ${out.stdout.trim()}`, { jobId: id });
    return slurmId;
  }

  async #run(
    command: SlurmCommand,
    args: string[],
    signal: AbortSignal,
    ok: (result: CommandResult) => boolean = (r) => r.code === 0,
    input?: string,
  ): Promise<CommandResult> {
    const result = await this.#runner.run(command, args, { signal, input });
    if (!ok(result)) {
      const why = result.code === 124 ? 'timed out' : `exited ${result.code}`;
      throw this.#error(command, `${command} ${why}: ${result.stderr || result.stdout.trim()}`);
    }
    return result;
  }

  #error(command: string, message: string, context: Record<string, unknown> = {}): BatchdError {
    return new BatchdError('PROVIDER_FAILED', message, {
      controller: this.#controller,
      command,
      ...context,
    });
  }
}

export function parseComment(
  comment: string,
): { spool: string; kind: 'job' | 'task'; id: string } | undefined {
  const match = /^batchd\.spool=(\S+) batchd\.(job|task)=(\S+)$/.exec(comment);
  if (match === null) return undefined;
  const [, spool, kind, id] = match;
  if (spool === undefined || id === undefined) return undefined;
  return { spool, kind: kind === 'task' ? 'task' : 'job', id };
}
