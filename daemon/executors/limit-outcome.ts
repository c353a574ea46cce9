import type { ResourceLimits } from '../config/limits.ts';
import type { JobCgroups } from './cgroup.ts';
import type { LaunchOption } from '../launcher/protocol.ts';
import type { RunOutcome } from '../jobs/executor.ts';

/** SIGXCPU's number on Linux: a shell reports a child killed by it as exit code 128 + 24. */
const SIGXCPU_EXIT = 128 + 24;

/**
 * The launcher's rlimit options for a job's limits: CPU time and open files always (no cgroup
 * limits them per process), memory and processes only where no cgroup holds them.
 */
export function rlimitOptions(
  limits: ResourceLimits | undefined,
  cgroups: Pick<JobCgroups, 'enforces'> | undefined,
): LaunchOption[] {
  if (limits === undefined) return [];
  const options: LaunchOption[] = [];
  if (limits.cpu_time !== undefined) options.push(`cpu=${Math.max(1, Math.ceil(limits.cpu_time / 1000))}`);
  if (limits.open_files !== undefined) options.push(`nofile=${limits.open_files}`);
  if (limits.processes !== undefined && cgroups?.enforces('processes') !== true)
    options.push(`nproc=${limits.processes}`);
  if (limits.memory !== undefined && cgroups?.enforces('memory') !== true)
    options.push(`as=${limits.memory}`);
  return options;
}

/** A limit an attempt ran into; `fatal` if it ended the job (the kernel killed it for it). */
export interface LimitHit {
  limit: keyof ResourceLimits;
  fatal: boolean;
  /** For the attempt's error: `memory limit 64M exceeded (…)`. */
  text: string;
}

/**
 * The attempt with the limits it ran into: every one is listed in `limitHit` whatever the outcome
 * (a job that exits 0 may have been refused a fork, or had its memory reclaimed at the limit), and
 * a failed attempt's error starts with the one that ended it: `memory limit 64M exceeded (…):
 * killed by SIGKILL`. `cgroupHits` are what the job's cgroup counted (cgroup.ts); CPU time shows
 * as SIGXCPU. Open files and setrlimit's address space leave no trace outside the job.
 */
export function limitOutcome(
  limits: ResourceLimits | undefined,
  cgroupHits: readonly LimitHit[],
  outcome: RunOutcome,
): RunOutcome {
  if (limits === undefined) return outcome;
  const hits = [...cgroupHits];
  if (limits.cpu_time !== undefined && (outcome.signal === 'SIGXCPU' || outcome.exitCode === SIGXCPU_EXIT))
    hits.unshift({
      limit: 'cpu_time',
      fatal: true,
      text: `CPU time limit ${Math.max(1, Math.ceil(limits.cpu_time / 1000))} s exceeded`,
    });
  // The one that ended the job, if one did, is named in its error.
  const first = hits.find((h) => h.fatal) ?? hits[0];
  if (first === undefined) return outcome;
  const limitHit = [...new Set(hits.map((h) => h.limit))];
  if (outcome.outcome !== 'signal' && outcome.outcome !== 'exit-code') return { ...outcome, limitHit };
  return { ...outcome, limitHit, error: `${first.text}: ${outcome.error ?? outcome.outcome}` };
}
