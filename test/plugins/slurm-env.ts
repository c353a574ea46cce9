import { makeDispatchEnv } from '../helpers/dispatch.ts';
import { jobsIn, type TestEnv, waitFor } from '../helpers/env.ts';
import type { SlurmCluster } from '../helpers/slurm.ts';
import type { Sshd } from '../ssh/sshd.ts';

/** The daemon's poll of Slurm in these tests (seconds). */
export const POLL_S = 0.5;

/** etc/ with controller `slurm` on the test's cluster and a host `cluster` on it. */
export function slurmEnv(cluster: SlurmCluster, dispatcher: Record<string, unknown> = {}): TestEnv {
  const env = makeDispatchEnv({
    queues: { default: null, tasks: { parallel: 5 } },
    config: { dispatcher: { workers: 8, ...dispatcher } },
    jobTypes: {
      hello: {
        template:
          'echo "hello $who from Slurm job $SLURM_JOB_ID"; echo "$GREETING_STYLE $BATCHD_JOB_ID"; echo "to stderr" >&2',
        params: [{ name: 'who', type: 'String' }],
        host_name: 'cluster',
        environment: { GREETING_STYLE: 'plain' },
      },
      fail: { template: 'echo failing >&2; exit 7', host_name: 'cluster' },
      nap: {
        template: 'echo "napping in $SLURM_JOB_ID"; sleep $seconds; echo "rested $n"',
        params: [
          { name: 'seconds', type: 'Integer' },
          { name: 'n', type: 'Integer', default: 0 },
        ],
        host_name: 'cluster',
      },
      square: {
        template: ['#!/bin/bash', 'x=$n', 'echo "$((x * x))"', 'echo "partition $SLURM_JOB_PARTITION"'],
        params: [{ name: 'n', type: 'Integer' }],
        host_name: 'cluster',
        cluster: { cpus: 1, memory_mb: 64, time_limit: 120 },
      },
      short: { template: 'sleep 300', host_name: 'cluster', timeout: 2 },
    },
  });
  env.writeConfig('controllers/slurm.yaml', {
    driver: 'slurm',
    command_prefix: cluster.prefix,
    slurm_conf: cluster.conf,
    command_timeout: 10,
    poll_interval: POLL_S,
    defaults: { partition: cluster.partition },
  });
  env.writeConfig('hosts/cluster.yaml', { controller: 'slurm', max_jobs: 6 });
  return env;
}

/** The jobs of a dropped task (their ids end with its slug), once all were accepted. */
export async function taskJobs(env: TestEnv, queue: string, slug: string, count: number): Promise<string[]> {
  return waitFor(
    () => {
      const ids = ['queued', 'running', 'done', 'failed', 'cancelled'].flatMap((state) =>
        jobsIn(env.spool, queue, state).filter((id) => id.endsWith(`-${slug}`)),
      );
      return ids.length === count ? ids.sort() : undefined;
    },
    10_000,
    `task ${slug} accepted`,
  );
}

/** The controller file of a Slurm reached over SSH whose job files are copied (`staging: copy`). */
export function copyController(
  cluster: SlurmCluster,
  sshd: Sshd,
  workDirectory: string,
): Record<string, unknown> {
  return {
    driver: 'slurm',
    ssh: {
      host: '127.0.0.1',
      port: sshd.port,
      user: 'root',
      identity_file: sshd.clientKey,
      options: ['-o', `UserKnownHostsFile=${sshd.knownHosts}`, '-o', 'StrictHostKeyChecking=yes'],
    },
    staging: 'copy',
    work_directory: workDirectory,
    command_prefix: cluster.prefix,
    slurm_conf: cluster.conf,
    command_timeout: 10,
    poll_interval: POLL_S,
    defaults: { partition: cluster.partition },
  };
}
