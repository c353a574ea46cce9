import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { dropJob, makeDispatchEnv, readJson, startInProcess, waitForState } from '../helpers/dispatch.ts';
import { drop, jobDir, jobsIn, readState, type TestEnv, waitFor } from '../helpers/env.ts';

let env: TestEnv;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  env.cleanup();
  daemon = undefined;
});

interface Manifest {
  name: string;
  queue: string;
  count: number;
  jobs: string[];
}

describe('tasks', () => {
  it('a drop with a range and a list expands into one job per combination, all carrying the task name', async () => {
    env = makeDispatchEnv({
      jobTypes: {
        frame: {
          template: "printf '%s %s' $shot $frame",
          params: [
            { name: 'shot', type: 'String' },
            { name: 'frame', type: 'Integer' },
          ],
        },
      },
      queues: { render: null },
    });
    daemon = await startInProcess(env);
    drop(
      env.spool,
      'render',
      { type: 'frame', params: { shot: ['s1', 's2'], frame: { range: '10..30..10' } } },
      'shots.yaml',
    );
    const done = await waitFor(() => {
      const ids = jobsIn(env.spool, 'render', 'done');
      return ids.length === 6 ? ids : undefined;
    });
    const manifest = readJson<Manifest>(path.join(env.spool, 'render', 'tasks', 'shots', 'task.yaml'));
    expect(manifest).toMatchObject({ name: 'shots', queue: 'render', count: 6 });
    expect([...manifest.jobs].sort()).toEqual([...done].sort());
    // The manifest lists the jobs in task order: each one's output is its combination.
    const outputs = manifest.jobs.map((id) =>
      readFileSync(path.join(jobDir(env.spool, 'render', 'done', id), 'stdout.log'), 'utf8'),
    );
    expect(outputs).toEqual(['s1 10', 's1 20', 's1 30', 's2 10', 's2 20', 's2 30']);
    for (const id of manifest.jobs) expect(readState(env.spool, 'render', 'done', id).task).toBe('shots');
    // The original drop is kept with the task.
    expect(readFileSync(path.join(env.spool, 'render', 'tasks', 'shots', 'drop.yaml'), 'utf8')).toContain(
      '10..30..10',
    );
  });

  it('two tasks of the same name get distinct manifests', async () => {
    env = makeDispatchEnv({ queues: { default: null } });
    daemon = await startInProcess(env);
    drop(env.spool, 'default', { task: 'nightly', params: { command: ['true', 'true'] } }, 'a.yaml');
    drop(env.spool, 'default', { task: 'nightly', params: { command: ['true', 'true', 'true'] } }, 'b.yaml');
    await waitFor(() => jobsIn(env.spool, 'default', 'done').length === 5);
    const counts = jobsIn(env.spool, 'default', 'tasks')
      .sort()
      .map((name) => [
        name,
        readJson<Manifest>(path.join(env.spool, 'default', 'tasks', name, 'task.yaml')).count,
      ]);
    expect(counts.map(([name]) => name)).toEqual(['nightly', 'nightly-2']);
    expect(counts.map(([, n]) => n).sort()).toEqual([2, 3]);
  });
});

