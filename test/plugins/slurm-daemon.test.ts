import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import type { SlurmClient } from '../../plugins/slurm/index.ts';
import { dropJob, request, startInProcess, waitForState } from '../helpers/dispatch.ts';
import { drop, type TestEnv, waitFor } from '../helpers/env.ts';
import { type SlurmCluster, startSlurm } from '../helpers/slurm.ts';
import { finished, log } from '../ssh/ssh-env.ts';
import { POLL_S, slurmEnv, taskJobs } from './slurm-env.ts';

describe('jobs on a Slurm host through the daemon', () => {
  let cluster: SlurmCluster;
  let env: TestEnv;
  let daemon: Daemon;
  let client: SlurmClient;

  beforeAll(async () => {
    cluster = await startSlurm();
    env = slurmEnv(cluster);
    daemon = await startInProcess(env);
    client = daemon.controllers.batchSystem('slurm') as SlurmClient;
  });

  afterAll(async () => {
    await daemon?.stop();
    await cluster?.stop();
    env?.cleanup();
  });

  it('runs a job through sbatch: output, error output, environment, Slurm id and exit code arrive', async () => {
    const who = `it's me; $(touch ${env.root}/never) \`id\``;
    const id = await dropJob(env, 'default', { type: 'hello', params: { who } }, 'hello');
    const job = await finished(env, id, 30_000);
    expect(job.state, cluster.logs()).toBe('done');
    const batchId = job.record.last?.batch?.id ?? '';
    expect(batchId).toMatch(/^\d+$/);
    expect(job.record.last).toMatchObject({
      outcome: 'success',
      exit_code: 0,
      host: 'cluster',
      batch: { controller: 'slurm', id: batchId, state: 'COMPLETED' },
    });
    expect(log(job.dir, 'stdout.log')).toBe(`hello ${who} from Slurm job ${batchId}\nplain ${id}\n`);
    expect(log(job.dir, 'stderr.log')).toBe('to stderr\n');
    expect(existsSync(path.join(env.root, 'never'))).toBe(false);
  });

  it('runs a task of 5 through Slurm as one job array, each output in its job folder, following all with one squeue per poll', async () => {
    const before = { squeue: client.runner.calls.squeue, sbatch: client.runner.calls.sbatch };
    const started = Date.now();
    drop(env.spool, 'tasks', { type: 'square', params: { n: [1, 2, 3, 4, 5] } }, 'squares.yaml');
    const ids = await taskJobs(env, 'tasks', 'squares', 5);
    const jobs = await Promise.all(ids.map((id) => finished(env, id, 60_000, 'tasks')));
    const elapsed = Date.now() - started;
    const outputs = jobs.map((j) => log(j.dir, 'stdout.log')).sort();
    expect(outputs).toEqual([1, 4, 9, 16, 25].map((n) => `${n}\npartition ${cluster.partition}\n`).sort());
    for (const job of jobs) expect(job.record.last).toMatchObject({ outcome: 'success', batch: {} });
    // Started together: one array, element k running the task's job k.
    const batchIds = jobs.map((j) => j.record.last?.batch?.id ?? '');
    const base = batchIds[0]?.split('_')[0] ?? '';
    expect(batchIds.sort()).toEqual([0, 1, 2, 3, 4].map((k) => `${base}_${k}`));
    // One squeue per poll for all of them (one per job would be up to 5 per poll).
    const polls = client.runner.calls.squeue - before.squeue;
    expect(polls).toBeLessThanOrEqual(Math.ceil(elapsed / (POLL_S * 1000)) + 2);
    expect(client.runner.calls.sbatch - before.sbatch).toBe(1);
  });

  it("records a failing job with its exit code and Slurm's state and reason", async () => {
    const id = await dropJob(env, 'default', { type: 'fail' }, 'fail');
    const job = await finished(env, id, 30_000);
    expect(job.state).toBe('failed');
    expect(job.record.last).toMatchObject({
      outcome: 'exit-code',
      exit_code: 7,
      batch: { state: 'FAILED', reason: 'NonZeroExitCode' },
    });
    expect(job.record.last?.error).toContain('exit code 7');
    expect(log(job.dir, 'stderr.log')).toBe('failing\n');
  });

  it('cancels a running Slurm job with scancel, and times one out', async () => {
    const id = await dropJob(env, 'default', { type: 'nap', params: { seconds: 300 } }, 'cancel');
    await waitForState(env, id, 'running', 15_000);
    await waitFor(
      () => {
        const dir = path.join(env.spool, 'default', 'running', id);
        return existsSync(path.join(dir, 'stdout.log')) && log(dir, 'stdout.log').includes('napping');
      },
      30_000,
      'the job runs in Slurm',
      100,
    );
    const before = client.runner.calls.scancel;
    request(env, 'default', id, 'cancel');
    const job = await finished(env, id, 30_000);
    expect(job.state).toBe('cancelled');
    expect(client.runner.calls.scancel - before).toBe(1);
    const batchId = job.record.last?.batch?.id ?? '';
    const seen = await cluster.run('squeue', ['-h', '-t', 'all', '-j', batchId, '-o', '%T']);
    expect(['', 'CANCELLED']).toContain(seen.stdout.trim());

    const timedOut = await dropJob(env, 'default', { type: 'short' }, 'short');
    const late = await finished(env, timedOut, 30_000);
    expect(late.record.last).toMatchObject({ outcome: 'timeout' });
    expect(late.record.last?.error).toContain('timed out after 2 s');
  });

  it('fails a job Slurm refuses with sbatch’s message, its own cluster settings winning', async () => {
    const id = await dropJob(
      env,
      'default',
      { type: 'square', params: { n: 3 }, cluster: { partition: 'no-such-partition' } },
      'refused',
    );
    const job = await finished(env, id, 30_000);
    expect(job.state).toBe('failed');
    expect(job.record.last?.outcome).toBe('spawn-failed');
    expect(job.record.last?.error).toMatch(/sbatch exited 1: .*invalid partition/i);
  });

  it('keeps at most max_jobs of a host submitted to Slurm at once', async () => {
    drop(
      env.spool,
      'default',
      { type: 'nap', params: { seconds: 1, n: [1, 2, 3, 4, 5, 6, 7, 8] } },
      'naps.yaml',
    );
    const ids = await taskJobs(env, 'default', 'naps', 8);
    let most = 0;
    const watch = setInterval(() => {
      most = Math.max(
        most,
        readdirSync(path.join(env.spool, 'default', 'running')).filter((f) => ids.includes(f)).length,
      );
    }, 50);
    try {
      const jobs = await Promise.all(ids.map((id) => finished(env, id, 60_000)));
      for (const job of jobs) expect(job.state).toBe('done');
    } finally {
      clearInterval(watch);
    }
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(6);
  });
});
