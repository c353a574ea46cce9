import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import slurm, { type SlurmClient, type SlurmStatus } from '../../plugins/slurm/index.ts';
import { type SlurmCluster, startSlurm } from '../helpers/slurm.ts';
import { startSshd } from '../ssh/sshd.ts';

let cluster: SlurmCluster;
let client: SlurmClient;
let work: string;
const signal = new AbortController().signal;

beforeAll(async () => {
  cluster = await startSlurm();
  work = mkdtempSync('/tmp/batchd-slurm-jobs-');
  client = slurm.create(
    slurm.config.parse({
      command_prefix: cluster.prefix,
      slurm_conf: cluster.conf,
      command_timeout: 10,
      defaults: { partition: cluster.partition },
    }),
    { name: 'cluster', spool: 'spool-test' },
  );
});

afterAll(async () => {
  await cluster?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

function files(id: string): { stdout: string; stderr: string; exitFile: string } {
  return {
    stdout: path.join(work, `${id}.out`),
    stderr: path.join(work, `${id}.err`),
    exitFile: path.join(work, `${id}.exit`),
  };
}

async function poll(check: () => Promise<boolean>, what: string, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${cluster.logs()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Polls the batched status until every id has ended (or is gone, with its exit file written). */
async function untilEnded(
  ids: string[],
  observe: (statuses: Map<string, SlurmStatus>) => void = () => undefined,
): Promise<Map<string, SlurmStatus>> {
  let last = new Map<string, SlurmStatus>();
  await poll(
    async () => {
      last = await client.status(ids, signal);
      observe(last);
      return [...last.values()].every((s) => s.phase === 'ended' || s.phase === 'gone');
    },
    `Slurm jobs ${ids.join(',')} to end (last seen ${JSON.stringify([...last])})`,
  );
  return last;
}

describe('Slurm client against a real single-node Slurm', () => {
  it('runs a job to the end: stdout, stderr, environment and exit code 0 arrive', async () => {
    const id = await client.submit(
      {
        jobId: 'job-ok',
        body: 'echo "hello $GREETING"\necho "to stderr" >&2\n',
        env: { GREETING: "it's me; $(touch /tmp/never)" },
        workdir: work,
        resources: { time_limit: 120, cpus: 1, memory_mb: 64 },
        ...files('job-ok'),
      },
      signal,
    );
    expect(id).toMatch(/^\d+$/);
    const status = (await untilEnded([id])).get(id);
    expect(status).toMatchObject({ phase: 'ended', state: 'COMPLETED', exitCode: 0 });
    expect(readFileSync(files('job-ok').stdout, 'utf8')).toBe("hello it's me; $(touch /tmp/never)\n");
    expect(readFileSync(files('job-ok').stderr, 'utf8')).toBe('to stderr\n');
    expect(readFileSync(files('job-ok').exitFile, 'utf8')).toBe('0\n');
  });

  it('records a failing job with its exit code and Slurm reason', async () => {
    const id = await client.submit(
      { jobId: 'job-fail', body: 'echo failing >&2\nexit 7\n', ...files('job-fail') },
      signal,
    );
    const status = (await untilEnded([id])).get(id);
    expect(status).toMatchObject({
      phase: 'ended',
      state: 'FAILED',
      exitCode: 7,
      reason: 'NonZeroExitCode',
    });
    expect(readFileSync(files('job-fail').exitFile, 'utf8')).toBe('7\n');
    expect(readFileSync(files('job-fail').stderr, 'utf8')).toBe('failing\n');
  });

  it('reports a job Slurm has forgotten as gone, its exit file keeping the exit code', async () => {
    const id = await client.submit(
      { jobId: 'job-forgotten', body: 'exit 5\n', ...files('forgotten') },
      signal,
    );
    // MinJobAge=2: Slurm purges the finished job from its memory (no slurmdbd, no sacct).
    await poll(
      async () => (await client.status([id], signal)).get(id)?.phase === 'gone',
      'Slurm to forget the job',
    );
    expect(readFileSync(files('forgotten').exitFile, 'utf8')).toBe('5\n');
  });

  it('cancels a running and a pending job in one scancel', async () => {
    const id = await client.submit(
      { jobId: 'job-cancel', body: 'echo started\nsleep 300\n', ...files('job-cancel') },
      signal,
    );
    // Held by the user: it stays pending.
    const held = await client.submit(
      { jobId: 'job-held', body: 'true\n', resources: { extra: ['--hold'] }, ...files('job-held') },
      signal,
    );
    await poll(async () => {
      const seen = await client.status([id, held], signal);
      return seen.get(id)?.phase === 'running' && seen.get(held)?.phase === 'pending';
    }, 'one job to run and the held one to wait');
    const before = client.runner.calls.scancel;
    await client.cancel([id, held], signal);
    expect(client.runner.calls.scancel - before).toBe(1);
    const statuses = await untilEnded([id, held]);
    for (const status of statuses.values())
      if (status.phase !== 'gone') expect(status).toMatchObject({ state: 'CANCELLED' });
    // Cancelled before they finished: the wrapper never wrote an exit status.
    expect(existsSync(files('job-cancel').exitFile)).toBe(false);
    expect(existsSync(files('job-held').exitFile)).toBe(false);
  });

  it('asks for the status of several jobs in one squeue call', async () => {
    const ids = await Promise.all(
      ['a', 'b', 'c'].map((n) =>
        client.submit({ jobId: `job-batch-${n}`, body: 'sleep 1\n', ...files(`batch-${n}`) }, signal),
      ),
    );
    const before = client.runner.calls.squeue;
    const statuses = await client.status([...ids, '999999'], signal);
    expect(client.runner.calls.squeue - before).toBe(1);
    for (const id of ids) expect(['pending', 'running', 'ended']).toContain(statuses.get(id)?.phase);
    expect(statuses.get('999999')).toEqual({ phase: 'gone' });
    await untilEnded(ids);
  });

  it('finds this spool’s running jobs by their comment after forgetting their ids', async () => {
    const submitted = await Promise.all(
      ['r1', 'r2'].map((n) => client.submit({ jobId: `job-${n}`, body: 'sleep 30\n', ...files(n) }, signal)),
    );
    // Another spool's job on the same cluster is not ours.
    const other = slurm.create(
      slurm.config.parse({ command_prefix: cluster.prefix, slurm_conf: cluster.conf }),
      { name: 'cluster', spool: 'another-spool' },
    );
    const foreign = await other.submit({ jobId: 'job-r1', body: 'sleep 30\n', ...files('x') }, signal);

    const found = await client.owned(signal);
    const live = found.filter((j) => j.status.phase === 'pending' || j.status.phase === 'running');
    expect(live.map((j) => [j.jobId, j.id]).sort()).toEqual(
      [
        ['job-r1', submitted[0]],
        ['job-r2', submitted[1]],
      ].sort(),
    );
    expect(found.map((j) => j.id)).not.toContain(foreign);
    await client.cancel([...submitted, foreign], signal);
  });

  it('runs a task of 5 as one array, at most 2 at once, each element into its own files', async () => {
    const jobs = [0, 1, 2, 3, 4].map((n) => ({
      // Element 4 is a script with its own interpreter line; element 1 holds what would end the
      // wrapper's `case` if it were pasted there (a quote, `;;`, `esac`).
      body:
        n === 4
          ? `#!/usr/bin/env perl\nprint "element ${n} of $ENV{SLURM_ARRAY_JOB_ID}\\n";\n`
          : `echo "element ${n} of $SLURM_ARRAY_JOB_ID"\n${n === 1 ? `case x in x) : "it's ;; esac" ;; esac\n` : ''}exit ${n === 3 ? 3 : 0}\n`,
      ...files(`array-${n}`),
    }));
    const arrayId = await client.submitArray({ taskId: 'task-5', jobs, parallel: 2 }, signal);
    const ids = jobs.map((_, n) => `${arrayId}_${n}`);
    // Slurm forgets elements 2 s after they end: a slow poll may see some only as exit files.
    let mostAtOnce = 0;
    const statuses = await untilEnded(ids, (seen) => {
      const running = [...seen.values()].filter((s) => s.phase === 'running').length;
      mostAtOnce = Math.max(mostAtOnce, running);
    });
    expect(mostAtOnce).toBeLessThanOrEqual(2);
    for (const [n, id] of ids.entries()) {
      expect(readFileSync(files(`array-${n}`).stdout, 'utf8')).toBe(`element ${n} of ${arrayId}\n`);
      expect(readFileSync(files(`array-${n}`).exitFile, 'utf8')).toBe(n === 3 ? '3\n' : '0\n');
      const status = statuses.get(id);
      if (status?.phase === 'ended') expect(status.exitCode).toBe(n === 3 ? 3 : 0);
    }
  });

  it('reaches Slurm through SSH on a login node, every argument arriving unchanged', async () => {
    const sshd = await startSshd();
    try {
      const viaSsh = slurm.create(
        slurm.config.parse({
          ssh: {
            host: '127.0.0.1',
            user: 'root',
            port: sshd.port,
            identity_file: sshd.clientKey,
            options: ['-o', `UserKnownHostsFile=${sshd.knownHosts}`, '-o', 'StrictHostKeyChecking=yes'],
          },
          // On the login node: the namespace is where this test's controller listens.
          command_prefix: cluster.prefix,
          slurm_conf: cluster.conf,
        }),
        { name: 'login', spool: 'spool-test' },
      );
      const dir = path.join(work, "a dir with 'quotes' ; $(touch never) *");
      mkdirSync(dir);
      const out = path.join(dir, 'out');
      const id = await viaSsh.submit(
        {
          jobId: 'job-ssh',
          body: 'pwd\n',
          workdir: dir,
          stdout: out,
          stderr: path.join(dir, 'err'),
        },
        signal,
      );
      await poll(async () => {
        const status = (await viaSsh.status([id], signal)).get(id);
        return status?.phase === 'ended' || status?.phase === 'gone';
      }, 'the job submitted over SSH to end');
      expect(readFileSync(out, 'utf8')).toBe(`${dir}\n`);
      expect(existsSync(path.join(dir, 'never'))).toBe(false);
      expect(viaSsh.runner.calls.sbatch).toBe(1);
    } finally {
      await sshd.stop();
    }
  });
});
