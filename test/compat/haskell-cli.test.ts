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
      jobTypes: {
        echo: { template: "printf '%s\\n' $message", params: [{ name: 'message', type: 'String' }] },
        fail: { template: 'exit 3', params: [] },
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

  it('reorders, moves, updates, re-queues and deletes jobs with PUT and DELETE /job/:id', async () => {
    await ok('POST', `${base}/queue`, {
      name: 'hold',
      title: 'hold',
      enabled: false,
      schedule_name: 'anytime',
    });
    const a = await ok<number>('POST', `${base}/queue/hold`, { type: 'echo', params: { message: 'a' } });
    const b = await ok<number>('POST', `${base}/queue/hold`, { type: 'echo', params: { message: 'b' } });
    await ok('PUT', `${base}/job/${b}`, { priority: 'first' });
    await ok('PUT', `${base}/job/${a}`, { notes: 'changed', host_name: '*', start_time: null });
    expect(await ok<Json>('GET', `${base}/job/${a}`)).toMatchObject({ notes: 'changed', host_name: null });
    await ok('PUT', `${base}/job/${a}`, { move: 'default' });
    expect(await ok<Json>('GET', `${base}/job/${a}`)).toMatchObject({ queue: 'default' });
    await ok('DELETE', `${base}/job/${b}`);
    expect(await ok<Json>('GET', `${base}/job/${b}`)).toMatchObject({ status: 'Failed', notes: 'cancelled' });
    await ok('PUT', `${base}/job/${b}`, { status: 'New' });
    expect(await ok<Json>('GET', `${base}/job/${b}`)).toMatchObject({ status: 'New' });
    const refused = await call('PUT', `${base}/job/${b}`, { status: 'Postponed' });
    expect(refused.status).toBe(400);
    expect(refused.type).toMatch(/^text\/plain/);
    const missing = await call('GET', `${base}/job/987654`);
    expect(missing.status).toBe(404);
    expect(missing.text).toBe('Job not found: 987654');
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

  it('keeps job numbers across a restart of the daemon', async () => {
    const before = await ok<Json[]>('GET', `${base}/jobs?status=all`);
    expect(before.length).toBeGreaterThan(0);
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
  });
});
