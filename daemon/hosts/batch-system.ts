import type { ClusterSettings } from '../config/cluster.ts';

// Defined in config/ (below the spool and the job model, which use them); re-exported for the seam's users.
export { type BatchRecord, clusterSchema, type ClusterSettings } from '../config/cluster.ts';

/**
 * The core's seam for a cluster scheduler (Slurm; `plugins/slurm`): a batch system runs a job
 * itself, so batchd neither starts nor reaches its hosts. A host whose controller is a batch
 * system hands its jobs to `submit` and follows them with `status`, one call for all of them.
 */

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
  /**
   * The same job as a plain command's words, when it is one (no shell code in it): a batch
   * system may run them as they are instead of starting a shell for the body.
   */
  command?: readonly string[];
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

/**
 * The cluster's side of job files when it does not see this machine's (`staging: copy`): each
 * attempt gets a folder of its own under `workDirectory`. The first four calls are the ones file
 * staging makes on any host (executors/staging.ts); the others do many files in one call.
 */
export interface BatchFiles {
  /** Absolute, on the cluster (its login node). */
  readonly workDirectory: string;
  stat(remote: string): Promise<{ isFile(): boolean; isDirectory(): boolean } | undefined>;
  mkdirp(remote: string): Promise<void>;
  put(local: string, remote: string, mode: number): Promise<void>;
  get(remote: string, local: string): Promise<void>;
  /** Makes the folders (and their parents). */
  mkdirs(remotes: readonly string[]): Promise<void>;
  /** Copies those of `names` that exist in the folder `remote` into the local folder `into`. */
  fetch(remote: string, names: readonly string[], into: string): Promise<void>;
  /** Removes the paths and all under them; gone already is no error. */
  remove(remotes: readonly string[]): Promise<void>;
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
  /**
   * Present when the cluster does not share this machine's files: batchd copies each job's files
   * to and from it through these calls (bound to `signal`). Absent: it reads the spool's paths.
   */
  files?(signal: AbortSignal): BatchFiles;
  /**
   * Settings of the batch system that change what a user sees (each a sentence naming the
   * setting and its effect), asked once before the controller's first submission and logged.
   */
  advice?(signal: AbortSignal): Promise<string[]>;
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
