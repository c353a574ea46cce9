import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import type { Daemon } from '../../daemon/daemon.ts';
import { MAKE_AHEAD } from '../../daemon/tasks/materialise.ts';
import {
  blockUntil,
  dropJob,
  ledger,
  makeDispatchEnv,
  maxConcurrency,
  record,
  startInProcess,
  timed,
  touch,
  waitForState,
  workDir,
} from '../helpers/dispatch.ts';
import { drop, jobsIn, type TestEnv, waitFor } from '../helpers/env.ts';

let env: TestEnv;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  env.cleanup();
  daemon = undefined;
});

const allDone = (e: TestEnv, queue: string, n: number): Promise<string[]> =>
  waitFor(
    () => {
      const done = jobsIn(e.spool, queue, 'done');
      return done.length >= n ? done : undefined;
    },
    20_000,
    `${n} jobs done in ${queue}`,
  );

describe('priorities', () => {
  it('start the highest priority first, then in submission order', async () => {
    env = makeDispatchEnv({ config: { dispatcher: { workers: 1 } }, queues: { default: null } });
    const work = workDir(env);
    const order = path.join(work, 'order');
    daemon = await startInProcess(env);
    const blocker = await dropJob(env, 'default', { command: blockUntil(path.join(work, 'go')) }, 'blocker');
    await waitForState(env, blocker, 'running');
    const jobs: [string, number][] = [
      ['p0-first', 0],
      ['p5-first', 5],
      ['p0-second', 0],
      ['p10', 10],
      ['p5-second', 5],
      ['pminus1', -1],
      ['p0-third', 0],
    ];
    for (const [label, priority] of jobs)
      await dropJob(env, 'default', { command: record(order, label), priority }, label);
    touch(path.join(work, 'go'));
    await allDone(env, 'default', jobs.length + 1);
    expect(ledger(order)).toEqual([
      'p10',
      'p5-first',
      'p5-second',
      'p0-first',
      'p0-second',
      'p0-third',
      'pminus1',
    ]);
  });
});

describe('queue priorities', () => {
  it('between queues, a job’s priority counts first, then the queue’s, then submission order', async () => {
    env = makeDispatchEnv({
      config: { dispatcher: { workers: 1 } },
      queues: { default: null, low: null, high: { priority: 5 } },
    });
    const work = workDir(env);
    const order = path.join(work, 'order');
    daemon = await startInProcess(env);
    const blocker = await dropJob(env, 'default', { command: blockUntil(path.join(work, 'go')) }, 'blocker');
    await waitForState(env, blocker, 'running');
    await dropJob(env, 'low', { command: record(order, 'low-1') }, 'low-1');
    await dropJob(env, 'low', { command: record(order, 'low-urgent'), priority: 1 }, 'low-urgent');
    await dropJob(env, 'high', { command: record(order, 'high-1') }, 'high-1');
    await dropJob(env, 'low', { command: record(order, 'low-2') }, 'low-2');
    await dropJob(env, 'high', { command: record(order, 'high-2') }, 'high-2');
    touch(path.join(work, 'go'));
    await waitFor(() => ledger(order).length === 5, 15_000);
    expect(ledger(order)).toEqual(['low-urgent', 'high-1', 'high-2', 'low-1', 'low-2']);
  });
});

