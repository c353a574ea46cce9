import { z } from 'zod';

import { durationMs } from '../config/duration.ts';

/**
 * The core's seam for a cluster scheduler (Slurm; `plugins/slurm`): a batch system runs a job
 * itself, so batchd neither starts nor reaches its hosts. A host whose controller is a batch
 * system hands its jobs to `submit` and follows them with `status`, one call for all of them.
 */

/** A value that ends up in one argument or one line: a newline or NUL there is always a mistake. */
const oneLine = z.string().regex(/^[^\n\r\0]*$/, 'Expected one line (no newline or NUL)');

/**
 * What a job asks of the cluster: the `cluster:` block of a job type, a queue or a job file (the
 * job's fields win over the queue's, which win over the type's; `extra` adds up).
 */
export const clusterSchema = z
  .object({
    partition: oneLine.min(1).optional(),
    /** Seconds or a duration (`2h`); Slurm counts in minutes and rounds up. */
    time_limit: durationMs.optional(),
    cpus: z.int().min(1).optional(),
    memory_mb: z.int().min(1).optional(),
    /** A count, or the scheduler's `type:count`. */
    gpus: z.union([z.int().min(1), oneLine.min(1)]).optional(),
    /** More submission options, one argument each (`--qos=high`, `--constraint=avx2`). */
    extra: z.array(oneLine.min(1)).optional(),
  })
  .strict();
export type ClusterSettings = z.output<typeof clusterSchema>;

/** What reaches the batch system: `time_limit` in seconds. */
export interface BatchResources {
  partition?: string;
  time_limit?: number;
  cpus?: number;
  memory_mb?: number;
  gpus?: number | string;
  extra?: readonly string[];
}

/** One job's script, already substituted, and where its output goes. */
export interface BatchScript {
  /** The job type's template after parameter substitution; run as a file, never pasted. */
  body: string;
  env?: Readonly<Record<string, string>>;
  stdout: string;
  stderr: string;
  /** Written with the script's exit status when it ends: schedulers forget finished jobs. */
  exitFile?: string;
  /** The folder this job runs in, when an array's elements each have their own. */
  workdir?: string;
}

export interface BatchJob extends BatchScript {
  /** batchd's job id: carried in the submitted job's name and comment (recovery finds it). */
  jobId: string;
  workdir?: string;
  resources?: BatchResources;
}

export interface BatchArray {
  /** A key unique to this submission (batchd uses its first job's id): in the array's comment. */
  taskId: string;
  /** Element k runs `jobs[k]`; its id is `<returned id>_k`. */
  jobs: readonly BatchScript[];
  /** How many elements run at once; default: no limit of the array's own. */
  parallel?: number;
  workdir?: string;
  resources?: BatchResources;
}

export type BatchStatus =
  | { phase: 'pending'; state: string; reason: string }
  | { phase: 'running'; state: string; reason: string }
  | {
      phase: 'ended';
      state: string;
      reason: string;
      /** The script's exit code; null when a signal ended it. */
      exitCode: number | null;
      signal: number | null;
    }
  /** The batch system no longer knows the job (it forgot a finished one): its exit file tells. */
  | { phase: 'gone' };

/** A job carrying this spool's tag, found without knowing its id (recovery after a crash). */
export interface OwnedBatchJob {
  /** `12`, or `5_3` for an array element. */
  id: string;
  jobId?: string | undefined;
  taskId?: string | undefined;
  status: BatchStatus;
}

/** What a batch-system plugin creates for one controller file. */
export interface BatchSystem {
  /** How often batchd asks for the state of the jobs it follows (one `status` call each time). */
  readonly pollIntervalMs: number;
  /** Submits one job; returns its id. */
  submit(job: BatchJob, signal: AbortSignal): Promise<string>;
  /** Submits jobs as one array; absent: every job goes alone. */
  submitArray?(array: BatchArray, signal: AbortSignal): Promise<string>;
  /** The state of many jobs in one call; unknown ids are `gone`. */
  status(ids: readonly string[], signal: AbortSignal): Promise<Map<string, BatchStatus>>;
  /** Cancels many jobs in one call; ended or unknown ids are no error. */
  cancel(ids: readonly string[], signal: AbortSignal): Promise<void>;
  /** Every job it still knows that carries this spool's tag. */
  owned(signal: AbortSignal): Promise<OwnedBatchJob[]>;
  close?(): Promise<void>;
}

/** The job's `cluster:` over its queue's over its type's; `extra` options add up in that order. */
export function mergeCluster(
  ...layers: readonly (ClusterSettings | undefined)[]
): ClusterSettings | undefined {
  const present = layers.filter((l): l is ClusterSettings => l !== undefined);
  if (present.length === 0) return undefined;
  const merged: ClusterSettings = {};
  for (const layer of present) Object.assign(merged, layer, { extra: merged.extra });
  const extra = present.flatMap((l) => l.extra ?? []);
  if (extra.length > 0) merged.extra = extra;
  else delete merged.extra;
  return merged;
}

/** Where a job that went to a batch system is, in `state.yaml` (`running.batch`, `results[].batch`). */
export interface BatchRecord {
  /** The controller's name. */
  controller: string;
  /** The batch system's id (`12`, or an array element's `5_3`); absent while being submitted. */
  id?: string | undefined;
  /** An array submission's key and this job's element (recovery finds it by them). */
  array?: { key: string; index: number } | undefined;
  submitted_at?: string | undefined;
  /** How the batch system saw its end (Slurm: COMPLETED, FAILED, TIMEOUT…) and why. */
  state?: string | undefined;
  reason?: string | undefined;
}
