import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import type { SlurmClient } from '../../plugins/slurm/index.ts';
import { dropJob, startInProcess } from '../helpers/dispatch.ts';
import { drop, type TestEnv, waitFor } from '../helpers/env.ts';
import { type SlurmCluster, startSlurm } from '../helpers/slurm.ts';
import { finished, log } from '../ssh/ssh-env.ts';
import { slurmEnv, taskJobs } from './slurm-env.ts';

/** More than an array held before (100), within the host's max_jobs. */
const TASK = 150;

describe('a task on a Slurm host', () => {
  let cluster: SlurmCluster;
  let env: TestEnv;
  let daemon: Daemon;
  let client: SlurmClient;

  beforeAll(async () => {
    cluster = await startSlurm();
    env = slurmEnv(cluster, { workers: 2 * TASK });
    env.writeConfig('hosts/cluster.yaml', { controller: 'slurm', max_jobs: 2 * TASK });
    env.writeConfig('jobtypes/echo.yaml', {
      template: 'echo "$n $BATCHD_JOB_ID $PWD"; echo "err $n" >&2; case $n in *0) exit 3 ;; esac',
      params: [{ name: 'n', type: 'Integer' }],
      host_name: 'cluster',
    });
    daemon = await startInProcess(env);
    client = daemon.controllers.batchSystem('slurm') as SlurmClient;
  });

  afterAll(async () => {
    await daemon?.stop();
    await cluster?.stop();
    env?.cleanup();
  });

  it('sends all the jobs of a task that fit the host’s max_jobs as one array, each element running its own job with its own parameters, folder and files', async () => {
    // A host not known to be up takes one job first: this one brings it up.
    const first = await dropJob(env, 'default', { type: 'echo', params: { n: 1 } }, 'first');
    expect((await finished(env, first, 30_000)).state, cluster.logs()).toBe('done');
    const sbatchBefore = client.runner.calls.sbatch;

    drop(env.spool, 'default', { type: 'echo', params: { n: { range: `1..${TASK}` } } }, 'many.yaml');
    const ids = await taskJobs(env, 'default', 'many', TASK);
    const jobs = await Promise.all(ids.map((id) => finished(env, id, 120_000)));

    expect(client.runner.calls.sbatch - sbatchBefore, cluster.logs()).toBe(1);
    const batchIds = jobs.map((j) => j.record.last?.batch?.id ?? '');
    const base = batchIds[0]?.split('_')[0] ?? '';
    expect(base).toMatch(/^\d+$/);
    expect(batchIds.sort()).toEqual([...Array(TASK).keys()].map((k) => `${base}_${k}`).sort());
    const seen = new Set<number>();
    for (const [at, job] of jobs.entries()) {
      const id = ids[at] ?? '';
      const [n, ownId, pwd] = log(job.dir, 'stdout.log').trim().split(' ');
      const value = Number(n);
      seen.add(value);
      // The element ran this job: its id, its own folder (since moved to done/), its own value.
      expect(ownId).toBe(id);
      expect(pwd).toBe(path.join(env.spool, 'default', 'running', id));
      expect(log(job.dir, 'stderr.log')).toBe(`err ${n}\n`);
      const failing = value % 10 === 0;
      expect(job.state).toBe(failing ? 'failed' : 'done');
      expect(job.record.last).toMatchObject({ exit_code: failing ? 3 : 0 });
      expect(readFileSync(path.join(job.dir, 'batch.exit'), 'utf8')).toBe(`${failing ? 3 : 0}\n`);
    }
    expect(seen.size).toBe(TASK);
  }, 180_000);

  it('runs each element of an array whose jobs differ in their bodies, environments and folders as its own job, whatever their text holds', async () => {
    // Text that would end or break a wrapper it were pasted into: quotes, `;;`, `esac`, `$`, a newline.
    const odd = [`it's`, `;; esac`, '"$HOME" `id`', 'two\nlines'];
    const jobs = odd.map((text, k) => {
      const dir = path.join(env.root, 'elements', `job-${k}`);
      mkdirSync(dir, { recursive: true });
      return {
        body: `printf '%s|%s|%s\\n' "$TEXT" "$PWD" ${k}\n${k === 2 ? 'exit 4\n' : ''}`,
        env: { TEXT: text, SHARED: 'same' },
        stdout: path.join(dir, 'stdout.log'),
        stderr: path.join(dir, 'stderr.log'),
        exitFile: path.join(dir, 'batch.exit'),
        workdir: dir,
      };
    });
    const arrayId = await client.submitArray({ taskId: 'odd-texts', jobs }, AbortSignal.timeout(30_000));
    expect(arrayId).toMatch(/^\d+$/);
    await waitFor(() => jobs.every((j) => existsSync(j.exitFile)), 60_000, 'every element’s exit file');
    for (const [k, job] of jobs.entries()) {
      expect(readFileSync(job.stdout, 'utf8')).toBe(`${odd[k]}|${job.workdir}|${k}\n`);
      expect(readFileSync(job.exitFile, 'utf8')).toBe(k === 2 ? '4\n' : '0\n');
    }
  }, 90_000);
});
