import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { JobPage } from '../../daemon/protocol/jobs.ts';
import { eventually } from '../api/api-helpers.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { makeEnv, type TestEnv } from '../helpers/env.ts';
import { type WrittenJob, writeJobs } from './deep-queue.ts';
import { expectedOrder } from './expected-order.ts';

const STATES = ['queued', 'running', 'done', 'failed', 'cancelled'];
/** What a sort orders by, as GET /job shows it. */
const VALUE: Record<string, (j: WrittenJob) => string | number | null> = {
  state: (j) => STATES.indexOf(j.status),
  queue: (j) => j.queue,
  type: (j) => j.type,
  user: (j) => j.user,
  priority: (j) => j.priority,
  started: (j) => j.started_at,
  ended: (j) => j.ended_at,
};
const SORTS = Object.keys(VALUE).flatMap((key) => [key, `-${key}`]);

function expected(jobs: readonly WrittenJob[], sort: string): string[] {
  return expectedOrder(jobs, sort, VALUE);
}

interface Api {
  proc: DaemonProcess;
  url: string;
}

/**
 * The job list's sorts on a deep queue are answered from what the daemon keeps in memory: after
 * the start-up scan and the background pass, the first sort by every column and every page after
 * it reads no job file (the daemon counts the files its sorts read, in GET /metrics), and still
 * gives the order the files say, over queued, done and failed jobs, jobs another dispatcher put in
 * the spool, and jobs accepted through the API. A priority set by another dispatcher sharing the
 * spool shows in the next sorted page, even when that dispatcher has stopped since.
 */
describe('sorting a deep queue from memory', () => {
  let env: TestEnv | undefined;
  const procs: DaemonProcess[] = [];
  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.stop()));
    env?.cleanup();
    env = undefined;
  });

  const boot = async (e: TestEnv): Promise<Api> => {
    const urlFile = path.join(e.root, `api-url-${procs.length}`);
    const proc = await startDaemon(e.etc, e.spool, { extraArgs: ['--api-url-file', urlFile] });
    procs.push(proc);
    const url = await eventually(() => existsSync(urlFile) && readFileSync(urlFile, 'utf8').trim(), 15_000);
    return { proc, url };
  };
  const get = async <T>(api: Api, route: string): Promise<T> => {
    const res = await fetch(`${api.url}${route}`);
    expect(res.status, route).toBe(200);
    return (await res.json()) as T;
  };
  const metric = async (api: Api, line: RegExp): Promise<number> => {
    const text = await (await fetch(`${api.url}/metrics`)).text();
    const m = line.exec(text);
    if (m === null) throw new Error(`no ${String(line)} in /metrics`);
    return Number(m[1]);
  };
  const requestReads = (api: Api): Promise<number> =>
    metric(api, /^batchd_job_sort_file_reads_total\{for="request"\} (\d+)$/m);
  const known = (api: Api): Promise<number> => metric(api, /^batchd_job_sort_known_jobs (\d+)$/m);
  const walk = async (api: Api, route: string, limit: number): Promise<string[]> => {
    const ids: string[] = [];
    let cursor = '';
    for (let pages = 0; pages < 500; pages++) {
      const page = await get<JobPage>(api, `${route}&limit=${limit}${cursor && `&cursor=${cursor}`}`);
      ids.push(...page.jobs.map((j) => j.id));
      if (page.next_cursor === null) return ids;
      cursor = encodeURIComponent(page.next_cursor);
    }
    throw new Error('more than 500 pages');
  };
  const makeSpool = (): TestEnv =>
    (env = makeEnv({
      config: { manager: { enabled: true, host: '127.0.0.1', port: 0 } },
      jobTypes: { render: { template: 'true' } },
      // Nothing runs: the jobs stay where they were written.
      queues: { deep: { enabled: false } },
    }));

  it('answers the first sort by every column, and each page after it, without reading a job file', async () => {
    const e = makeSpool();
    const jobs = writeJobs(e.spool, 'deep', { queued: 700, done: 100, failed: 100 });
    const api = await boot(e);
    await eventually(async () => (await known(api)) >= jobs.length, 60_000, 'the background pass');
    const before = await requestReads(api);

    for (const sort of SORTS)
      expect(await walk(api, `/queue/deep/jobs?status=all&sort=${sort}`, 400), sort).toEqual(
        expected(jobs, sort),
      );
    expect(await requestReads(api)).toBe(before);

    // Jobs another dispatcher committed into the folders, found by the rescans and the pass.
    const more = writeJobs(e.spool, 'deep', { queued: 60, done: 20 }, 2);
    const all = [...jobs, ...more];
    await eventually(async () => (await known(api)) >= all.length, 60_000, 'the new jobs known');
    // A job accepted through the API is known from its acceptance.
    const res = await fetch(`${api.url}/queue/deep`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'render', priority: 50 }),
    });
    expect(res.status).toBe(201);
    const accepted = ((await res.json()) as { jobs: string[] }).jobs[0];
    const top = (await get<JobPage>(api, '/queue/deep/jobs?status=all&sort=-priority&limit=1')).jobs[0];
    expect(top?.id).toBe(accepted);
    if (top === undefined) return;
    all.push({ ...top, user: top.user ?? null });
    for (const sort of ['type', '-user', 'priority', 'ended'])
      expect(await walk(api, `/queue/deep/jobs?status=all&sort=${sort}`, 700), sort).toEqual(
        expected(all, sort),
      );
    expect(await requestReads(api)).toBe(before);
  });

  it('shows a priority another dispatcher set in the next sorted page, after that one stopped', async () => {
    const e = makeSpool();
    const jobs = writeJobs(e.spool, 'deep', { queued: 600 }, 3);
    const a = await boot(e);
    const first = await walk(a, '/queue/deep/jobs?sort=-priority', 1000);
    expect(first).toEqual(expected(jobs, '-priority'));
    // Both directions have an index before the change: each must see it.
    expect(await walk(a, '/queue/deep/jobs?sort=priority', 1000)).toEqual(expected(jobs, 'priority'));
    const bottom = jobs.find((j) => j.id === first.at(-1)) as WrittenJob;
    const middle = jobs.find((j) => j.id === first[300]) as WrittenJob;

    const b = await boot(e);
    for (const [job, priority] of [
      [bottom, 1000],
      [middle, -1000],
    ] as const) {
      const res = await fetch(`${b.url}/job/${job.id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ priority }),
      });
      expect(res.status).toBe(200);
      job.priority = priority;
    }
    await (procs.pop() as DaemonProcess).stop();

    const after = await walk(a, '/queue/deep/jobs?sort=-priority', 300);
    expect(after[0]).toBe(bottom.id);
    expect(after.at(-1)).toBe(middle.id);
    expect(after).toEqual(expected(jobs, '-priority'));
    expect(await walk(a, '/queue/deep/jobs?sort=priority', 300)).toEqual(expected(jobs, 'priority'));
  });
});
