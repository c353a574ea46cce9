import type { JobType } from '../config/schema.ts';
import type { ParamValue } from '../jobs/spec.ts';
import type { CommandPlan } from '../jobs/template.ts';
import type { Outcome } from '../jobs/status.ts';

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
  close(): Promise<void>;
}
