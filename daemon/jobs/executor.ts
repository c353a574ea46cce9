import type { ResourceLimits } from '../config/limits.ts';
import type { JobType } from '../config/schema.ts';
import type { BatchRecord, ClusterSettings } from '../config/cluster.ts';
import type { ParamValue } from './spec.ts';
import type { CommandPlan } from './template.ts';
import type { Outcome } from './status.ts';

/** What an executor is asked to run: one attempt of one job. */
export interface RunRequest {
  jobId: string;
  queue: string;
  attempt: number;
  /** The job's folder (in `running/`): logs, result and fetched files go here. */
  dir: string;
  plan: CommandPlan;
  /** BATCHD_* variables and the job type's environment, on top of the daemon's own. */
  env: Record<string, string>;
  cwd: string;
  timeoutMs?: number | undefined;
  killGraceMs: number;
  /** Memory, CPU time, open files, processes: the job's, its queue's and its type's, merged. */
  limits?: ResourceLimits | undefined;
  /** What the job asks of a cluster scheduler: the job's, its queue's and its type's, merged. */
  cluster?: ClusterSettings | undefined;
  /**
   * What `plan` was made from: an executor that runs elsewhere (SSH) rewrites file parameters to
   * the host's paths and plans again with the host's variables.
   */
  job?: { type: JobType; params: Record<string, ParamValue>; variables: Record<string, string> } | undefined;
}

/** How the attempt ended. A failed job is data, never an exception. */
export interface RunOutcome {
  outcome: Outcome;
  exitCode?: number | null | undefined;
  signal?: string | null | undefined;
  error?: string | undefined;
  /** The resource limits the attempt ran into (limit-outcome.ts), whatever its outcome. */
  limitHit?: (keyof ResourceLimits)[] | undefined;
  /** A job run by a batch system (Slurm): its id and how the batch system saw its end. */
  batch?: BatchRecord | undefined;
  /**
   * The job goes on without this daemon (a cluster job at a shutdown): nothing is recorded, the
   * job stays in `running/`, and the next dispatcher to recover it adopts it.
   */
  detached?: boolean | undefined;
  startedAt: string;
  endedAt: string;
}

/** Why a run was stopped from outside: passed as the AbortSignal's reason. */
export type StopReason = 'cancel' | 'shutdown';

/**
 * One interface for local, SSH (and cluster) execution. `signal` aborts the run: the executor kills
 * the job's whole process tree and resolves with outcome `cancelled` (or `interrupted` on shutdown).
 */
export interface Executor {
  readonly name: string;
  run(request: RunRequest, signal: AbortSignal): Promise<RunOutcome>;
  /**
   * Freeze a running attempt of `jobId` (every process it started) and thaw it again; its timeout
   * does not run while it is frozen. False when this executor does not run that job now.
   */
  pause?(jobId: string): Promise<boolean>;
  resume?(jobId: string): Promise<boolean>;
  close(): Promise<void>;
}