describe('limits', () => {
  it('never run more than dispatcher.workers jobs at once, over all queues', async () => {
    env = makeDispatchEnv({ config: { dispatcher: { workers: 2 } }, queues: { default: null, other: null } });
    const times = path.join(workDir(env), 'times');
    daemon = await startInProcess(env);
    for (let i = 0; i < 3; i++) {
      await dropJob(env, 'default', { command: timed(times, `d${i}`, 0.6) }, `d${i}`);
      await dropJob(env, 'other', { command: timed(times, `o${i}`, 0.6) }, `o${i}`);
    }
    await allDone(env, 'default', 3);
    await allDone(env, 'other', 3);
    expect(maxConcurrency(times)).toBe(2);
  });

  it('never run more than a queue’s `parallel` jobs of that queue at once', async () => {
    env = makeDispatchEnv({
      config: { dispatcher: { workers: 4 } },
      queues: { narrow: { parallel: 1 }, wide: null },
    });
    const times = path.join(workDir(env), 'times');
    daemon = await startInProcess(env);
    for (let i = 0; i < 3; i++) {
      await dropJob(env, 'narrow', { command: timed(times, `n${i}`, 0.5) }, `n${i}`);
      await dropJob(env, 'wide', { command: timed(times, `w${i}`, 0.5) }, `w${i}`);
    }
    await allDone(env, 'narrow', 3);
    await allDone(env, 'wide', 3);
    expect(maxConcurrency(times, (l) => l.startsWith('n'))).toBe(1);
    // The other queue was not held back by it: the workers were used.
    expect(maxConcurrency(times)).toBeGreaterThanOrEqual(3);
  });

  it('never run more than a job type’s `max_jobs` of that type at once, across queues', async () => {
    env = makeDispatchEnv({
      config: { dispatcher: { workers: 4 } },
      jobTypes: {
        gpu: { template: 'sh -c "$code"', params: [{ name: 'code', type: 'String' }], max_jobs: 1 },
      },
      queues: { a: null, b: null },
    });
    const times = path.join(workDir(env), 'times');
    daemon = await startInProcess(env);
    for (let i = 0; i < 2; i++) {
      await dropJob(env, 'a', { type: 'gpu', params: { code: timed(times, `gpu-a${i}`, 0.5) } }, `ga${i}`);
      await dropJob(env, 'b', { type: 'gpu', params: { code: timed(times, `gpu-b${i}`, 0.5) } }, `gb${i}`);
      await dropJob(env, 'a', { command: timed(times, `cmd${i}`, 0.5) }, `c${i}`);
    }
    await allDone(env, 'a', 4);
    await allDone(env, 'b', 2);
    expect(maxConcurrency(times, (l) => l.startsWith('gpu'))).toBe(1);
    expect(maxConcurrency(times)).toBeGreaterThanOrEqual(2);
  });

  it('jobs held back by max_jobs do not starve the jobs queued behind them, however many', async () => {
    env = makeDispatchEnv({
      config: { dispatcher: { workers: 2 } },
      jobTypes: {
        gpu: {
          template: 'sh -c "$code"',
          params: [
            { name: 'code', type: 'String' },
            { name: 'n', type: 'Integer' },
          ],
          max_jobs: 1,
        },
      },
      queues: { default: null },
    });
    const go = path.join(workDir(env), 'go');
    daemon = await startInProcess(env);
    // More held-back jobs than any scan limit: 1001 of a type that may run one at a time.
    drop(
      env.spool,
      'default',
      { type: 'gpu', params: { code: blockUntil(go), n: { range: '1..1001' } } },
      'gpu-task.yaml',
    );
    // A task's folders are made a chunk ahead of the dispatcher (tasks/materialise.ts): the held-back
    // jobs it holds are that chunk, the rest wait in the task's manifest.
    await waitFor(
      () => jobsIn(env.spool, 'default', 'queued').length >= MAKE_AHEAD,
      30_000,
      'the task accepted',
    );
    const small = await dropJob(env, 'default', { command: 'true' }, 'small');
    await waitForState(env, small, 'done');
    expect(jobsIn(env.spool, 'default', 'running')).toHaveLength(1);
    touch(go);
  });
});

describe('queues that may not start jobs', () => {
  it('a disabled queue holds its jobs; enabling it in queue.yaml (hot reload) starts them', async () => {
    env = makeDispatchEnv({ queues: { held: { enabled: false } } });
    daemon = await startInProcess(env);
    const id = await dropJob(env, 'held', { command: 'true' }, 'held-job');
    await new Promise((r) => setTimeout(r, 1500)); // longer than a rescan
    expect(jobsIn(env.spool, 'held', 'queued')).toEqual([id]);
    writeFileSync(path.join(env.spool, 'held', 'queue.yaml'), stringify({ enabled: true }));
    await waitForState(env, id, 'done');
  });

  it('a disabled queue with autostart_job_count enables itself once it holds that many jobs', async () => {
    env = makeDispatchEnv({ queues: { batch: { enabled: false, autostart_job_count: 3 } } });
    daemon = await startInProcess(env);
    const first = await dropJob(env, 'batch', { command: 'true' }, 'one');
    await dropJob(env, 'batch', { command: 'true' }, 'two');
    await new Promise((r) => setTimeout(r, 1200));
    expect(jobsIn(env.spool, 'batch', 'queued')).toHaveLength(2);
    await dropJob(env, 'batch', { command: 'true' }, 'three');
    await allDone(env, 'batch', 3);
    expect(jobsIn(env.spool, 'batch', 'done')).toContain(first);
  });
});

