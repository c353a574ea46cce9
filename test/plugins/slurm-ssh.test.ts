import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import type { SlurmClient } from '../../plugins/slurm/index.ts';
import { dropJob, request, startInProcess, waitForState } from '../helpers/dispatch.ts';
import { drop, type TestEnv, waitFor } from '../helpers/env.ts';
import { type SlurmCluster, startSlurm } from '../helpers/slurm.ts';
import { finished, log } from '../ssh/ssh-env.ts';
import { type Sshd, startSshd } from '../ssh/sshd.ts';
import { POLL_S, slurmEnv, taskJobs } from './slurm-env.ts';

/**
 * The login node: an sshd on loopback beside the cluster's namespace. The daemon reaches Slurm only
 * through it (`ssh:` in the controller file); the commands enter the namespace on the login node.
 */
describe('a Slurm controller reached over SSH on a login node', () => {
  let cluster: SlurmCluster;
  let sshd: Sshd;
  let env: TestEnv;
  let daemon: Daemon;

  beforeAll(async () => {
    cluster = await startSlurm();
    sshd = await startSshd();
    env = slurmEnv(cluster);
    env.writeConfig('controllers/slurm.yaml', {
      driver: 'slurm',
      ssh: {
        host: '127.0.0.1',
        port: sshd.port,
        user: 'root',
        identity_file: sshd.clientKey,
        options: ['-o', `UserKnownHostsFile=${sshd.knownHosts}`, '-o', 'StrictHostKeyChecking=yes'],
      },
      command_prefix: cluster.prefix,
      slurm_conf: cluster.conf,
      command_timeout: 10,
      poll_interval: POLL_S,
      defaults: { partition: cluster.partition },
    });
    // sbatch passes the submitting environment on: over SSH, sshd's SSH_CONNECTION is in it.
    env.writeConfig('jobtypes/where.yaml', {
      template: 'echo "submitted via $SSH_CONNECTION"; echo "job $n"',
      params: [{ name: 'n', type: 'Integer' }],
      host_name: 'cluster',
    });
    daemon = await startInProcess(env);
  });

  afterAll(async () => {
    await daemon?.stop();
    await sshd?.stop();
    await cluster?.stop();
    env?.cleanup();
  });

  it('submits a job and a task through the login node, its script on sbatch’s input, and follows them there', async () => {
    const client = daemon.controllers.batchSystem('slurm') as SlurmClient;
    const id = await dropJob(env, 'default', { type: 'where', params: { n: 0 } }, 'over-ssh');
    const job = await finished(env, id, 60_000);
    expect(job.state, JSON.stringify(job.record)).toBe('done');
    expect(job.record.last?.batch?.id).toMatch(/^\d+$/);
    const via = new RegExp(`^submitted via 127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${sshd.port}\\njob 0\\n$`);
    expect(log(job.dir, 'stdout.log')).toMatch(via);

    drop(env.spool, 'tasks', { type: 'where', params: { n: [1, 2, 3] } }, 'where.yaml');
    const ids = await taskJobs(env, 'tasks', 'where', 3);
    const jobs = await Promise.all(ids.map((i) => finished(env, i, 60_000, 'tasks')));
    for (const done of jobs) {
      expect(done.state).toBe('done');
      expect(log(done.dir, 'stdout.log')).toMatch(
        /^submitted via 127\.0\.0\.1 \d+ 127\.0\.0\.1 \d+\njob \d\n$/,
      );
    }
    expect(client.runner.calls.sbatch).toBe(2);
    expect(client.runner.calls.squeue).toBeGreaterThan(0);
  });

  it('cancels a job through the login node with scancel', async () => {
    const id = await dropJob(env, 'default', { type: 'nap', params: { seconds: 120 } }, 'cancel');
    await waitForState(env, id, 'running', 15_000);
    const running = path.join(env.spool, 'default', 'running', id);
    await waitFor(() => log(running, 'stdout.log').includes('napping'), 30_000, 'the job runs', 100);
    request(env, 'default', id, 'cancel');
    const job = await finished(env, id, 30_000);
    expect(job.state).toBe('cancelled');
    const batchId = job.record.last?.batch?.id ?? '';
    const seen = await cluster.run('squeue', ['-h', '-t', 'all', '-j', batchId, '-o', '%T']);
    expect(['', 'CANCELLED']).toContain(seen.stdout.trim());
  });
});
