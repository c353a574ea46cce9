import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { UserStore } from '../../daemon/auth/store.ts';
import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { waitFor } from '../helpers/env.ts';
import { original } from './original.ts';
import { readFileSync } from 'node:fs';

/**
 * The Haskell `batch` CLI's HTTP calls (src/Batchd/Client/Actions.hs and Http.hs) replayed as it
 * sends them: `baseUrl </> "queue"` paths without a trailing slash, JSON bodies without a
 * Content-Type, `OPTIONS` on the bare manager URL first, Basic credentials when it lists "basic",
 * and nothing but 200 taken as success. Each answer is checked against the field names and types
 * that src/Batchd/Common/{Types,Data,Schedule}.hs parse.
 */
const STATUSES = ['New', 'Waiting', 'Processing', 'Done', 'Failed', 'Postponed'];
const PERMISSIONS = [
  'SuperUser',
  'CreateJobs',
  'ViewJobs',
  'ManageJobs',
  'ViewQueues',
  'ManageQueues',
  'ViewSchedules',
  'ManageSchedules',
];
const AUTH = `Basic ${Buffer.from('root:rootpassword').toString('base64')}`;

type Json = Record<string, unknown>;
const isTime = (v: unknown): boolean => typeof v === 'string' && !Number.isNaN(Date.parse(v));
const isInt = (v: unknown): boolean => Number.isInteger(v);
const maybe =
  (check: (v: unknown) => boolean) =>
  (v: unknown): boolean =>
    v === null || check(v);
const isString = (v: unknown): boolean => typeof v === 'string';

/** JobInfo's FromJSON (Types.hs). */
function expectJobInfo(job: Json): void {
  expect(
    isInt(job.id) && isString(job.queue) && isString(job.type) && isInt(job.seq),
    JSON.stringify(job),
  ).toBe(true);
  expect(isString(job.user_name) && isTime(job.create_time) && maybe(isTime)(job.start_time)).toBe(true);
  expect(STATUSES).toContain(job.status);
  expect(isInt(job.try_count) && maybe(isString)(job.host_name) && maybe(isString)(job.notes)).toBe(true);
  expect(maybe(isTime)(job.result_time) && maybe(isInt)(job.exit_code)).toBe(true);
  expect(maybe(isString)(job.stdout) && maybe(isString)(job.stderr)).toBe(true);
  expect(Object.values(job.params as Json).every(isString)).toBe(true);
}

/** Queue's generic FromJSON (Data.hs): every field present, Maybe fields may be null. */
function expectQueue(q: Json): void {
  expect(Object.keys(q).sort()).toEqual([
    'autostart_job_count',
    'enabled',
    'host_name',
    'name',
    'schedule_name',
    'title',
  ]);
  expect(
    isString(q.name) && isString(q.title) && typeof q.enabled === 'boolean' && isString(q.schedule_name),
  ).toBe(true);
  expect(maybe(isString)(q.host_name) && maybe(isInt)(q.autostart_job_count)).toBe(true);
}

