import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { submitResponseSchema, taskResultsSchema, taskStatusSchema } from '../../daemon/protocol/index.ts';
import { MAKE_AHEAD, MAKE_STEP } from '../../daemon/tasks/materialise.ts';
import { jobsIn, waitFor } from '../helpers/env.ts';
import { type InProcessApi, startApi } from '../api/api-helpers.ts';

const Q = 'wide';
const N = 10_000;

/** Job folders of a queue in every state folder. */
function folders(spool: string): number {
  return ['queued', 'running', 'done', 'failed', 'cancelled'].reduce(
    (n, state) => n + jobsIn(spool, Q, state).length,
    0,
  );
}

/**
 * A task is committed as one manifest (every job's spec) and its job folders are made in order, a
 * chunk ahead of the dispatcher: the first job starts at once, the API answers every id at once,
 * and a job with no folder yet is shown queued.
 */
describe('a large task starts at once and makes its folders as they are needed', () => {
  let t: InProcessApi | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('runs the first job of a 10,000-job task before most folders exist, and answers every id', async () => {
    t = await startApi({
      // Slow jobs, one at a time: the folders made stay a chunk ahead of the one worker.
      config: { dispatcher: { workers: 1 } },
      jobTypes: { nap: { template: 'sleep 0.2', params: [{ name: 'n', type: 'Integer' }] } },
      queues: { [Q]: null },
    });
    const spool = t.env.spool;
    const res = await t.json('POST', `/queue/${Q}`, {
      body: { type: 'nap', task: 'big', params: { n: { range: `1..${N}` } } },
    });
    expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(201);
    const { jobs, task } = submitResponseSchema.parse(res.body);
    expect(task).toBe('big');
    expect(new Set(jobs).size).toBe(N);
    // At the answer: the manifest holds every job, and only the first step has folders.
    const taskDir = path.join(spool, Q, 'tasks', 'big');
    const listed = JSON.parse(readFileSync(path.join(taskDir, 'task.yaml'), 'utf8')) as { jobs: string[] };
    expect(listed.jobs).toEqual(jobs);
    expect(readFileSync(path.join(taskDir, 'specs.jsonl'), 'utf8').trim().split('\n')).toHaveLength(N);
    expect(folders(spool)).toBeLessThanOrEqual(MAKE_STEP);
    expect(readdirSync(path.join(spool, Q, '.staging'))).toEqual([]);

    // The first job runs; the folders made stay a chunk ahead, far from all 10,000.
    await waitFor(
      () => jobsIn(spool, Q, 'running').length + jobsIn(spool, Q, 'done').length > 0,
      20_000,
      'the first job to start',
    );
    expect(jobsIn(spool, Q, 'running').concat(jobsIn(spool, Q, 'done'))).toContain(jobs[0]);
    await waitFor(() => jobsIn(spool, Q, 'done').length >= 2, 20_000, 'two jobs done');
    const made = folders(spool);
    expect(made).toBeGreaterThan(MAKE_STEP);
    expect(made).toBeLessThanOrEqual(MAKE_AHEAD + 2 * MAKE_STEP + jobsIn(spool, Q, 'done').length);
    const mark = JSON.parse(readFileSync(path.join(taskDir, 'made.json'), 'utf8')) as { made: number };
    expect(mark.made).toBeLessThan(N / 2);

    // Every job on the disk holds the spool's contract: job.yaml and state.yaml in its folder.
    for (const id of jobsIn(spool, Q, 'queued'))
      expect(readdirSync(path.join(spool, Q, 'queued', id)).sort()).toEqual(['job.yaml', 'state.yaml']);

    // The views count the jobs with no folder yet as queued, by their ids.
    const status = await t.json('GET', `/queue/${Q}/task/big`);
    const counts = taskStatusSchema.parse(status.body);
    expect(counts.total).toBe(N);
    expect(counts.missing).toBe(0);
    expect(counts.queued + counts.running + counts.done).toBe(N);
    expect(counts.queued).toBeGreaterThan(N / 2);
    const results = taskResultsSchema.parse((await t.json('GET', `/queue/${Q}/task/big/results`)).body);
    expect(results.map((r) => r.id)).toEqual(jobs);
    expect(results.at(-1)?.status).toBe('queued');
  });

  it('accepts a 100,000-job task as its manifest alone', async () => {
    t = await startApi({
      jobTypes: { nop: { template: 'true', params: [{ name: 'n', type: 'Integer' }] } },
      queues: { [Q]: { enabled: false } },
    });
    const res = await t.json('POST', `/queue/${Q}`, {
      body: { type: 'nop', task: 'huge', params: { n: { range: '1..100000' } } },
    });
    expect(res.status).toBe(201);
    const { jobs } = submitResponseSchema.parse(res.body);
    expect(new Set(jobs).size).toBe(100_000);
    const counts = taskStatusSchema.parse((await t.json('GET', `/queue/${Q}/task/huge`)).body);
    expect(counts).toMatchObject({ total: 100_000, queued: 100_000, missing: 0 });
    // The queue's counts too.
    const stats = (await t.json('GET', `/stats/${Q}`)).body as Record<string, { queued: number }>;
    expect(stats[Q]?.queued).toBe(100_000);
    // Not started (the queue is disabled): the folders made are one chunk ahead at most.
    await waitFor(
      () => jobsIn(t?.env.spool ?? '', Q, 'queued').length >= MAKE_AHEAD,
      20_000,
      'a chunk of folders',
    );
    expect(jobsIn(t.env.spool, Q, 'queued').length).toBeLessThan(MAKE_AHEAD + MAKE_STEP);
  });

  it('shows, changes and waits for a job named by id before its folder was made', async () => {
    t = await startApi({
      jobTypes: { nop: { template: 'true', params: [{ name: 'n', type: 'Integer' }] } },
      queues: { [Q]: { enabled: false } },
    });
    const res = await t.json('POST', `/queue/${Q}`, {
      body: { type: 'nop', task: 'deep', params: { n: { range: '1..5000' } } },
    });
    const { jobs } = submitResponseSchema.parse(res.body);
    const [last, before] = [jobs.at(-1) ?? '', jobs.at(-2) ?? ''];
    expect(jobsIn(t.env.spool, Q, 'queued')).not.toContain(last);
    // Shown by id: its folder is made then, with those of the jobs before it (the order holds).
    const shown = await t.json('GET', `/job/${last}`);
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ id: last, status: 'queued', queue: Q });
    expect(jobsIn(t.env.spool, Q, 'queued')).toHaveLength(5000);
    // A control verb on such a job finds it.
    const more = submitResponseSchema.parse(
      (
        await t.json('POST', `/queue/${Q}`, {
          body: { type: 'nop', task: 'deeper', params: { n: { range: '1..5000' } } },
        })
      ).body,
    ).jobs;
    expect((await t.json('POST', `/job/${more.at(-1) ?? ''}/cancel`)).status).toBe(200);
    expect(jobsIn(t.env.spool, Q, 'cancelled')).toEqual([more.at(-1)]);
    // A job that waits for a task's job not made yet waits; it does not fail as if that job were gone.
    const third = submitResponseSchema.parse(
      (
        await t.json('POST', `/queue/${Q}`, {
          body: { type: 'nop', task: 'third', params: { n: { range: '1..5000' } } },
        })
      ).body,
    ).jobs;
    const waiter = await t.json('POST', `/queue/${Q}`, {
      body: { type: 'nop', params: { n: 0 }, after: [third.at(-1)] },
    });
    expect(waiter.status).toBe(201);
    const [waiting] = submitResponseSchema.parse(waiter.body).jobs;
    await new Promise((r) => setTimeout(r, 500));
    expect(jobsIn(t.env.spool, Q, 'failed')).toEqual([]);
    expect(jobsIn(t.env.spool, Q, 'queued')).toContain(waiting);
    expect(before).not.toBe(last);
  });
});
