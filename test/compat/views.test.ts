import { existsSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { UserStore } from '../../daemon/auth/store.ts';
import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';

type Json = Record<string, unknown>;
const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const ROOT = basic('root', 'rootpassword');
const VERA = basic('vera', 'verapassword');

/**
 * The batchd face answers each caller with what the native API lets them view: a user with view
 * grants on one queue sees nothing of another queue (its jobs, counts, stats or monitor samples)
 * through /batchd, whichever resource asks.
 */
describe("the batchd face and the caller's view", () => {
  let d: ApiDaemon;
  let base: string;
  const seen: number[] = [];
  const hidden: number[] = [];

  const call = async (auth: string, method: string, url: string, body?: unknown): Promise<Response> =>
    fetch(`${base}${url}`, {
      method,
      headers: { authorization: auth },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const get = async <T>(auth: string, url: string): Promise<T> => {
    const r = await call(auth, 'GET', url);
    expect(r.status, `GET ${url}`).toBe(200);
    return (await r.json()) as T;
  };

  beforeAll(async () => {
    d = await startApiDaemon({
      manager: { auth: { basic: true } },
      jobTypes: { echo: { template: 'echo $message', params: [{ name: 'message', type: 'String' }] } },
      // Disabled: the jobs stay New, so every listing below has something to hide.
      queues: { seen: { enabled: false }, hidden: { enabled: false } },
      beforeStart: async (env) => {
        const users = new UserStore(path.join(env.etc, 'users.yaml'));
        await users.addUser('root', 'rootpassword', { superuser: true });
        await users.addUser('vera', 'verapassword');
        for (const permission of ['ViewQueues', 'ViewJobs', 'ManageJobs'] as const)
          await users.addGrant('vera', { permission, queue_name: 'seen', type_name: null, host_name: null });
      },
    });
    base = `${d.url}/batchd`;
    for (const [queue, into] of [
      ['seen', seen],
      ['hidden', hidden],
    ] as const) {
      for (const message of ['one', 'two']) {
        const r = await call(ROOT, 'POST', `/queue/${queue}`, { type: 'echo', params: { message } });
        expect(r.status).toBe(200);
        into.push((await r.json()) as number);
      }
    }
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
  });

  it("lists only the viewable queue's queue, jobs and stats", async () => {
    expect((await get<Json[]>(VERA, '/queue')).map((q) => q.name)).toEqual(['seen']);
    expect((await get<Json[]>(VERA, '/jobs?status=all')).map((j) => j.id)).toEqual(seen);
    expect((await get<Json[]>(ROOT, '/jobs?status=all')).map((j) => j.id)).toEqual([...seen, ...hidden]);
    expect(await get(VERA, '/stats')).toEqual({ seen: { new: 2 } });
    expect(await get(ROOT, '/stats')).toMatchObject({ seen: { new: 2 }, hidden: { new: 2 } });
    for (const url of ['/queue/hidden', '/queue/hidden/jobs?status=all', '/stats/hidden'])
      expect((await call(VERA, 'GET', url)).status, url).toBe(403);
  });

  it('neither shows nor changes a job of a queue the caller may not view', async () => {
    const [one] = hidden;
    for (const url of [`/job/${one}`, `/job/${one}/results`, `/job/${one}/results/last`])
      expect([403, 404], url).toContain((await call(VERA, 'GET', url)).status);
    expect([403, 404]).toContain((await call(VERA, 'PUT', `/job/${one}`, { notes: 'mine' })).status);
    expect([403, 404]).toContain((await call(VERA, 'DELETE', `/job/${one}`)).status);
    expect([403, 404]).toContain((await call(VERA, 'DELETE', `/queue/hidden/${one}`)).status);
    expect(await get<Json>(ROOT, `/job/${one}`)).toMatchObject({ status: 'New', notes: null });
  });

  it('keeps monitor samples of other queues, and sums over all queues, from the caller', async () => {
    const names = (records: Json[]): string[] => records.map((r) => String(r.name));
    const mine = names(await get<Json[]>(VERA, '/monitor/current/plain'));
    expect(mine).toContain('batchd.queue.seen.jobs.New');
    expect(mine).toContain('rts.gc.current_bytes_used');
    expect(mine.filter((n) => n.includes('hidden') || n.startsWith('batchd.jobs.'))).toEqual([]);
    const all = names(await get<Json[]>(ROOT, '/monitor/current/plain'));
    expect(all).toEqual(expect.arrayContaining(['batchd.queue.hidden.jobs.New', 'batchd.jobs.New']));

    expect(await get(VERA, '/monitor/batchd.queue/current/tree')).toEqual({
      batchd: {
        queue: { seen: { jobs: expect.objectContaining({ New: { type: 'g', val: 2 } }) as unknown } },
      },
    });
    expect((await call(VERA, 'GET', '/monitor/batchd.queue.hidden.jobs.New/last')).status).toBe(404);
    expect((await call(VERA, 'GET', '/monitor/batchd.jobs.New/last')).status).toBe(404);
    expect((await call(ROOT, 'GET', '/monitor/batchd.queue.hidden.jobs.New/last')).status).toBe(200);

    const history = names(await get<Json[]>(VERA, '/monitor/batchd/query?last=3600'));
    expect(history).toContain('batchd.queue.seen.jobs.New');
    expect(history.filter((n) => n.includes('hidden'))).toEqual([]);
    const rows = await get<Json[]>(VERA, '/monitor/jobs?last=3600');
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rows.map((r) => r.queue))).toEqual(new Set(['seen']));
    const everyone = await get<Json[]>(ROOT, '/monitor/jobs?last=3600');
    expect(new Set(everyone.map((r) => r.queue))).toEqual(new Set(['seen', 'hidden', 'default']));
    // Without storage.metric_records nothing is written to the spool: the samples live in memory.
    expect(existsSync(path.join(d.env.spool, '.batchd-monitor'))).toBe(false);
  });
});
