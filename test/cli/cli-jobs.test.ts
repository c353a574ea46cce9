import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobInfo, TaskResult, TaskStatus } from '../../daemon/protocol/index.ts';
import { type ApiDaemon, enqueueJob, startApiDaemon } from './api-daemon.ts';
import { json } from './run-cli.ts';

/**
 * The job verbs (enqueue, wait, logs, job, cancel, retry, task, ls of jobs) as real processes
 * against a real batchd process, authentication disabled. Each test checks what a script would use
 * (--json, ids on stdout) and the exit code. Queues, schedules and settings: cli-admin.test.ts;
 * authentication: cli-auth.test.ts.
 */
let d: ApiDaemon;

beforeAll(async () => {
  d = await startApiDaemon({
    jobTypes: {
      echo: { template: "printf '%s\\n' $message", params: [{ name: 'message', type: 'String' }] },
      sleep: { template: 'sleep $seconds', params: [{ name: 'seconds', type: 'Integer' }] },
      // Writes one line, then waits for its gate file before the next: the test opens the gate.
      ticker: {
        template: ['echo tick 1', 'while [ ! -e $gate ]; do sleep 0.05; done', 'echo tick 2', 'echo err >&2'],
        params: [{ name: 'gate', type: 'String' }],
      },
      frame: {
        template: ['test $frame -ne 2 || exit 1', 'printf \'{"frame": %s}\\n\' $frame > "$BATCHD_RESULT"'],
        params: [{ name: 'frame', type: 'Integer' }],
      },
    },
    queues: { held: { enabled: false }, other: { enabled: false } },
  });
});

afterAll(async () => {
  await d?.stop();
});

const enqueue = (args: string[]): Promise<string> => enqueueJob(d, args);