/** HH:MM:SS in UTC, `offsetMin` minutes from now. */
function utcTime(offsetMin: number): string {
  return new Date(Date.now() + offsetMin * 60_000).toISOString().slice(11, 19);
}

describe('autostart after a reload', () => {
  it('a queue.yaml reload that disables the queue again re-applies autostart_job_count', async () => {
    env = makeDispatchEnv({
      config: { dispatcher: { workers: 1 } },
      queues: { batch: { enabled: false, autostart_job_count: 2 } },
    });
    const go = path.join(workDir(env), 'go');
    daemon = await startInProcess(env);
    const ids = [
      await dropJob(env, 'batch', { command: blockUntil(go) }, 'one'),
      await dropJob(env, 'batch', { command: 'true' }, 'two'),
      await dropJob(env, 'batch', { command: 'true' }, 'three'),
    ];
    await waitFor(() => jobsIn(env.spool, 'batch', 'running').length === 1);
    // An edit of queue.yaml (the title) reloads it: enabled is false again, and two jobs wait.
    writeFileSync(
      path.join(env.spool, 'batch', 'queue.yaml'),
      stringify({ title: 'Batch', enabled: false, autostart_job_count: 2 }),
    );
    await waitFor(() => daemon?.queues.settings('batch').title === 'Batch', 10_000, 'the reload');
    touch(go);
    await allDone(env, 'batch', 3);
    expect(jobsIn(env.spool, 'batch', 'done').sort()).toEqual([...ids].sort());
  });
});

describe('schedules', () => {
  it('a queue whose schedule is closed now holds its jobs until the schedule opens', async () => {
    env = makeDispatchEnv({
      schedules: { later: { timezone: 'UTC', time: [{ begin: utcTime(120), end: utcTime(180) }] } },
      queues: { nightly: { schedule_name: 'later' } },
    });
    daemon = await startInProcess(env);
    const id = await dropJob(env, 'nightly', { command: 'true' }, 'nightly-job');
    await new Promise((r) => setTimeout(r, 1500));
    expect(jobsIn(env.spool, 'nightly', 'queued')).toEqual([id]);
    // Editing the schedule (hot reload) so it is open now lets the job start.
    env.writeConfig('schedules/later.yaml', {
      timezone: 'UTC',
      time: [{ begin: utcTime(-60), end: utcTime(60) }],
    });
    await waitForState(env, id, 'done');
  });

  it('a queue whose schedule is open now runs its jobs, and one on a closed weekday does not', async () => {
    const weekday = (ms: number): string =>
      new Date(ms).toLocaleDateString('en-US', { weekday: 'long', timeZone: 'UTC' });
    const today = weekday(Date.now());
    const other = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'].filter(
      (d) => d !== today,
    );
    // The window opened an hour ago. Run in the hour after midnight, it crosses midnight, and its
    // small hours belong to the day it began on (schedule.ts): that day is the one to allow.
    const began = weekday(Date.now() - 60 * 60_000);
    env = makeDispatchEnv({
      schedules: {
        now: { timezone: 'UTC', weekdays: [began], time: [{ begin: utcTime(-60), end: utcTime(60) }] },
        notToday: { timezone: 'UTC', weekdays: other },
      },
      queues: { open: { schedule_name: 'now' }, shut: { schedule_name: 'notToday' } },
    });
    daemon = await startInProcess(env);
    const shut = await dropJob(env, 'shut', { command: 'true' }, 'shut-job');
    const open = await dropJob(env, 'open', { command: 'true' }, 'open-job');
    await waitForState(env, open, 'done');
    await new Promise((r) => setTimeout(r, 1200));
    expect(jobsIn(env.spool, 'shut', 'queued')).toEqual([shut]);
  });
});

describe('not_before', () => {
  it('a job does not start before its not_before time, then runs', async () => {
    env = makeDispatchEnv({ queues: { default: null } });
    const started = path.join(workDir(env), 'started');
    daemon = await startInProcess(env);
    const notBefore = Date.now() + 1500;
    const id = await dropJob(
      env,
      'default',
      { command: `date +%s%3N > '${started}'`, not_before: new Date(notBefore).toISOString() },
      'later',
    );
    await waitForState(env, id, 'done', 10_000);
    const startedAt = Number(ledger(started)[0]);
    expect(startedAt).toBeGreaterThanOrEqual(notBefore);
  });
});