describe('the job’s environment and records', () => {
  it('has BATCHD_JOB_ID, _QUEUE, _TASK, _ATTEMPT, _PARAM_* and a BATCHD_RESULT path for result.json', async () => {
    env = makeDispatchEnv({
      jobTypes: {
        report: {
          template: [
            'printf "id=%s\\nqueue=%s\\ntask=%s\\nattempt=%s\\nwho=%s\\nresult=%s\\n" "$BATCHD_JOB_ID" "$BATCHD_QUEUE" "$BATCHD_TASK" "$BATCHD_ATTEMPT" "$BATCHD_PARAM_who" "$BATCHD_RESULT"',
            'printf \'{"who": "%s"}\' "$who" > "$BATCHD_RESULT"',
            'echo "to stderr" >&2',
          ],
          params: [{ name: 'who', type: 'String' }],
          environment: { FROM_TYPE: 'yes' },
        },
      },
      queues: { reports: null },
    });
    daemon = await startInProcess(env);
    drop(env.spool, 'reports', { type: 'report', params: { who: ['ann smith', 'bob'] } }, 'weekly.yaml');
    const ids = await waitFor(() => {
      const done = jobsIn(env.spool, 'reports', 'done');
      return done.length === 2 ? done : undefined;
    });
    const ann = ids.find((id) =>
      readFileSync(path.join(jobDir(env.spool, 'reports', 'done', id), 'stdout.log'), 'utf8').includes(
        'who=ann smith',
      ),
    );
    expect(ann).toBeDefined();
    const dir = jobDir(env.spool, 'reports', 'done', ann ?? '');
    const vars = Object.fromEntries(
      readFileSync(path.join(dir, 'stdout.log'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    // The result path is where the folder was while it ran; the file moved with the folder.
    expect(vars).toEqual({
      id: ann,
      queue: 'reports',
      task: 'weekly',
      attempt: '1',
      who: 'ann smith',
      result: path.join(env.spool, 'reports', 'running', ann ?? '', 'result.json'),
    });
    expect(readJson(path.join(dir, 'result.json'))).toEqual({ who: 'ann smith' });
    expect(readFileSync(path.join(dir, 'stderr.log'), 'utf8')).toBe('to stderr\n');
  });

  it('a job type’s environment reaches the job; the job runs in its own folder', async () => {
    env = makeDispatchEnv({
      jobTypes: { envy: { template: 'sh -c "echo $FROM_TYPE; pwd"', environment: { FROM_TYPE: 'typed' } } },
      queues: { default: null },
    });
    daemon = await startInProcess(env);
    const id = await dropJob(env, 'default', { type: 'envy' }, 'envy');
    await waitForState(env, id, 'done');
    expect(readFileSync(path.join(jobDir(env.spool, 'default', 'done', id), 'stdout.log'), 'utf8')).toBe(
      `typed\n${path.join(env.spool, 'default', 'running', id)}\n`,
    );
    expect(readState(env.spool, 'default', 'done', id).task).toBeUndefined();
  });

  it('records the exit code of a failed job and its output', async () => {
    env = makeDispatchEnv({ queues: { default: null } });
    daemon = await startInProcess(env);
    const id = await dropJob(env, 'default', { command: 'echo out; echo err >&2; exit 3' }, 'exit3');
    await waitForState(env, id, 'failed');
    const state = readState(env.spool, 'default', 'failed', id);
    expect(state.last).toMatchObject({
      attempt: 1,
      outcome: 'exit-code',
      exit_code: 3,
      signal: null,
      error: 'exit code 3',
    });
    const dir = jobDir(env.spool, 'default', 'failed', id);
    expect(readFileSync(path.join(dir, 'stdout.log'), 'utf8')).toBe('out\n');
    expect(readFileSync(path.join(dir, 'stderr.log'), 'utf8')).toBe('err\n');
  });

  it('records the signal that killed a job', async () => {
    env = makeDispatchEnv({ queues: { default: null } });
    daemon = await startInProcess(env);
    const id = await dropJob(env, 'default', { command: 'kill -USR1 $$' }, 'signalled');
    await waitForState(env, id, 'failed');
    expect(readState(env.spool, 'default', 'failed', id).last).toMatchObject({
      outcome: 'signal',
      exit_code: null,
      signal: 'SIGUSR1',
      error: 'killed by SIGUSR1',
    });
  });

  it('a command that does not exist fails with exit code 127 and says so', async () => {
    env = makeDispatchEnv({ queues: { default: null } });
    daemon = await startInProcess(env);
    const id = await dropJob(env, 'default', { command: 'no-such-program-anywhere --flag' }, 'missing');
    await waitForState(env, id, 'failed');
    const state = readState(env.spool, 'default', 'failed', id);
    expect(state.last).toMatchObject({ exit_code: 127 });
    expect(readFileSync(path.join(jobDir(env.spool, 'default', 'failed', id), 'stderr.log'), 'utf8')).toMatch(
      /no-such-program-anywhere.*not found/,
    );
  });
});
