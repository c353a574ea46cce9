import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { type SlurmClient, slurmConfig } from '../../plugins/slurm/index.ts';
import { dropJob, request, startInProcess } from '../helpers/dispatch.ts';
import { drop, type TestEnv, waitFor } from '../helpers/env.ts';
import { type SlurmCluster, startSlurm } from '../helpers/slurm.ts';
import { finished, log } from '../ssh/ssh-env.ts';
import { type Sshd, startSshd } from '../ssh/sshd.ts';
import { copyController, slurmEnv, taskJobs } from './slurm-env.ts';

/** Job types with an input and an output file. */
function stagingTypes(env: TestEnv, host = 'cluster'): void {
  env.writeConfig('jobtypes/upper.yaml', {
    template: 'tr a-z A-Z <"$data" >"$result"; echo "ran in $PWD on $data"; echo "note on stderr" >&2',
    params: [
      { name: 'data', type: 'InputFile' },
      { name: 'result', type: 'OutputFile' },
    ],
    host_name: host,
  });
  env.writeConfig('jobtypes/forgetful.yaml', {
    template: 'echo "no output written"',
    params: [{ name: 'result', type: 'OutputFile' }],
    host_name: host,
  });
}

/**
 * The login node (an sshd on loopback) sees the job files in a folder of its own that the daemon
 * never reads: everything a job needs goes there over SSH and everything it makes comes back.
 */
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

