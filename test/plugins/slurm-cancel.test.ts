import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { dropJob, request } from '../helpers/dispatch.ts';
import { type TestEnv, waitFor } from '../helpers/env.ts';
import { type SlurmCluster, startSlurm } from '../helpers/slurm.ts';
import { finished, log } from '../ssh/ssh-env.ts';
import { slurmEnv } from './slurm-env.ts';

const ADVICE = /ProctrackType is proctrack\/linuxproc/;

/** Busy loops on every core, so that signals sent one by one leave room for a further line. */
function loadTheCpus(): ChildProcess[] {
  return [0, 1, 2, 3].map(() => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
}

describe('cancelling Slurm jobs', () => {
  let cluster: SlurmCluster | undefined;
  let env: TestEnv | undefined;
  let daemon: DaemonProcess | undefined;
  let hogs: ChildProcess[] = [];

  afterEach(async () => {
    for (const hog of hogs) hog.kill('SIGKILL');
    hogs = [];
    await daemon?.stop();
    await cluster?.stop();
    env?.cleanup();
    daemon = cluster = env = undefined;
  });

  it('ends every line of a cancelled running job at once, even on a loaded machine', async () => {
    cluster = await startSlurm({ cpus: 32 });
    const cancelEnv = (env = slurmEnv(cluster, { workers: 16 }));
    env.writeConfig('hosts/cluster.yaml', { controller: 'slurm', max_jobs: 16 });
    daemon = await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 });
    // Under proctrack/linuxproc about 1 cancel in 40 let the script print "rested" here.
    for (const round of [1, 2]) {
      const ids: string[] = [];
      for (let n = 0; n < 16; n++)
        ids.push(
          await dropJob(env, 'default', { type: 'nap', params: { seconds: 120, n } }, `r${round}-${n}`),
        );
      const running = (id: string): string => path.join(cancelEnv.spool, 'default', 'running', id);
      await waitFor(
        () => ids.every((id) => log(running(id), 'stdout.log').includes('napping')),
        60_000,
        'all the jobs running in Slurm',
        100,
      );
      hogs = loadTheCpus();
      for (const id of ids) request(env, 'default', id, 'cancel');
      for (const id of ids) {
        const job = await finished(env, id, 60_000);
        expect(job.state, JSON.stringify(job.record)).toBe('cancelled');
        expect(log(job.dir, 'stdout.log')).toMatch(/^napping in \d+\n$/);
      }
      for (const hog of hogs) hog.kill('SIGKILL');
      hogs = [];
    }
    expect(daemon.logs()).not.toMatch(ADVICE);
  }, 240_000);

  it('warns once, before its first submission, that proctrack/linuxproc lets a cancelled script go on', async () => {
    cluster = await startSlurm({ proctrack: 'linuxproc' });
    env = slurmEnv(cluster);
    daemon = await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 });
    const ids = [
      await dropJob(env, 'default', { type: 'hello', params: { who: 'one' } }, 'one'),
      await dropJob(env, 'default', { type: 'hello', params: { who: 'two' } }, 'two'),
    ];
    for (const id of ids) expect((await finished(env, id, 60_000)).state).toBe('done');
    const warnings = daemon.records().filter((r) => ADVICE.test(String(r.msg)));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ controller: 'slurm', level: 40 });
  }, 120_000);
});
