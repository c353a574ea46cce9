import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobInfo, JobPage } from '../../daemon/protocol/jobs.ts';
import { eventually, type InProcessApi, startApi } from '../api/api-helpers.ts';
import { expectedOrder } from './expected-order.ts';

/** What a sort orders by, as the API shows it on each job. */
const VALUE: Record<string, (j: JobInfo) => string | number | null> = {
  state: (j) => ['queued', 'running', 'done', 'failed', 'cancelled'].indexOf(j.status),
  queue: (j) => j.queue,
  type: (j) => j.type,
  user: (j) => j.user,
  priority: (j) => j.priority,
  started: (j) => j.started_at,
  ended: (j) => j.ended_at,
};

function expected(jobs: JobInfo[], sort: string): string[] {
  return expectedOrder(jobs, sort, VALUE);
}

/**
 * The job list sorted by its columns on the server (state, queue, type, owner, priority, started,
 * ended; each either way), paged by a cursor that carries the sort value and the id: every page
 * walk gives each job once, in the order over the whole list, and a change to a job (its priority)
 * shows in the next page read.
 */
describe('the job list sorted by any column, paged by cursor', () => {
  let t: InProcessApi;
  beforeAll(async () => {
    t = await startApi({ queues: { default: {}, held: { enabled: false } } });
  });
  afterAll(() => t.close());

  const walk = async (path: string, limit: number): Promise<string[]> => {
    const ids: string[] = [];
    let cursor = '';
    for (let pages = 0; pages < 200; pages++) {
      const sep = path.includes('?') ? '&' : '?';
      const res = await t.json<JobPage>('GET', `${path}${sep}limit=${limit}${cursor && `&cursor=${cursor}`}`);
      expect(res.status).toBe(200);
      ids.push(...res.body.jobs.map((j) => j.id));
      if (res.body.next_cursor === null) return ids;
      cursor = encodeURIComponent(res.body.next_cursor);
    }
    throw new Error('more than 200 pages');
  };
  const everything = async (path: string): Promise<JobInfo[]> =>
    (await t.json<JobPage>('GET', `${path}${path.includes('?') ? '&' : '?'}limit=1000`)).body.jobs;

  it('orders every page by the column asked for, either way, in one queue and over all of them', async () => {
    // Finished jobs (started, ended) in `default`, queued ones of two types and many priorities in `held`.
    for (let i = 0; i < 4; i++)
      expect(
        (await t.request('POST', '/queue/default', { body: { type: 'echo', params: { message: `m${i}` } } }))
          .status,
      ).toBe(201);
    await eventually(async () => (await everything('/queue/default/jobs?status=done')).length === 4);
    for (let i = 0; i < 14; i++) {
      const job =
        i % 3 === 0
          ? { type: 'sleep', params: { seconds: 1 } }
          : { type: 'echo', params: { message: `q${i}` } };
      const res = await t.request('POST', '/queue/held', { body: { ...job, priority: (i * 7) % 5 } });
      expect(res.status).toBe(201);
    }

    const held = await everything('/queue/held/jobs');
    expect(held).toHaveLength(14);
    for (const sort of ['priority', '-priority', 'type', '-type', 'user', 'state'])
      for (const limit of [1, 3, 100])
        expect(await walk(`/queue/held/jobs?sort=${sort}`, limit), `${sort} by ${limit}`).toEqual(
          expected(held, sort),
        );

    const all = await everything('/jobs?status=all');
    expect(all).toHaveLength(18);
    for (const sort of [
      'state',
      '-state',
      'queue',
      '-queue',
      'started',
      '-started',
      'ended',
      '-ended',
      '-type',
    ])
      for (const limit of [2, 5])
        expect(await walk(`/jobs?status=all&sort=${sort}`, limit), `${sort} by ${limit}`).toEqual(
          expected(all, sort),
        );
    // Jobs that never ended come after those that did, in both directions.
    const byEnded = await walk('/jobs?status=all&sort=-ended', 4);
    expect(byEnded.slice(0, 4).sort()).toEqual(
      all
        .filter((j) => j.status === 'done')
        .map((j) => j.id)
        .sort(),
    );

    // A filter pages in the sort's order too.
    const sleeps = held.filter((j) => j.type === 'sleep');
    expect(await walk('/queue/held/jobs?type=sleep&sort=-priority', 1)).toEqual(
      expected(sleeps, '-priority'),
    );
  });

  it("shows a job's new priority in the next page read, and refuses a cursor of another order", async () => {
    const before = await everything('/queue/held/jobs?sort=-priority');
    const last = before.at(-1) as JobInfo;
    expect(last.priority).toBeLessThan(100);
    expect((await t.request('PUT', `/job/${last.id}`, { body: { priority: 100 } })).status).toBe(200);
    const after = await walk('/queue/held/jobs?sort=-priority', 4);
    expect(after[0]).toBe(last.id);
    expect(after).toEqual(expected(await everything('/queue/held/jobs'), '-priority'));

    const page = (await t.json<JobPage>('GET', '/queue/held/jobs?sort=priority&limit=2')).body;
    const cursor = encodeURIComponent(page.next_cursor ?? '');
    expect((await t.request('GET', `/queue/held/jobs?sort=type&cursor=${cursor}`)).status).toBe(400);
    expect((await t.request('GET', `/queue/held/jobs?cursor=${cursor}`)).status).toBe(400);
    expect((await t.request('GET', '/queue/held/jobs?sort=priority&cursor=garbage')).status).toBe(400);
    expect((await t.request('GET', '/queue/held/jobs?sort=name')).status).toBe(400);
  });
});