describe("the Haskell CLI's calls", () => {
  let d: ApiDaemon;
  let restarted: DaemonProcess | undefined;
  let base: string;
  /** One request as Http.hs makes it (no Content-Type; http-client's defaults otherwise). */
  const call = async (
    method: string,
    url: string,
    body?: unknown,
  ): Promise<{ status: number; text: string; type: string | null }> => {
    const headers: Record<string, string> = {
      'user-agent': 'Batchd CLI',
      'accept-language': 'en',
      authorization: AUTH,
    };
    const response = await fetch(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body: new TextEncoder().encode(JSON.stringify(body)) }),
    });
    return {
      status: response.status,
      text: await response.text(),
      type: response.headers.get('content-type'),
    };
  };
  const ok = async <T>(method: string, url: string, body?: unknown): Promise<T> => {
    const r = await call(method, url, body);
    expect(r.status, `${method} ${url}: ${r.text}`).toBe(200);
    return JSON.parse(r.text) as T;
  };

  beforeAll(async () => {
    d = await startApiDaemon({
      manager: { auth: { basic: true, token: true } },
      // batchd's retention of monitor samples, in days (its sample batchd.yaml sets it).
      config: { storage: { metric_records: 1 } },
      jobTypes: {
        echo: { template: "printf '%s\\n' $message", params: [{ name: 'message', type: 'String' }] },
        fail: { template: 'exit 3', params: [] },
        sleep: { template: 'sleep 30', params: [] },
      },
      beforeStart: async (env) => {
        await new UserStore(path.join(env.etc, 'users.yaml')).addUser('root', 'rootpassword', {
          superuser: true,
        });
      },
    });
    base = `${d.url}/batchd`;
  }, 60_000);

  afterAll(async () => {
    await restarted?.stop();
    await d?.stop();
  });

  it('sends the request shapes this test replays (as read from the CLI source)', () => {
    const http = readFileSync(original('src', 'Batchd', 'Client', 'Http.hs'), 'utf8');
    expect(http).toContain('requestBody = RequestBodyLBS json');
    expect(http).not.toContain('Content-Type');
    expect(http).toContain('if responseStatus rs == ok200');
    const actions = readFileSync(original('src', 'Batchd', 'Client', 'Actions.hs'), 'utf8');
    expect(actions).toContain('let url = baseUrl </> "queue" </> qname </> "jobs" ++ statusStr');
  });

  it("answers OPTIONS on the manager URL with batchd's method names, without credentials", async () => {
    const r = await fetch(base, { method: 'OPTIONS', headers: { 'user-agent': 'Batchd CLI' } });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual(['basic']);
  });

  it('lists, adds, updates and deletes queues', async () => {
    const queues = await ok<Json[]>('GET', `${base}/queue`);
    queues.forEach(expectQueue);
    await ok('POST', `${base}/queue`, {
      name: 'cli',
      title: 'cli',
      enabled: true,
      schedule_name: 'anytime',
      host_name: null,
      autostart_job_count: null,
    });
    await ok('PUT', `${base}/queue/cli`, { enabled: false, title: 'From the CLI', autostart_job_count: 5 });
    const cli = await ok<Json>('GET', `${base}/queue/cli`);
    expectQueue(cli);
    expect(cli).toMatchObject({ enabled: false, title: 'From the CLI', autostart_job_count: 5 });
    await ok('DELETE', `${base}/queue/cli?forced=true`);
    expect((await call('GET', `${base}/queue/cli`)).status).toBe(404);
  });

  it('enqueues a whole JobInfo, lists it by status, views it with its results, and counts it', async () => {
    const jobInfo = {
      id: 0,
      queue: 'default',
      type: 'echo',
      seq: 0,
      user_name: 'root',
      create_time: '1858-11-17T00:00:00Z',
      start_time: null,
      status: 'New',
      try_count: 0,
      host_name: null,
      notes: 'from the CLI',
      result_time: null,
      exit_code: null,
      stdout: null,
      stderr: null,
      params: { message: 'hello haskell' },
    };
    const id = await ok<number>('POST', `${base}/queue/default`, jobInfo);
    expect(isInt(id)).toBe(true);
    const deadline = Date.now() + 20_000;
    while ((await ok<Json[]>('GET', `${base}/queue/default/jobs?status=done`)).length === 0) {
      if (Date.now() > deadline) throw new Error('the job did not end in time');
      await new Promise((r) => setTimeout(r, 100));
    }
    const all = await ok<Json[]>('GET', `${base}/queue/default/jobs?status=all`);
    all.forEach(expectJobInfo);
    expect(all).toEqual([
      expect.objectContaining({ id, seq: id, status: 'Done', notes: 'from the CLI', user_name: 'root' }),
    ]);
    expect(await ok('GET', `${base}/queue/default/jobs`)).toEqual([]); // default: New only

    const job = await ok<Json>('GET', `${base}/job/${id}`);
    expectJobInfo(job);
    expect(job).toMatchObject({
      exit_code: 0,
      stdout: 'hello haskell\n',
      params: { message: 'hello haskell' },
    });
    const results = await ok<Json[]>('GET', `${base}/job/${id}/results`);
    expect(results).toEqual([
      {
        job_id: id,
        time: expect.any(String) as unknown,
        exit_code: 0,
        stdout: 'hello haskell\n',
        stderr: '',
      },
    ]);
    expect(await ok('GET', `${base}/job/${id}/results/last`)).toEqual(results[0]);

    const stats = await ok<Record<string, Record<string, number>>>('GET', `${base}/stats`);
    expect(stats).toEqual({ default: { done: 1 } });
    expect(await ok('GET', `${base}/stats/default`)).toEqual({ done: 1 });
    expect(await ok('GET', `${base}/jobs?status=all`)).toHaveLength(1);
  });

  /** The queue's New jobs as the CLI's `batch ls` prints them: `#id: [seq]`, in the order listed. */
  const listed = async (queue: string): Promise<[number, number][]> =>
    (await ok<Json[]>('GET', `${base}/queue/${queue}/jobs`)).map((j) => [j.id as number, j.seq as number]);
  const waitStatus = async (id: number, status: string): Promise<Json> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const job = await ok<Json>('GET', `${base}/job/${id}`);
      if (job.status === status) return job;
      if (Date.now() > deadline) throw new Error(`job ${id} is ${String(job.status)}, not ${status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('renumbers seq on priority first/more/less/last as batchd did, New jobs listed in start order', async () => {
    await ok('POST', `${base}/queue`, {
      name: 'order',
      title: 'order',
      enabled: false,
      schedule_name: 'anytime',
    });
    const enqueue = (message: string): Promise<number> =>
      ok<number>('POST', `${base}/queue/order`, { type: 'echo', params: { message } });
    const a = await enqueue('a');
    const b = await enqueue('b');
    const c = await enqueue('c');
    expect(await listed('order')).toEqual([
      [a, a],
      [b, b],
      [c, c],
    ]);
    // first: c starts first and takes the lowest seq; the others keep their order behind it.
    await ok('PUT', `${base}/job/${c}`, { priority: 'first' });
    expect(await listed('order')).toEqual([
      [c, a],
      [a, b],
      [b, c],
    ]);
    expect(await ok<Json>('GET', `${base}/job/${c}`)).toMatchObject({ seq: a });
    // more: b trades places and seqs with the job ahead of it (batchd swapped the two seqs).
    await ok('PUT', `${base}/job/${b}`, { priority: 'more' });
    expect(await listed('order')).toEqual([
      [c, a],
      [b, b],
      [a, c],
    ]);
    await ok('PUT', `${base}/job/${c}`, { priority: 'last' });
    await ok('PUT', `${base}/job/${a}`, { priority: 'less' });
    expect((await listed('order')).map(([id]) => id)).toEqual([b, c, a]);
    // batchd's DELETE /queue/:q/:seq takes the seq the list shows: the front job here.
    const front = (await listed('order'))[0] as [number, number];
    await ok('DELETE', `${base}/queue/order/${front[1]}`);
    expect((await listed('order')).map(([id]) => id)).toEqual([c, a]);
    expect((await call('GET', `${base}/job/${b}`)).status).toBe(404);
  });

  it("changes a job's notes, host, start time, queue and status as `batch job ID` sends them", async () => {
    await ok('POST', `${base}/queue`, {
      name: 'hold',
      title: 'hold',
      enabled: false,
      schedule_name: 'anytime',
    });
    const a = await ok<number>('POST', `${base}/queue/hold`, { type: 'echo', params: { message: 'a' } });
    const at = new Date(Date.now() + 3_600_000).toISOString();
    await ok('PUT', `${base}/job/${a}`, { notes: 'changed', host_name: '*', start_time: at });
    expect(await ok<Json>('GET', `${base}/job/${a}`)).toMatchObject({
      notes: 'changed',
      host_name: null,
      start_time: at,
    });
    await ok('PUT', `${base}/job/${a}`, { start_time: null });
    expect(await ok<Json>('GET', `${base}/job/${a}`)).toMatchObject({ start_time: null, notes: 'changed' });
    // `-s Failed -n TEXT`: the notes are set, then the job is cancelled (it shows as Failed).
    await ok('PUT', `${base}/job/${a}`, { status: 'Failed', notes: 'not tonight' });
    expect(await ok<Json>('GET', `${base}/job/${a}`)).toMatchObject({
      status: 'Failed',
      notes: 'cancelled; not tonight',
    });
    await ok('PUT', `${base}/job/${a}`, { status: 'New' });
    expect(await ok<Json>('GET', `${base}/job/${a}`)).toMatchObject({ status: 'New' });
    await ok('PUT', `${base}/job/${a}`, { status: 'New' }); // already New: no change, as in batchd
    for (const status of ['Done', 'Processing', 'Postponed', 'Waiting', 'new']) {
      const refused = await call('PUT', `${base}/job/${a}`, { status });
      expect(refused.status, status).toBe(400);
      expect(refused.type).toMatch(/^text\/plain/);
    }
    // UpdateList's queue_name, and `-m QUEUE` ({move}): the job runs in the queue it was moved to.
    await ok('PUT', `${base}/job/${a}`, { queue_name: 'order' });
    expect(await ok<Json>('GET', `${base}/job/${a}`)).toMatchObject({ queue: 'order', status: 'New' });
    await ok('PUT', `${base}/job/${a}`, { move: 'default' });
    const done = await waitStatus(a, 'Done');
    expect(done).toMatchObject({ queue: 'default', stdout: 'a\n' });
    const again = await call('PUT', `${base}/job/${a}`, { status: 'New' });
    expect(again.status).toBe(409);
    const missing = await call('GET', `${base}/job/987654`);
    expect(missing.status).toBe(404);
    expect(missing.text).toBe('Job not found: 987654');
  });

  it('deletes a Done, Failed or New job with DELETE /job/:id as batchd did; a running one is stopped', async () => {
    const done = await ok<number>('POST', `${base}/queue/default`, {
      type: 'echo',
      params: { message: 'x' },
    });
    const failed = await ok<number>('POST', `${base}/queue/default`, { type: 'fail', params: {} });
    await waitStatus(done, 'Done');
    await waitStatus(failed, 'Failed');
    const queued = await ok<number>('POST', `${base}/queue/hold`, { type: 'echo', params: { message: 'q' } });
    for (const id of [done, failed, queued]) {
      expect(await ok('DELETE', `${base}/job/${id}`)).toBe('done');
      expect((await call('GET', `${base}/job/${id}`)).status).toBe(404);
    }
    const all = await ok<Json[]>('GET', `${base}/jobs?status=all`);
    expect(all.map((j) => j.id)).not.toEqual(expect.arrayContaining([done]));
    expect(all.map((j) => j.id)).not.toEqual(expect.arrayContaining([failed]));
    const running = await ok<number>('POST', `${base}/queue/default`, { type: 'sleep', params: {} });
    await waitStatus(running, 'Processing');
    expect(await ok('DELETE', `${base}/job/${running}`)).toBe('done');
    expect(await waitStatus(running, 'Failed')).toMatchObject({ notes: 'cancelled' });
  });

  it('lists, adds and deletes schedules as ScheduleInfo', async () => {
    await ok('POST', `${base}/schedule`, {
      name: 'nights',
      weekdays: ['Monday', 'Friday'],
      time: [{ begin: '22:00:00', end: '23:30:00' }],
    });
    const schedules = await ok<Json[]>('GET', `${base}/schedule`);
    expect(schedules).toEqual([
      { name: 'anytime', weekdays: null, time: null },
      { name: 'nights', weekdays: ['Monday', 'Friday'], time: [{ begin: '22:00:00', end: '23:30:00' }] },
    ]);
    await ok('DELETE', `${base}/schedule/nights`);
    expect(await ok<Json[]>('GET', `${base}/schedule`)).toHaveLength(1);
  });

  it('lists job types as JobType and hosts as names', async () => {
    const types = await ok<Json[]>('GET', `${base}/type`);
    for (const t of types) {
      expect(isString(t.name) && maybe(isString)(t.title) && Array.isArray(t.template)).toBe(true);
      for (const p of t.params as Json[])
        expect(['String', 'Integer', 'InputFile', 'OutputFile']).toContain(p.type);
    }
    expect(types.find((t) => t.name === 'fail')).toMatchObject({ on_fail: 'continue', template: ['exit 3'] });
    expect(await ok('GET', `${base}/host`)).toEqual([]);
  });

  it('lists users, adds one, changes its password, and grants and revokes a permission as [id, UserPermission]', async () => {
    await ok('POST', `${base}/user`, { name: 'carol', password: 'carolpassword' });
    expect(await ok<string[]>('GET', `${base}/user`)).toEqual(['carol', 'root']);
    await ok('PUT', `${base}/user/carol`, { name: 'carol', password: 'carolpassword2' });
    const grantId = await ok<number>('POST', `${base}/user/carol/permissions`, {
      user_name: 'carol',
      permission: 'ViewJobs',
      queue_name: 'default',
      type_name: null,
      host_name: null,
    });
    const grants = await ok<[number, Json][]>('GET', `${base}/user/carol/permissions`);
    expect(grants).toEqual([
      [
        grantId,
        {
          user_name: 'carol',
          permission: 'ViewJobs',
          queue_name: 'default',
          type_name: null,
          host_name: null,
        },
      ],
    ]);
    expect(PERMISSIONS).toContain(grants[0]?.[1].permission);
    const carol = `Basic ${Buffer.from('carol:carolpassword2').toString('base64')}`;
    const asCarol = await fetch(`${base}/queue/default/jobs?status=all`, {
      headers: { authorization: carol },
    });
    expect(asCarol.status).toBe(200);
    await ok('DELETE', `${base}/user/carol/permissions/${grantId}`);
    expect(await ok('GET', `${base}/user/carol/permissions`)).toEqual([]);
    const refused = await fetch(`${base}/queue/default/jobs`, { headers: { authorization: carol } });
    expect(refused.status).toBe(403);
  });

  it('serves monitor samples as MetricRecord lists and EKG trees', async () => {
    const plain = await ok<Json[]>('GET', `${base}/monitor/current/plain`);
    expect(plain.length).toBeGreaterThan(0);
    for (const r of plain) {
      expect(isString(r.name) && isTime(r.time) && r.daemon === 'Both').toBe(true);
      expect(['c', 'g', 'l', 'd']).toContain(r.kind);
    }
    const byPrefix = await ok<Json[]>('GET', `${base}/monitor/batchd.queue/current/plain`);
    expect(byPrefix.map((r) => r.name)).toContain('batchd.queue.default.jobs.Done');
    const tree = await ok<Json>('GET', `${base}/monitor/current/tree`);
    expect(tree).toHaveProperty(['rts', 'gc', 'current_bytes_used', 'type'], 'g');
    expect(await ok('GET', `${base}/monitor/batchd.jobs.Done/last`)).toEqual({
      batchd: { jobs: { Done: { type: 'g', val: expect.any(Number) as unknown } } },
    });
  });

  it('keeps job numbers and monitor samples across a restart of the daemon', async () => {
    const before = await ok<Json[]>('GET', `${base}/jobs?status=all`);
    expect(before.length).toBeGreaterThan(0);
    const sampled = await ok<Json[]>('GET', `${base}/monitor/batchd.queue.default/query?last=3600`);
    const time = String(sampled.at(-1)?.time);
    const window = `from=${new Date(Date.parse(time) - 1).toISOString()}&to=${new Date(Date.parse(time) + 1).toISOString()}`;
    const kept = sampled.filter((r) => r.time === time);
    expect(kept.map((r) => r.name)).toContain('batchd.queue.default.jobs.Done');
    await d.daemon.stop();
    restarted = await startDaemon(d.env.etc, d.env.spool);
    const daemon = restarted;
    const url = await waitFor(
      () =>
        daemon
          .records()
          .find((r) => typeof r.url === 'string' && String(r.msg).startsWith('HTTP API listening'))?.url as
          string | undefined,
      10_000,
      'the HTTP API to listen',
    );
    base = `${url}/batchd`;
    const after = await ok<Json[]>('GET', `${base}/jobs?status=all`);
    expect(after.map((j) => [j.id, j.params])).toEqual(before.map((j) => [j.id, j.params]));
    // batchd kept its samples in its database (storage.metric_records days); so does the spool.
    expect(await ok<Json[]>('GET', `${base}/monitor/batchd.queue.default/query?${window}`)).toEqual(kept);
  });
});
