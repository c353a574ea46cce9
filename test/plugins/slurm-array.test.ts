import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import type { SlurmClient } from '../../plugins/slurm/index.ts';
import { dropJob, startInProcess } from '../helpers/dispatch.ts';
import { drop, jobsIn, type TestEnv, waitFor } from '../helpers/env.ts';
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
    // A plain command: its words run as the batch script's own.
    env.writeConfig('jobtypes/words.yaml', { template: 'echo plain words', host_name: 'cluster' });
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

  it('sends job files started together as one array per job type, and a job file alone as a job of its own', async () => {
    // A host not known to be up takes one job first (after the first test, it is up).
    const warm = await dropJob(env, 'default', { type: 'words' }, 'warm');
    expect((await finished(env, warm, 30_000)).state).toBe('done');
    // Held in a queue that is off until every file is queued, so one pass starts them all.
    mkdirSync(path.join(env.spool, 'gather'), { recursive: true });
    writeFileSync(path.join(env.spool, 'gather', 'queue.yaml'), 'enabled: false\n');
    const FILES = 12;
    const names = [...Array(FILES).keys()].map((k) => `file-${k}`);
    for (const [k, name] of names.entries())
      drop(
        env.spool,
        'gather',
        k % 3 === 0 ? { type: 'words' } : { type: 'echo', params: { n: k + 1 } },
        `${name}.yaml`,
      );
    await waitFor(() => jobsIn(env.spool, 'gather', 'queued').length === FILES, 30_000, 'every file queued');
    const sbatchBefore = client.runner.calls.sbatch;
    writeFileSync(path.join(env.spool, 'gather', 'queue.yaml'), 'enabled: true\n');
    const ids = jobsIn(env.spool, 'gather', 'queued');
    const jobs = await Promise.all(ids.map((id) => finished(env, id, 120_000, 'gather')));

    expect(client.runner.calls.sbatch - sbatchBefore, cluster.logs()).toBe(2);
    const arrays = new Map<string, string[]>();
    for (const [at, job] of jobs.entries()) {
      const id = ids[at] ?? '';
      const batchId = job.record.last?.batch?.id ?? '';
      expect(batchId).toMatch(/^\d+_\d+$/);
      const out = log(job.dir, 'stdout.log');
      const type = out === 'plain words\n' ? 'words' : 'echo';
      arrays.set(`${type} ${batchId.split('_')[0]}`, [
        ...(arrays.get(`${type} ${batchId.split('_')[0]}`) ?? []),
        id,
      ]);
      if (type === 'echo') {
        const [n, ownId] = out.trim().split(' ');
        expect(ownId).toBe(id);
        expect(job.state).toBe(Number(n) % 10 === 0 ? 'failed' : 'done');
      } else expect(job.state).toBe('done');
    }
    // Two arrays, each of one job type: 4 of `words`, 8 of `echo`.
    expect([...arrays.entries()].map(([key, members]) => [key.split(' ')[0], members.length]).sort()).toEqual(
      [
        ['echo', 8],
        ['words', 4],
      ],
    );

    const alone = await dropJob(env, 'gather', { type: 'words' }, 'alone');
    const single = await finished(env, alone, 60_000, 'gather');
    expect(single.state).toBe('done');
    expect(single.record.last?.batch?.id).toMatch(/^\d+$/);
    expect(log(single.dir, 'stdout.log')).toBe('plain words\n');
  }, 180_000);

  it('runs a plain command’s words as they are, whatever their text holds, alone and as array elements that differ in them', async () => {
    const odd = [`it's`, `;; esac`, '"$HOME" `id`', '$(touch x) -n'];
    const jobs = odd.map((text, k) => {
      const dir = path.join(env.root, 'words', `job-${k}`);
      mkdirSync(dir, { recursive: true });
      return {
        body: '#!/bin/sh\nexit 99\n',
        command: ['printf', '%s|%s\\n', text, String(k)],
        stdout: path.join(dir, 'stdout.log'),
        stderr: path.join(dir, 'stderr.log'),
        exitFile: path.join(dir, 'batch.exit'),
        workdir: dir,
      };
    });
    await client.submitArray({ taskId: 'odd-words', jobs }, AbortSignal.timeout(30_000));
    const [only] = jobs;
    if (only === undefined) throw new Error('no job');
    const dir = path.join(env.root, 'words', 'alone');
    mkdirSync(dir, { recursive: true });
    const alone = {
      ...only,
      command: ['printf', '%s\\n', '; exit 3'],
      stdout: path.join(dir, 'stdout.log'),
      stderr: path.join(dir, 'stderr.log'),
      exitFile: path.join(dir, 'batch.exit'),
      workdir: dir,
    };
    await client.submit({ ...alone, jobId: 'odd-alone' }, AbortSignal.timeout(30_000));
    const all = [...jobs, alone];
    await waitFor(() => all.every((j) => existsSync(j.exitFile)), 60_000, 'every exit file');
    for (const [k, job] of jobs.entries()) {
      expect(readFileSync(job.stdout, 'utf8')).toBe(`${odd[k]}|${k}\n`);
      expect(readFileSync(job.exitFile, 'utf8')).toBe('0\n');
    }
    expect(readFileSync(alone.stdout, 'utf8')).toBe('; exit 3\n');
    expect(readFileSync(alone.exitFile, 'utf8')).toBe('0\n');
    expect(existsSync(path.join(env.root, 'words', 'job-3', 'x'))).toBe(false);
  }, 90_000);

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
