import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { queuedInOrder } from '../../daemon/dispatch/reorder.ts';
import { LocalExecutor } from '../../daemon/executors/local.ts';
import type { Executor } from '../../daemon/jobs/executor.ts';
import { errorBodySchema, jobInfoSchema, submitResponseSchema } from '../../daemon/protocol/index.ts';
import { ledger, record, waitForState, workDir } from '../helpers/dispatch.ts';
import { jobDir, readState } from '../helpers/env.ts';
import { type Auth, eventually, type InProcessApi, startApi, writeUsersFile } from './api-helpers.ts';

/**
 * `PUT /job/:id` beyond priority/move/notes: batchd's field update of a queued job's start time
 * (`not_before`, batchd's `start_time`) and host (`host`, batchd's `host_name`), and batchd's
 * relative priorities (`more`/`less` swap with the neighbour, `first`/`last`). Each change is
 * checked in state.yaml and in what the dispatcher then does.
 */
const PASSWORD = 'fields-password';
const ROOT: Auth = { basic: ['root', PASSWORD] };
const VIEWER: Auth = { basic: ['viewer', PASSWORD] };
const ORDER_MANAGER: Auth = { basic: ['order-manager', PASSWORD] };

describe('PUT /job/:id: start time, host and relative priority', () => {
  let t: InProcessApi;
  const ranOnBox: string[] = []; // jobs the "box" host's executor was given
  beforeAll(async () => {
    t = await startApi({
      auth: { basic: true },
      config: { dispatcher: { workers: 1 } },
      queues: {
        hold: { enabled: false },
        hosted: { enabled: false },
        order: { enabled: false },
      },
    });
    await writeUsersFile(
      t.env.etc,
      [
        { name: 'root', grants: [{ permission: 'SuperUser' }] },
        { name: 'viewer', grants: [{ permission: 'ViewJobs' }] },
        { name: 'order-manager', grants: [{ permission: 'ManageJobs', queue_name: 'order' }] },
      ],
      PASSWORD,
    );
    t.env.writeConfig('hosts/box.yaml', { host_name: '127.0.0.1', user_name: 'batch' });
    t.daemon.config.reloadFile(path.join(t.env.etc, 'hosts', 'box.yaml'));
    // Jobs sent to "box" run on this machine, through a real executor that notes each job it is
    // given: what matters here is which host the dispatcher picked (SSH itself: test/ssh/).
    const local = new LocalExecutor(t.daemon.log);
    const box: Executor = {
      name: 'box',
      run: (request, signal) => {
        ranOnBox.push(request.jobId);
        return local.run(request, signal);
      },
      close: () => local.close(),
    };
    t.daemon.setExecutorResolver((host) => (host === 'box' ? box : undefined));
  }, 60_000);
  afterAll(async () => t.close());

  const submit = async (queue: string, body: Record<string, unknown>): Promise<string> => {
    const res = await t.json('POST', `/queue/${queue}`, { auth: ROOT, body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return submitResponseSchema.parse(res.body).jobs[0] ?? '';
  };
  const put = (id: string, body: unknown, auth: Auth = ROOT) => t.json('PUT', `/job/${id}`, { auth, body });
  const code = (body: unknown): string => errorBodySchema.parse(body).error.code;
  const enable = async (queue: string, enabled: boolean): Promise<void> => {
    expect((await t.json('PUT', `/queue/${queue}`, { auth: ROOT, body: { enabled } })).status).toBe(200);
  };
  const notBeforeOnDisk = (queue: string, id: string): unknown =>
    (
      JSON.parse(readFileSync(path.join(jobDir(t.env.spool, queue, 'queued', id), 'state.yaml'), 'utf8')) as {
        not_before?: string;
      }
    ).not_before;
  const inHour = (): string => new Date(Date.now() + 3_600_000).toISOString();

  it('start_time: null releases a job held by its not_before; it runs at once', async () => {
    const id = await submit('default', { command: 'true', not_before: inHour() });
    await new Promise((r) => setTimeout(r, 300));
    expect(jobInfoSchema.parse((await t.json('GET', `/job/${id}`, { auth: ROOT })).body).status).toBe(
      'queued',
    );
    const res = await put(id, { start_time: null });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(jobInfoSchema.parse(res.body).not_before).toBeNull();
    await waitForState(t.env, id, 'done', 10_000);
  });

  it('not_before holds a queued job back when its queue starts running; the change is in state.yaml and its history', async () => {
    const held = await submit('hold', { command: 'true' });
    const at = inHour();
    const res = await put(held, { not_before: at });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(jobInfoSchema.parse(res.body).not_before).toBe(at);
    expect(notBeforeOnDisk('hold', held)).toBe(at);
    expect(readState(t.env.spool, 'hold', 'queued', held).history.at(-1)?.reason).toBe(
      `not_before set to ${at}`,
    );
    const free = await submit('hold', { command: 'true' });
    await enable('hold', true);
    try {
      await waitForState(t.env, free, 'done', 10_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(jobInfoSchema.parse((await t.json('GET', `/job/${held}`, { auth: ROOT })).body).status).toBe(
        'queued',
      );
      // A local time without a zone is taken as the daemon's local time, as a job file's is.
      const past = await put(held, { start_time: '2020-01-01 00:00:00' });
      expect(jobInfoSchema.parse(past.body).not_before).toBe(new Date(2020, 0, 1).toISOString());
      await waitForState(t.env, held, 'done', 10_000);
    } finally {
      await enable('hold', false);
    }
  });

  it('host_name moves a queued job to another host ("*" clears it); the dispatcher gives it to that host\'s executor', async () => {
    const id = await submit('hosted', { command: 'echo ran' });
    const onBox = await put(id, { host_name: 'box' });
    expect(onBox.status, JSON.stringify(onBox.body)).toBe(200);
    expect(jobInfoSchema.parse(onBox.body).host).toBe('box');
    expect(readState(t.env.spool, 'hosted', 'queued', id).history.at(-1)?.reason).toBe('host set to box');
    const cleared = await put(id, { host_name: '*' });
    expect(jobInfoSchema.parse(cleared.body).host).toBeNull();
    // batchd's field update takes several fields at once: one write for start time and host.
    const several = await put(id, { host: 'box', notes: 'on the box', not_before: null });
    expect(several.status, JSON.stringify(several.body)).toBe(200);
    expect(jobInfoSchema.parse(several.body)).toMatchObject({
      host: 'box',
      notes: 'on the box',
      not_before: null,
    });
    expect(
      readState(t.env.spool, 'hosted', 'queued', id)
        .history.map((h) => h.reason)
        .slice(-2),
    ).toEqual(['not_before cleared, host set to box', 'notes changed']);
    await enable('hosted', true);
    try {
      await waitForState(t.env, id, 'done', 10_000);
    } finally {
      await enable('hosted', false);
    }
    const results = (await t.json<{ host: string }[]>('GET', `/job/${id}/results`, { auth: ROOT })).body;
    expect(results.map((r) => r.host)).toEqual(['box']);
    expect(ranOnBox).toEqual([id]);
  });

  it('refuses an unknown host (422), a bad time (422), mixed changes (422), a finished job (409), an unknown job (404)', async () => {
    const id = await submit('hold', { command: 'true' });
    const unknownHost = await put(id, { host_name: 'nowhere' });
    expect([unknownHost.status, code(unknownHost.body)]).toEqual([422, 'UNKNOWN_HOST']);
    expect(errorBodySchema.parse(unknownHost.body).error.details?.[0]?.field).toBe('host');
    const badTime = await put(id, { start_time: 'soon' });
    expect([badTime.status, code(badTime.body)]).toEqual([422, 'ENTITY_INVALID']);
    const both = await put(id, { start_time: inHour(), not_before: inHour() });
    expect([both.status, code(both.body)]).toEqual([422, 'ENTITY_INVALID']);
    const mixed = await put(id, { priority: 3, host: 'box' });
    expect([mixed.status, code(mixed.body)]).toEqual([422, 'ENTITY_INVALID']);
    expect(readState(t.env.spool, 'hold', 'queued', id).history).toHaveLength(1); // nothing written
    const done = await submit('default', { command: 'true' });
    await waitForState(t.env, done, 'done', 10_000);
    const finished = await put(done, { not_before: inHour() });
    expect([finished.status, code(finished.body)]).toEqual([409, 'CONFLICT']);
    const finishedHost = await put(done, { host: 'box' });
    expect(finishedHost.status).toBe(409);
    expect((await put('20200101T000000.000Z-aaaaaa', { host: 'box' })).status).toBe(404);
  });

  it("needs ManageJobs for the job's queue: 401 without credentials, 403 for ViewJobs, 404 for another queue", async () => {
    const inHold = await submit('hold', { command: 'true' });
    const inOrder = await submit('order', { command: 'true' });
    expect((await t.json('PUT', `/job/${inHold}`, { body: { host: 'box' } })).status).toBe(401);
    const viewer = await put(inHold, { host: 'box' }, VIEWER);
    expect([viewer.status, code(viewer.body)]).toEqual([403, 'FORBIDDEN']);
    // Who may not even view the job's queue is not told that the job exists.
    expect((await put(inHold, { not_before: inHour() }, ORDER_MANAGER)).status).toBe(404);
    expect((await put(inHold, { priority: 'more' }, ORDER_MANAGER)).status).toBe(404);
    expect(readState(t.env.spool, 'hold', 'queued', inHold).history).toHaveLength(1);
    const allowed = await put(inOrder, { host: 'box' }, ORDER_MANAGER);
    expect(allowed.status, JSON.stringify(allowed.body)).toBe(200);
    expect((await t.json('DELETE', `/job/${inOrder}`, { auth: ROOT })).status).toBe(200);
  });

  it('priority more/less swap a job with its neighbour, first/last send it to the front/back; the dispatcher starts them in that order', async () => {
    const ledgerFile = path.join(workDir(t.env), 'order-ledger');
    const ids: Record<string, string> = {};
    for (const name of ['a', 'b', 'c', 'd'])
      ids[name] = await submit('order', { command: record(ledgerFile, name) });
    const nameOf = new Map(Object.entries(ids).map(([k, v]) => [v, k]));
    const order = (): string =>
      queuedInOrder(t.daemon.layout, 'order')
        .map((p) => nameOf.get(p.id))
        .join('');
    const priority = async (name: string, value: unknown): Promise<number> => {
      const res = await put(ids[name] ?? '', { priority: value });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return jobInfoSchema.parse(res.body).priority;
    };
    expect(order()).toBe('abcd');
    expect(await priority('c', 'more')).toBe(0);
    expect(order()).toBe('acbd');
    expect(await priority('a', 'less')).toBe(0);
    expect(order()).toBe('cabd');
    expect(await priority('d', 'first')).toBe(1);
    expect(order()).toBe('dcab');
    expect(await priority('b', 'more')).toBe(0);
    expect(order()).toBe('dcba');
    expect(await priority('c', 'last')).toBe(-1);
    expect(order()).toBe('dbac');
    expect(await priority('a', 'more')).toBe(0);
    expect(order()).toBe('dabc');
    // Across priorities the two trade places, priority and all: a takes d's, d takes a's.
    expect(await priority('a', 'more')).toBe(1);
    expect(order()).toBe('adbc');
    expect(jobInfoSchema.parse((await t.json('GET', `/job/${ids.d}`, { auth: ROOT })).body).priority).toBe(0);
    expect(readState(t.env.spool, 'order', 'queued', ids.d ?? '').history.at(-1)?.reason).toBe(
      `moved one place down (swapped with ${ids.a})`,
    );
    // Already at the front (or back): nothing changes.
    expect(await priority('a', 'first')).toBe(1);
    expect(await priority('a', 'more')).toBe(1);
    expect(await priority('c', 'less')).toBe(-1);
    expect(order()).toBe('adbc');
    await enable('order', true);
    try {
      await eventually(() => ledger(ledgerFile).length === 4, 15_000, 'the four jobs to run');
    } finally {
      await enable('order', false);
    }
    expect(ledger(ledgerFile)).toEqual(['a', 'd', 'b', 'c']);
  });

  it('priority more on a finished job is a conflict (409)', async () => {
    const done = await submit('default', { command: 'true' });
    await waitForState(t.env, done, 'done', 10_000);
    const res = await put(done, { priority: 'more' });
    expect([res.status, code(res.body)]).toEqual([409, 'CONFLICT']);
  });
});