describe('jobs', () => {
  it('enqueue fills parameters from positional values; wait exits 0 when the job is done; logs prints its output', async () => {
    const id = await enqueue(['-t', 'echo', 'hello  world; $(id)']);
    const waited = await d.batch(['wait', id]);
    expect(waited.code).toBe(0);
    expect(waited.stdout).toContain(`${id}  done (exit 0)`);
    expect((await d.batch(['logs', id])).stdout).toBe('hello  world; $(id)\n');
    const job = json<JobInfo & { results: { outcome: string }[] }>(
      await d.batch(['job', id, '-a', '--json']),
    );
    expect(job).toMatchObject({
      id,
      status: 'done',
      type: 'echo',
      params: { message: 'hello  world; $(id)' },
      exit_code: 0,
    });
    expect(job.results.map((r) => r.outcome)).toEqual(['success']);
  });

  it('wait exits 1 when a job failed, and retry queues it again', async () => {
    const id = await enqueue(['--', 'exit', '3']); // the command type: words joined into one command
    const waited = await d.batch(['wait', id, '--json']);
    expect(waited.code).toBe(1);
    expect(json<JobInfo[]>(waited)).toMatchObject([
      { id, status: 'failed', exit_code: 3, type: 'command', params: { command: 'exit 3' } },
    ]);
    const retried = await d.batch(['retry', id]);
    expect(retried).toMatchObject({ code: 0, stdout: `${id} queued\n` });
    expect((await d.batch(['wait', id])).code).toBe(1);
    expect(json<JobInfo>(await d.batch(['job', id, '--json'])).attempts).toBe(2);
  });

  it('cancel stops a job; cancelling it again is a conflict (exit 6) with the reason', async () => {
    const id = await enqueue(['-t', 'sleep', '30']);
    const cancelled = await d.batch(['cancel', id]);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toMatch(new RegExp(`^${id} (cancelled|stopping)\\n$`));
    const waited = await d.batch(['wait', id, '--json']);
    expect(waited.code).toBe(1);
    expect(json<JobInfo[]>(waited)[0]?.status).toBe('cancelled');
    const again = await d.batch(['cancel', id]);
    expect(again.code).toBe(6);
    expect(again.stderr).toMatch(/^batch: .*cancelled/);
  });

  it('wait --timeout exits 124 and names the jobs still unfinished', async () => {
    const id = await enqueue(['-t', 'sleep', '30']);
    const waited = await d.batch(['wait', id, '--timeout', '0.5']);
    expect(waited.code).toBe(124);
    expect(waited.stderr).toContain(`not finished: ${id}`);
    expect((await d.batch(['job', id, '-d'])).code).toBe(0); // batchd's delete mode: cancels
  });

  it('logs -f follows the output while the job writes it and returns when the job ends', async () => {
    const gate = path.join(d.env.root, 'ticker-gate');
    const id = await enqueue(['-t', 'ticker', gate]);
    // The first line must arrive while the job is still running, held at its gate: only then is
    // the gate opened. A CLI that printed the log once the job ended would never open it.
    let seenWhileRunning: Promise<string> | undefined;
    const followed = await d.batch(['logs', '-f', id], {
      onStdout: (stdout) => {
        if (seenWhileRunning !== undefined || stdout !== 'tick 1\n') return;
        seenWhileRunning = d.batch(['job', id, '--json']).then((job) => {
          writeFileSync(gate, '');
          return json<JobInfo>(job).status;
        });
      },
    });
    expect(await seenWhileRunning).toBe('running');
    expect(followed).toMatchObject({ code: 0, stdout: 'tick 1\ntick 2\n' });
    expect(json<{ log: string }>(await d.batch(['logs', id, '--stderr', '--json'])).log).toBe('err\n');
  });

  it('enqueue --at keeps the job queued until then; job --at any releases it (cli-job-fields.test.ts: more)', async () => {
    const before = Date.now();
    const id = await enqueue(['-t', 'echo', 'later', '--at', '+1h', '-n', 'not yet']);
    const job = json<JobInfo>(await d.batch(['job', id, '--json']));
    expect(job).toMatchObject({ status: 'queued', notes: 'not yet' });
    expect(Date.parse(job.not_before ?? '') - before).toBeGreaterThan(3_590_000);
    const change = await d.batch(['job', id, '--at', 'any', '--json']);
    expect(change.code).toBe(0);
    expect(json<JobInfo>(change).not_before).toBeNull();
    expect((await d.batch(['wait', id])).code).toBe(0);
  });

  it('job changes priority, notes and queue, one change per call', async () => {
    const first = await enqueue(['-q', 'held', '-t', 'echo', 'a']);
    const second = await enqueue(['-q', 'held', '-t', 'echo', 'b']);
    const promoted = json<JobInfo>(await d.batch(['job', second, '-p', 'first', '--json']));
    const firstInfo = json<JobInfo>(await d.batch(['job', first, '-n', 'a note', '--json']));
    expect(promoted.priority).toBeGreaterThan(firstInfo.priority);
    expect(firstInfo.notes).toBe('a note');
    expect((await d.batch(['job', first, '-p', 'last', '-n', 'x'])).code).toBe(2);
    expect(json<JobInfo>(await d.batch(['job', first, '-m', 'other', '--json'])).queue).toBe('other');
  });

  it('enqueue -f submits a task file as is; task status, collect and resume work on it', async () => {
    const file = path.join(d.home, 'frames.yaml');
    writeFileSync(file, 'type: frame\ntask: frames\nparams:\n  frame: {range: "1..3"}\n');
    const submitted = await d.batch(['enqueue', '-f', file]);
    expect(submitted.code).toBe(0);
    const ids = submitted.stdout.trim().split('\n');
    expect(ids).toHaveLength(3);
    const collected = await d.batch(['task', 'collect', 'default', 'frames', '--json']);
    expect(collected.code).toBe(1); // frame 2 fails
    const results = json<TaskResult[]>(collected);
    expect(results.map((r) => [r.index, r.id, r.status])).toEqual([
      [0, ids[0], 'done'],
      [1, ids[1], 'failed'],
      [2, ids[2], 'done'],
    ]);
    expect(results[0]?.result).toEqual({ frame: 1 });
    const status = json<TaskStatus>(await d.batch(['task', 'status', 'frames', '--json'])); // the queue from the default
    expect(status).toMatchObject({ total: 3, done: 2, failed: 1, resolved: true });
    const resumed = await d.batch(['task', 'resume', 'default', 'frames']);
    expect(resumed).toMatchObject({ code: 0, stdout: `${ids[1]}\n` });
    const tasks = json<{ name: string; count: number }[]>(await d.batch(['task', 'ls', '--json']));
    expect(tasks).toContainEqual(expect.objectContaining({ name: 'frames', count: 3 }));
    expect((await d.batch(['task', 'status', 'default', 'nosuch'])).code).toBe(3);
  });

  it('ls QUEUE shows unfinished jobs by default, -s filters by state and -a shows all', async () => {
    const all = json<JobInfo[]>(await d.batch(['ls', 'default', '-a', '--json']));
    const failed = json<JobInfo[]>(await d.batch(['ls', 'default', '-s', 'Failed', '--json'])); // batchd's spelling
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((j) => j.status === 'failed')).toBe(true);
    expect(all.length).toBeGreaterThan(failed.length);
    expect((await d.batch(['ls', 'default', '-s', 'bogus'])).code).toBe(2);
  });
});

describe('errors', () => {
  it('says what is wrong and exits 3 for unknown things, 6 for invalid input, 2 for usage errors', async () => {
    const unknownJob = await d.batch(['job', '20200101T000000.000Z-aaaaaa']);
    expect(unknownJob.code).toBe(3);
    expect(unknownJob.stderr).toMatch(/^batch: .*20200101T000000\.000Z-aaaaaa/);
    const unknownType = await d.batch(['enqueue', '-t', 'nosuch', '-p', 'x=1']);
    expect(unknownType.code).toBe(6);
    expect(unknownType.stderr).toMatch(/Unknown job type "nosuch".*known types: command/);
    const badValue = await d.batch(['enqueue', '-t', 'sleep', '-p', 'seconds=abc']);
    expect(badValue.code).toBe(6);
    expect(badValue.stderr).toMatch(/params\.seconds.*integer/);
    const tooMany = await d.batch(['enqueue', '-t', 'echo', 'a', 'b']);
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toContain('type "echo" takes 1 parameter(s) (message), got 2 values');
    for (const result of [unknownJob, unknownType, badValue, tooMany]) expect(result.stdout).toBe('');
  });
});