describe('a Slurm controller whose job files are copied through the login node', () => {
  let env: TestEnv;
  let daemon: Daemon;
  /** The login node's folder for job files (`work_directory`). */
  let login: string;

  beforeAll(async () => {
    env = slurmEnv(cluster);
    login = mkdtempSync('/tmp/batchd-login-');
    env.writeConfig('controllers/slurm.yaml', copyController(cluster, sshd, login));
    // A second controller whose folder on the login node cannot be made.
    env.writeConfig('controllers/unwritable.yaml', copyController(cluster, sshd, '/proc/batchd-no-such'));
    env.writeConfig('hosts/nowhere.yaml', { controller: 'unwritable', max_jobs: 1 });
    stagingTypes(env);
    env.writeConfig('jobtypes/lost.yaml', { template: 'echo never', host_name: 'nowhere' });
    daemon = await startInProcess(env);
  });

  afterAll(async () => {
    await daemon?.stop();
    env?.cleanup();
    if (login !== undefined) rmSync(login, { recursive: true, force: true });
  });

  it('refuses staging: copy without an absolute work_directory', () => {
    const base = { staging: 'copy' };
    expect(slurmConfig.safeParse(base).error?.issues[0]?.path).toEqual(['work_directory']);
    expect(slurmConfig.safeParse({ ...base, work_directory: 'relative' }).success).toBe(false);
    expect(slurmConfig.safeParse({ ...base, work_directory: '/a/../b' }).success).toBe(false);
    expect(slurmConfig.safeParse({ ...base, work_directory: '/scratch/b' }).success).toBe(true);
  });

  it('uploads a job’s input to its folder on the login node and brings its logs, exit status and output back, then removes that folder', async () => {
    // Names a shell would read as code if they reached one unquoted.
    const input = path.join(env.root, 'in', "it's $(id) `id`; a.txt");
    mkdirSync(path.dirname(input));
    writeFileSync(input, 'copied through ssh\n');
    const output = path.join(env.root, 'out', "up per's.txt");
    const id = await dropJob(
      env,
      'default',
      { type: 'upper', params: { data: input, result: output } },
      'up',
    );
    const job = await finished(env, id, 60_000);
    expect(job.state, JSON.stringify(job.record)).toBe('done');
    // It ran in its folder on the login node, on the copy there, not in the spool.
    const remote = path.join(login, `${id}.1`);
    expect(log(job.dir, 'stdout.log')).toBe(`ran in ${remote} on ${remote}/it's $(id) \`id\`; a.txt\n`);
    expect(log(job.dir, 'stderr.log')).toBe('note on stderr\n');
    expect(readFileSync(path.join(job.dir, 'batch.exit'), 'utf8')).toBe('0\n');
    expect(readFileSync(output, 'utf8')).toBe('COPIED THROUGH SSH\n');
    expect(readFileSync(path.join(job.dir, 'outputs', "up per's.txt"), 'utf8')).toBe('COPIED THROUGH SSH\n');
    expect(readdirSync(login)).toEqual([]);
  });

  it('runs a task as one array, each element in its own folder on the login node, and collects every element', async () => {
    const client = daemon.controllers.batchSystem('slurm') as SlurmClient;
    const before = client.runner.calls.sbatch;
    drop(env.spool, 'tasks', { type: 'hello', params: { who: ['ann', 'bo', 'cy'] } }, 'greet.yaml');
    const ids = await taskJobs(env, 'tasks', 'greet', 3);
    const jobs = await Promise.all(ids.map((i) => finished(env, i, 60_000, 'tasks')));
    const greeted = jobs.map((job) => {
      expect(job.state, JSON.stringify(job.record)).toBe('done');
      expect(log(job.dir, 'stderr.log')).toBe('to stderr\n');
      return /^hello (\w+) from Slurm job \d+\n/.exec(log(job.dir, 'stdout.log'))?.[1];
    });
    expect(greeted.sort()).toEqual(['ann', 'bo', 'cy']);
    expect(client.runner.calls.sbatch - before).toBe(1);
    expect(readdirSync(login)).toEqual([]);
  });

  it('records a failing job’s exit code and its stderr from the login node', async () => {
    const id = await dropJob(env, 'default', { type: 'fail' }, 'fails');
    const job = await finished(env, id, 60_000);
    expect(job.state).toBe('failed');
    expect(job.record.last?.exit_code).toBe(7);
    expect(log(job.dir, 'stderr.log')).toBe('failing\n');
    expect(readdirSync(login)).toEqual([]);
  });

  it('fails a job whose output file was not made, naming the login node and the path', async () => {
    const output = path.join(env.root, 'out', 'never.txt');
    const id = await dropJob(env, 'default', { type: 'forgetful', params: { result: output } }, 'forgets');
    const job = await finished(env, id, 60_000);
    expect(job.state).toBe('failed');
    expect(job.record.last?.error).toContain(`${path.join(login, `${id}.1`, 'never.txt')}`);
    expect(job.record.last?.error).toContain('was not produced');
    expect(log(job.dir, 'stdout.log')).toBe('no output written\n');
    expect(existsSync(output)).toBe(false);
  });

  it('fails a job whose folder cannot be made on the login node, naming the host and the path, without submitting it', async () => {
    const client = daemon.controllers.batchSystem('unwritable') as SlurmClient;
    const id = await dropJob(env, 'default', { type: 'lost' }, 'nowhere');
    const job = await finished(env, id, 60_000);
    expect(job.state).toBe('failed');
    const error = job.record.last?.error ?? '';
    expect(error).toContain('host nowhere');
    expect(error).toContain(`root@127.0.0.1:/proc/batchd-no-such/${id}.1`);
    expect(client.runner.calls.sbatch).toBe(0);
  });

  it('cancels a job through the login node and still collects what it wrote', async () => {
    const id = await dropJob(env, 'default', { type: 'nap', params: { seconds: 120 } }, 'cancel');
    const remoteLog = path.join(login, `${id}.1`, 'stdout.log');
    await waitFor(
      () => existsSync(remoteLog) && readFileSync(remoteLog, 'utf8').includes('napping'),
      30_000,
      'the job runs',
      100,
    );
    request(env, 'default', id, 'cancel');
    const job = await finished(env, id, 30_000);
    expect(job.state).toBe('cancelled');
    expect(log(job.dir, 'stdout.log')).toMatch(/^napping in \d+\n$/);
    const batchId = job.record.last?.batch?.id ?? '';
    const seen = await cluster.run('squeue', ['-h', '-t', 'all', '-j', batchId, '-o', '%T']);
    expect(['', 'CANCELLED']).toContain(seen.stdout.trim());
    expect(readdirSync(login)).toEqual([]);
  });
});
