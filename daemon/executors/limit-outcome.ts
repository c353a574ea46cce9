import type { ResourceLimits } from '../config/limits.ts';
import type { JobCgroups } from './cgroup.ts';
import type { LaunchOption } from './launcher-protocol.ts';
import type { RunOutcome } from './types.ts';

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

/**
 * A failed attempt that ran into one of its limits says so first: `memory limit 64M exceeded
 * (…): killed by SIGKILL`. `cgroupHit` is what the job's cgroup counted (cgroup.ts).
 */
export function limitOutcome(
  limits: ResourceLimits | undefined,
  cgroupHit: string | undefined,
  outcome: RunOutcome,
): RunOutcome {
  if (limits === undefined || (outcome.outcome !== 'signal' && outcome.outcome !== 'exit-code'))
    return outcome;
  const cpu =
    limits.cpu_time !== undefined && (outcome.signal === 'SIGXCPU' || outcome.exitCode === SIGXCPU_EXIT)
      ? `CPU time limit ${Math.max(1, Math.ceil(limits.cpu_time / 1000))} s exceeded`
      : undefined;
  const hit = cgroupHit ?? cpu;
  return hit === undefined ? outcome : { ...outcome, error: `${hit}: ${outcome.error ?? outcome.outcome}` };
}
