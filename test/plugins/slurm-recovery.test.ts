import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { dropJob, request } from '../helpers/dispatch.ts';
import { drop, type TestEnv, waitFor } from '../helpers/env.ts';
import { type SlurmCluster, startSlurm } from '../helpers/slurm.ts';
import { finished, log } from '../ssh/ssh-env.ts';
import { slurmEnv, taskJobs } from './slurm-env.ts';

/** `running.batch` of a job in running/, as the daemon recorded it. */
function recorded(env: TestEnv, id: string): { controller: string; id?: string } | undefined {
  try {
    const text = readFileSync(path.join(env.spool, 'default', 'running', id, 'state.yaml'), 'utf8');
    return (JSON.parse(text) as { running?: { batch?: { controller: string; id?: string } } }).running?.batch;
  } catch {
    return undefined;
  }
}

/** Submissions slurmctld accepted, from its log: one line per sbatch that reached it. */
function submissions(cluster: SlurmCluster): number {
  const text = readFileSync(path.join(cluster.dir, 'log', 'slurmctld.log'), 'utf8');
  return text.split('\n').filter((l) => l.includes('_slurm_rpc_submit_batch_job')).length;
}

describe('a daemon killed with SIGKILL while its Slurm jobs run', () => {
  let cluster: SlurmCluster;
  let env: TestEnv;
  let daemon: DaemonProcess | undefined;

  beforeAll(async () => {
    cluster = await startSlurm();
    env = slurmEnv(cluster, { lock_stale: 3 });
  });

  afterEach(async () => {
    daemon?.kill('SIGKILL');
    await daemon?.exited;
  });

  afterAll(async () => {
    await cluster?.stop();
    env?.cleanup();
  });

  it('finds its jobs again after a restart: none submitted twice, every result arrives', async () => {
    daemon = await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 });
    // Two end while the daemon is down (and Slurm forgets them), four outlive the restart; the
    // tasks go to Slurm as arrays, the job alone as a job of its own.
    drop(env.spool, 'default', { type: 'nap', params: { seconds: 1, n: [1, 2] } }, 'quick.yaml');
    drop(env.spool, 'default', { type: 'nap', params: { seconds: 9, n: [3, 4, 5] } }, 'slow.yaml');
    const alone = await dropJob(env, 'default', { type: 'nap', params: { seconds: 9, n: 6 } }, 'alone');
    const quick = await taskJobs(env, 'default', 'quick', 2);
    const slow = await taskJobs(env, 'default', 'slow', 3);
    const ids = [...quick, ...slow, alone];
    await waitFor(
      () => ids.every((id) => recorded(env, id)?.id !== undefined),
      30_000,
      'every job submitted with its Slurm id recorded',
      100,
    );
    const before = submissions(cluster);
    expect(before).toBeGreaterThanOrEqual(3);
    expect(recorded(env, slow[0] as string)?.id).toMatch(/^\d+_\d$/);
    daemon.kill('SIGKILL');
    await daemon.exited;

    // The crash came between sbatch's answer and the record: for the job alone, only its comment
    // in Slurm says which batchd job it runs; for an array element, the array's comment and the
    // element's index recorded before sbatch do.
    const unrecord = (id: string, whole: boolean): void => {
      const file = path.join(env.spool, 'default', 'running', id, 'state.yaml');
      const state = JSON.parse(readFileSync(file, 'utf8')) as { running: { batch?: { id?: string } } };
      if (whole) delete state.running.batch;
      else delete state.running.batch?.id;
      writeFileSync(file, JSON.stringify(state));
    };
    unrecord(alone, true);
    unrecord(slow[0] as string, false);

    // Slurm forgets the quick ones (MinJobAge=2) before the daemon is back.
    await new Promise((r) => setTimeout(r, 5_000));
    daemon = await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 });
    const jobs = await Promise.all(ids.map((id) => finished(env, id, 60_000)));
    for (const job of jobs) {
      expect(job.state, JSON.stringify(job.record)).toBe('done');
      // One attempt each, not interrupted and run again.
      expect(job.record.results).toHaveLength(1);
      expect(log(job.dir, 'stdout.log').match(/napping/g)).toHaveLength(1);
    }
    const rested = jobs.map((j) => /rested (\d)\n$/.exec(log(j.dir, 'stdout.log'))?.[1]);
    expect(rested.sort()).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(submissions(cluster)).toBe(before);
    expect(new Set(jobs.map((j) => j.record.last?.batch?.id)).size).toBe(6);
    expect(readdirSync(path.join(env.spool, 'default', 'running'))).toEqual([]);
  });

  it('leaves its Slurm jobs running at an orderly stop and adopts them at the next start', async () => {
    daemon = await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 });
    const id = await dropJob(env, 'default', { type: 'nap', params: { seconds: 6, n: 7 } }, 'graceful');
    await waitFor(() => recorded(env, id)?.id !== undefined, 30_000, 'the job submitted', 100);
    const before = submissions(cluster);
    await daemon.stop(); // SIGTERM: grace_time (0.3 s) passes, the job is not cancelled
    expect(recorded(env, id)?.id).toMatch(/^\d+$/);
    daemon = await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 });
    const job = await finished(env, id, 60_000);
    expect(job.state).toBe('done');
    expect(job.record.results).toHaveLength(1);
    expect(log(job.dir, 'stdout.log')).toMatch(/^napping in \d+\nrested 7\n$/);
    expect(submissions(cluster)).toBe(before);
  });

  it('cancels with scancel, at the next start, a Slurm job whose cancel was asked while no daemon ran', async () => {
    daemon = await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 });
    const id = await dropJob(env, 'default', { type: 'nap', params: { seconds: 120, n: 8 } }, 'asked');
    const batchId = await waitFor(() => recorded(env, id)?.id, 30_000, 'the job submitted', 100);
    const running = path.join(env.spool, 'default', 'running', id);
    await waitFor(() => log(running, 'stdout.log').includes('napping'), 30_000, 'the job runs', 100);
    await daemon.stop(); // the job goes on in Slurm
    request(env, 'default', id, 'cancel');
    daemon = await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 });
    const job = await finished(env, id, 60_000);
    expect(job.state, JSON.stringify(job.record)).toBe('cancelled');
    expect(job.record.last?.batch?.id).toBe(batchId);
    expect(log(job.dir, 'stdout.log')).not.toContain('rested');
    // Gone from Slurm (or seen cancelled), not left running for its two minutes.
    const seen = await cluster.run('squeue', ['-h', '-t', 'all', '-j', batchId, '-o', '%T']);
    expect(['', 'CANCELLED']).toContain(seen.stdout.trim());
  });
});
