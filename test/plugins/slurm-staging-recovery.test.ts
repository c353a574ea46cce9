import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { dropJob } from '../helpers/dispatch.ts';
import { drop, type TestEnv, waitFor } from '../helpers/env.ts';
import { type SlurmCluster, startSlurm } from '../helpers/slurm.ts';
import { finished, log } from '../ssh/ssh-env.ts';
import { type Sshd, startSshd } from '../ssh/sshd.ts';
import { copyController, slurmEnv, taskJobs } from './slurm-env.ts';

let cluster: SlurmCluster;
let sshd: Sshd;

beforeAll(async () => {
  cluster = await startSlurm();
  sshd = await startSshd();
});

afterAll(async () => {
  await sshd?.stop();
  await cluster?.stop();
});

/** `running.batch` of a job in running/, as the daemon recorded it. */
function recorded(env: TestEnv, id: string): { id?: string; array?: unknown } | undefined {
  try {
    const text = readFileSync(path.join(env.spool, 'default', 'running', id, 'state.yaml'), 'utf8');
    return (JSON.parse(text) as { running?: { batch?: { id?: string } } }).running?.batch;
  } catch {
    return undefined;
  }
}

/** Submissions slurmctld accepted, from its log: one line per sbatch that reached it. */
function submissions(): number {
  const text = readFileSync(path.join(cluster.dir, 'log', 'slurmctld.log'), 'utf8');
  return text.split('\n').filter((l) => l.includes('_slurm_rpc_submit_batch_job')).length;
}

describe('a daemon killed with SIGKILL while its copied Slurm jobs run', () => {
  let env: TestEnv;
  let daemon: DaemonProcess | undefined;
  let login: string;

  beforeAll(() => {
    env = slurmEnv(cluster, { lock_stale: 3 });
    login = mkdtempSync('/tmp/batchd-login-');
    env.writeConfig('controllers/slurm.yaml', copyController(cluster, sshd, login));
    env.writeConfig('jobtypes/rest.yaml', {
      template:
        'echo "napping in $SLURM_JOB_ID"; sleep $seconds; echo "rested $n" >"$result"; echo "rested $n"',
      params: [
        { name: 'seconds', type: 'Integer' },
        { name: 'n', type: 'Integer' },
        { name: 'result', type: 'OutputFile' },
      ],
      host_name: 'cluster',
    });
  });

  afterAll(async () => {
    daemon?.kill('SIGKILL');
    await daemon?.exited;
    env?.cleanup();
    if (login !== undefined) rmSync(login, { recursive: true, force: true });
  });

  it('collects after a restart the files of jobs Slurm finished meanwhile and of those still running, submitting none twice', async () => {
    daemon = await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 });
    // Each job's output goes into its own folder (a relative path). Two end while the daemon is down (and Slurm forgets them: MinJobAge), one outlives the restart.
    drop(
      env.spool,
      'default',
      { type: 'rest', params: { seconds: 1, n: [1, 2], result: 'rest.txt' } },
      'quick.yaml',
    );
    const slow = await dropJob(
      env,
      'default',
      { type: 'rest', params: { seconds: 6, n: 3, result: 'rest.txt' } },
      'slow',
    );
    const quick = await taskJobs(env, 'default', 'quick', 2);
    const ids = [...quick, slow];
    await waitFor(
      () => ids.every((id) => recorded(env, id)?.id !== undefined),
      30_000,
      'every job submitted',
      100,
    );
    const before = submissions();
    daemon.kill('SIGKILL');
    await daemon.exited;
    // The crash came between sbatch's answer and the record, for one of the quick ones: only the
    // exit file in its folder on the login node says it ended.
    const file = path.join(env.spool, 'default', 'running', quick[0] as string, 'state.yaml');
    const state = JSON.parse(readFileSync(file, 'utf8')) as { running: { batch: { id?: string } } };
    delete state.running.batch.id;
    writeFileSync(file, JSON.stringify(state));
    await new Promise((r) => setTimeout(r, 5_000));
    expect(readdirSync(login).sort()).toEqual(ids.map((id) => `${id}.1`).sort());

    daemon = await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 });
    const jobs = await Promise.all(ids.map((id) => finished(env, id, 60_000)));
    for (const job of jobs) {
      expect(job.state, JSON.stringify(job.record)).toBe('done');
      expect(job.record.results).toHaveLength(1);
      expect(log(job.dir, 'stdout.log')).toMatch(/^napping in \d+\nrested \d\n$/);
    }
    const rested = jobs.map((job) => readFileSync(path.join(job.dir, 'rest.txt'), 'utf8'));
    expect(rested.sort()).toEqual(['rested 1\n', 'rested 2\n', 'rested 3\n']);
    expect(submissions()).toBe(before);
    expect(readdirSync(login)).toEqual([]);
  });
});
