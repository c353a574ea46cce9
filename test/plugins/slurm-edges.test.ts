import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { dropJob, startInProcess } from '../helpers/dispatch.ts';
import { type TestEnv, waitFor } from '../helpers/env.ts';
import { type SlurmCluster, startSlurm } from '../helpers/slurm.ts';
import { finished, log } from '../ssh/ssh-env.ts';
import { POLL_S, slurmEnv } from './slurm-env.ts';

/** `running.batch.id` of a job in running/, once the daemon recorded it. */
function batchIdOf(env: TestEnv, id: string): string | undefined {
  try {
    const text = readFileSync(path.join(env.spool, 'default', 'running', id, 'state.yaml'), 'utf8');
    return (JSON.parse(text) as { running?: { batch?: { id?: string } } }).running?.batch?.id;
  } catch {
    return undefined;
  }
}

/** Submissions slurmctld accepted, from its log. */
function submissions(cluster: SlurmCluster): number {
  const text = readFileSync(path.join(cluster.dir, 'log', 'slurmctld.log'), 'utf8');
  return text.split('\n').filter((l) => l.includes('_slurm_rpc_submit_batch_job')).length;
}

describe('Slurm hosts: resources, a changed controller file, an sbatch without an answer', () => {
  let cluster: SlurmCluster;
  let env: TestEnv;
  let daemon: Daemon;

  /** The controller file as slurmEnv writes it, with `changes`. */
  const writeController = (changes: Record<string, unknown>): void =>
    env.writeConfig('controllers/slurm.yaml', {
      driver: 'slurm',
      command_prefix: cluster.prefix,
      slurm_conf: cluster.conf,
      command_timeout: 10,
      poll_interval: POLL_S,
      defaults: { partition: cluster.partition },
      ...changes,
    });

  /** A new version of the controller file, once the daemon made its batch system again. */
  const changeController = async (changes: Record<string, unknown>): Promise<void> => {
    const before = daemon.controllers.batchSystem('slurm');
    writeController(changes);
    await waitFor(
      () => daemon.controllers.batchSystem('slurm') !== before,
      10_000,
      'the changed controller file read',
      50,
    );
  };

  beforeAll(async () => {
    cluster = await startSlurm({ gpus: 4 });
    env = slurmEnv(cluster);
    env.writeConfig('jobtypes/gpu.yaml', {
      template: 'echo "gpu job in $SLURM_JOB_ID"; sleep $seconds',
      params: [{ name: 'seconds', type: 'Integer' }],
      host_name: 'cluster',
      cluster: { gpus: 1, extra: ['--nice=7'] },
    });
    daemon = await startInProcess(env);
  });

  afterAll(async () => {
    await daemon?.stop();
    await cluster?.stop();
    env?.cleanup();
  });

  it("submits the job's GPUs and extra options, the job's own over its type's, as scontrol shows them", async () => {
    const id = await dropJob(
      env,
      'default',
      { type: 'gpu', params: { seconds: 30 }, cluster: { gpus: 2, extra: ['--ntasks=2'] } },
      'gpus',
    );
    const batchId = await waitFor(() => batchIdOf(env, id), 30_000, 'the job submitted', 100);
    const shown = await cluster.run('scontrol', ['show', 'job', batchId]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/TresPerJob=gres[:/]gpu:2\b/);
    expect(shown.stdout).toMatch(/\bNice=7\b/);
    expect(shown.stdout).toMatch(/\bNumTasks=2\b/);
    expect(shown.stdout).toContain(`Comment=batchd.spool=`);
    expect(shown.stdout).toContain(`batchd.job=${id}`);
    await cluster.run('scancel', [batchId]);
    const job = await finished(env, id, 30_000);
    expect(job.state).toBe('failed');
    expect(job.record.last?.error).toContain('cancelled in the cluster, not by batchd');
  });

  it('follows the jobs that run while their controller file changes to their end', async () => {
    const id = await dropJob(env, 'default', { type: 'nap', params: { seconds: 8, n: 1 } }, 'changed');
    await waitFor(() => batchIdOf(env, id), 30_000, 'the job submitted', 100);
    await changeController({ poll_interval: POLL_S + 0.1 });
    // A job started under the new file while the first one runs: the new file is taken into use.
    const next = await dropJob(env, 'default', { type: 'nap', params: { seconds: 0, n: 2 } }, 'after');
    expect((await finished(env, next, 30_000)).state).toBe('done');
    expect(batchIdOf(env, id)).toBeDefined();
    const job = await finished(env, id, 30_000);
    expect(job.state, JSON.stringify(job.record)).toBe('done');
    expect(log(job.dir, 'stdout.log')).toMatch(/^napping in \d+\nrested 1\n$/);
  });

  it('follows a job whose sbatch timed out after Slurm took it, instead of submitting it again', async () => {
    // sbatch as a slow login node answers: the job reaches Slurm, the answer does not come in time.
    const bin = path.join(env.root, 'slow-bin');
    mkdirSync(bin);
    const once = path.join(env.root, 'slow-once');
    writeFileSync(
      path.join(bin, 'sbatch'),
      [
        '#!/bin/sh',
        `if [ -e '${once}' ]; then rm -f '${once}'; /usr/bin/sbatch "$@" && exec sleep 60; fi`,
        'exec /usr/bin/sbatch "$@"',
        '',
      ].join('\n'),
    );
    chmodSync(path.join(bin, 'sbatch'), 0o755);
    for (const command of ['squeue', 'scancel', 'scontrol', 'sinfo'])
      symlinkSync(`/usr/bin/${command}`, path.join(bin, command));
    await changeController({ bin_dir: bin, command_timeout: 2 });
    writeFileSync(once, '');
    const before = submissions(cluster);
    const id = await dropJob(env, 'default', { type: 'nap', params: { seconds: 1, n: 3 } }, 'slow');
    const job = await finished(env, id, 40_000);
    expect(existsSync(once)).toBe(false);
    expect(job.state, JSON.stringify(job.record)).toBe('done');
    expect(job.record.results).toHaveLength(1);
    expect(job.record.last?.batch?.id).toMatch(/^\d+$/);
    expect(log(job.dir, 'stdout.log')).toMatch(/^napping in \d+\nrested 3\n$/);
    expect(submissions(cluster) - before).toBe(1);
  });
});
