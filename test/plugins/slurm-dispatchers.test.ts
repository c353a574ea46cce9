import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { ledger, stateOf } from '../helpers/dispatch.ts';
import { drop, jobsIn, type TestEnv, waitFor } from '../helpers/env.ts';
import { type SlurmCluster, startSlurm } from '../helpers/slurm.ts';
import { finished, log } from '../ssh/ssh-env.ts';
import { slurmEnv } from './slurm-env.ts';

const JOBS = 18;

interface Running {
  running?: { owner?: { pid?: number }; batch?: { id?: string } };
}

/** Jobs in running/ claimed by the dispatcher with this pid, with their recorded Slurm ids. */
function heldBy(env: TestEnv, pid: number): Map<string, string | undefined> {
  const held = new Map<string, string | undefined>();
  for (const id of jobsIn(env.spool, 'default', 'running')) {
    try {
      const file = path.join(env.spool, 'default', 'running', id, 'state.yaml');
      const state = JSON.parse(readFileSync(file, 'utf8')) as Running;
      if (state.running?.owner?.pid === pid) held.set(id, state.running.batch?.id);
    } catch {
      // moved on meanwhile
    }
  }
  return held;
}

/** slurmctld's log. */
function ctldLog(cluster: SlurmCluster): string {
  return readFileSync(path.join(cluster.dir, 'log', 'slurmctld.log'), 'utf8');
}

/**
 * What Slurm did after the first `from` characters of its log: the ids of the submissions that
 * reached it (one per sbatch, an array's base id), the jobs it started (`12`, or `12_3` for an
 * array element), and how many cancels it was asked for.
 */
function slurmActivity(cluster: SlurmCluster, from: number) {
  const lines = ctldLog(cluster).slice(from).split('\n');
  const ids = (pattern: RegExp) => lines.flatMap((l) => pattern.exec(l)?.[1] ?? []);
  return {
    submitted: ids(/_slurm_rpc_submit_batch_job: JobId=(\d+)/),
    started: ids(/sched: Allocate JobId=(\d+(?:_\d+)?)/),
    cancels: lines.filter((l) => l.includes('REQUEST_KILL_JOB')).length,
  };
}

describe('three dispatchers on one spool handing jobs to Slurm', () => {
  let cluster: SlurmCluster;
  let env: TestEnv;
  const daemons: DaemonProcess[] = [];

  beforeAll(async () => {
    cluster = await startSlurm();
    env = slurmEnv(cluster, { lock_stale: 3, poll_timeout: 0.5 });
    // Each run leaves a line: batchd's job id and Slurm's, so a job run twice shows.
    env.writeConfig('jobtypes/counted.yaml', {
      template: `echo "$BATCHD_JOB_ID $SLURM_JOB_ID" >> '${path.join(env.root, 'ledger')}'; echo "napping in $SLURM_JOB_ID"; sleep $seconds; echo "rested $n"`,
      params: [
        { name: 'seconds', type: 'Integer' },
        { name: 'n', type: 'Integer' },
      ],
      host_name: 'cluster',
    });
  });

  afterAll(async () => {
    for (const daemon of daemons) daemon.kill('SIGKILL');
    await Promise.all(daemons.map((d) => d.exited));
    await cluster?.stop();
    env?.cleanup();
  });

  it('one killed with SIGKILL mid-run: the others adopt its Slurm jobs by their ids, every job runs once and ends in one folder', async () => {
    // One after the other: three cold starts at once on a loaded machine take long.
    for (let i = 0; i < 3; i++)
      daemons.push(await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 }));
    const before = ctldLog(cluster).length;
    for (let n = 1; n <= JOBS; n++)
      drop(env.spool, 'default', { type: 'counted', params: { seconds: 6, n } }, `c${n}.yaml`);
    const victim = daemons[1] as DaemonProcess;
    await waitFor(
      () => [...heldBy(env, victim.pid).values()].some((id) => id !== undefined),
      30_000,
      'the victim to have a job in Slurm',
      100,
    );
    // Frozen first, so what it holds is read before the others may take it over.
    victim.kill('SIGSTOP');
    const held = heldBy(env, victim.pid);
    victim.kill('SIGKILL');
    await victim.exited;
    const survivors = daemons.filter((d) => d !== victim);

    const ids = await waitFor(
      () => {
        const found = ['queued', 'running', 'done', 'failed', 'cancelled'].flatMap((s) =>
          jobsIn(env.spool, 'default', s),
        );
        return found.length >= JOBS ? found : undefined;
      },
      10_000,
      'every job accepted',
    );
    const jobs = await Promise.all(ids.map((id) => finished(env, id, 90_000)));
    for (const job of jobs) {
      expect(job.state, JSON.stringify(job.record)).toBe('done');
      expect(job.record.results).toHaveLength(1);
      expect(log(job.dir, 'stdout.log')).toMatch(/^napping in \d+\nrested \d+\n$/);
    }
    for (const id of ids) expect(stateOf(env, id)).toBe('done');
    expect(jobsIn(env.spool, 'default', 'running')).toEqual([]);
    expect(jobsIn(env.spool, 'default', 'queued')).toEqual([]);

    // Exactly once in Slurm: one ledger line per job, each its own Slurm job; Slurm started
    // exactly the jobs recorded (job files dropped together go as arrays), every submission
    // was one of theirs, and none was cancelled (a second submission withdrawn would be).
    const lines = ledger(path.join(env.root, 'ledger')).map((l) => l.split(' '));
    expect(lines.map(([job]) => job).sort()).toEqual([...ids].sort());
    expect(new Set(lines.map(([, slurmId]) => slurmId)).size).toBe(JOBS);
    const recorded = jobs.map((j) => j.record.last?.batch?.id ?? '');
    const activity = slurmActivity(cluster, before);
    expect(activity.started.sort(), cluster.logs()).toEqual([...recorded].sort());
    expect(new Set(activity.submitted)).toEqual(new Set(recorded.map((id) => id.split('_')[0])));
    expect(activity.submitted.length).toBe(new Set(activity.submitted).size);
    expect(activity.cancels).toBe(0);

    // The killed one's jobs were finished by the others, in the Slurm jobs it had submitted.
    expect(held.size).toBeGreaterThan(0);
    const adopted = survivors
      .flatMap((d) => d.records())
      .filter((r) => String(r.msg).includes('adopted a running cluster job'))
      .map((r) => String(r.jobId));
    console.log(
      `3 dispatchers on Slurm, one killed holding ${held.size} jobs (${[...held.values()].filter((b) => b !== undefined).length} with a Slurm id): ${JOBS} jobs done, ${lines.length} runs in Slurm`,
    );
    for (const [id, batchId] of held) {
      expect(adopted).toContain(id);
      const job = jobs.find((j) => j.dir.endsWith(id));
      if (batchId !== undefined) expect(job?.record.last?.batch?.id).toBe(batchId);
    }
  }, 150_000);
});
