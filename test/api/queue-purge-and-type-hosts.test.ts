import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

import {
  countsSchema,
  errorBodySchema,
  queuePurgeSchema,
  submitResponseSchema,
} from '../../daemon/protocol/index.ts';
import { blockUntil, touch, waitForState, workDir } from '../helpers/dispatch.ts';
import { jobDir, jobsIn, readState } from '../helpers/env.ts';
import { type Auth, type InProcessApi, startApi, writeUsersFile } from './api-helpers.ts';

/**
 * batchd's `DELETE /queue/:q?status=S` (bulk delete by state, made safe: history deleted only for
 * finished jobs, queued jobs cancelled, running refused) and `GET /queue/:q/type/:t/host`.
 */
const PASSWORD = 'purge-password';
const ROOT: Auth = { basic: ['root', PASSWORD] };
const MANAGER: Auth = { basic: ['manager', PASSWORD] }; // ManageQueues for "work"
const JOBS_ONLY: Auth = { basic: ['jobs-only', PASSWORD] }; // ManageJobs everywhere, no ManageQueues
const ELSEWHERE: Auth = { basic: ['elsewhere', PASSWORD] }; // ManageQueues for another queue
const ECHO_ON_BOX: Auth = { basic: ['echo-on-box', PASSWORD] };
const ANY_CREATE: Auth = { basic: ['any-create', PASSWORD] };

describe('DELETE /queue/:q?status= and GET /queue/:q/type/:t/host', () => {
  let t: InProcessApi;
  beforeAll(async () => {
    t = await startApi({
      auth: { basic: true },
      queues: { work: null, held: { enabled: false } },
    });
    await writeUsersFile(
      t.env.etc,
      [
        { name: 'root', grants: [{ permission: 'SuperUser' }] },
        { name: 'manager', grants: [{ permission: 'ManageQueues', queue_name: 'work' }] },
        { name: 'jobs-only', grants: [{ permission: 'ManageJobs' }] },
        { name: 'elsewhere', grants: [{ permission: 'ManageQueues', queue_name: 'held' }] },
        {
          name: 'echo-on-box',
          grants: [{ permission: 'CreateJobs', queue_name: 'work', type_name: 'echo', host_name: 'box' }],
        },
        { name: 'any-create', grants: [{ permission: 'CreateJobs', queue_name: 'work' }] },
      ],
      PASSWORD,
    );
    for (const host of ['box', 'crate']) {
      t.env.writeConfig(`hosts/${host}.yaml`, { host_name: '127.0.0.1', user_name: 'batch' });
      t.daemon.config.reloadFile(path.join(t.env.etc, 'hosts', `${host}.yaml`));
    }
  }, 60_000);
  afterAll(async () => t.close());

  const submit = async (queue: string, body: unknown): Promise<string> => {
    const res = await t.json('POST', `/queue/${queue}`, { auth: ROOT, body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return submitResponseSchema.parse(res.body).jobs[0] ?? '';
  };
  const purge = (queue: string, query: string, auth: Auth = ROOT) =>
    t.json('DELETE', `/queue/${queue}?${query}`, { auth });
  const counts = async (queue: string) =>
    countsSchema.parse(
      z.record(z.string(), z.unknown()).parse((await t.json('GET', `/stats/${queue}`, { auth: ROOT })).body)[
        queue
      ],
    );
  const code = (body: unknown): string => errorBodySchema.parse(body).error.code;

  describe('DELETE /queue/:q?status=S', () => {
    let done: string[];
    let failed: string;
    beforeAll(async () => {
      done = [await submit('work', { command: 'true' }), await submit('work', { command: 'true' })];
      failed = await submit('work', { command: 'exit 4' });
      for (const id of done) await waitForState(t.env, id, 'done');
      await waitForState(t.env, failed, 'failed');
    });

    it('status=done deletes the done job folders only, and says how many', async () => {
      expect((await counts('work')).done).toBe(2);
      const res = await purge('work', 'status=done');
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(queuePurgeSchema.parse(res.body)).toEqual({
        queue: 'work',
        status: 'done',
        deleted: 2,
        cancelled: 0,
        skipped: [],
      });
      for (const id of done) {
        expect(existsSync(jobDir(t.env.spool, 'work', 'done', id))).toBe(false);
        expect((await t.json('GET', `/job/${id}`, { auth: ROOT })).status).toBe(404);
      }
      expect(await counts('work')).toMatchObject({ done: 0, failed: 1 });
      // Nothing is left half-deleted beside the queues.
      expect(readdirSync(t.env.spool).filter((n) => n.startsWith('.deleted'))).toEqual([]);
    });

    it("takes batchd's status names (Failed) and needs ManageQueues for the queue (403 otherwise)", async () => {
      for (const auth of [JOBS_ONLY, ELSEWHERE]) {
        const denied = await purge('work', 'status=Failed', auth);
        expect([denied.status, code(denied.body)]).toEqual([403, 'FORBIDDEN']);
      }
      expect((await t.json('DELETE', '/queue/work?status=failed')).status).toBe(401);
      expect(existsSync(jobDir(t.env.spool, 'work', 'failed', failed))).toBe(true);
      const res = await purge('work', 'status=Failed', MANAGER);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(queuePurgeSchema.parse(res.body)).toMatchObject({ status: 'failed', deleted: 1 });
      expect(existsSync(jobDir(t.env.spool, 'work', 'failed', failed))).toBe(false);
    });

    it('status=queued cancels the queued jobs: they stay, in cancelled/, with the reason', async () => {
      const ids = [await submit('held', { command: 'true' }), await submit('held', { command: 'true' })];
      const res = await purge('held', 'status=New');
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(queuePurgeSchema.parse(res.body)).toEqual({
        queue: 'held',
        status: 'queued',
        deleted: 0,
        cancelled: 2,
        skipped: [],
      });
      expect(jobsIn(t.env.spool, 'held', 'queued')).toEqual([]);
      for (const id of ids) {
        const state = readState(t.env.spool, 'held', 'cancelled', id);
        expect(state.last?.error).toBe('cancelled with all queued jobs of held (API)');
      }
      // And cancelled ones are history: deleted by status=cancelled.
      const gone = queuePurgeSchema.parse((await purge('held', 'status=cancelled')).body);
      expect(gone.deleted).toBe(2);
      expect(await counts('held')).toMatchObject({ queued: 0, cancelled: 0 });
    });

    it('status=running is refused (409) with what to do instead; the job keeps running', async () => {
      const go = path.join(workDir(t.env), 'go');
      const id = await submit('work', { command: blockUntil(go) });
      await waitForState(t.env, id, 'running');
      try {
        const res = await purge('work', 'status=running');
        expect([res.status, code(res.body)]).toEqual([409, 'CONFLICT']);
        expect(errorBodySchema.parse(res.body).error.message).toContain('cancel each');
        expect(jobsIn(t.env.spool, 'work', 'running')).toEqual([id]);
      } finally {
        touch(go);
      }
      await waitForState(t.env, id, 'done');
    });

    it('refuses status=all, an unknown status, status with forced (400), and an unknown queue (404)', async () => {
      for (const query of ['status=all', 'status=sideways', 'status=done&forced=true']) {
        const res = await purge('work', query);
        expect([res.status, code(res.body)], query).toEqual([400, 'REQUEST_INVALID']);
      }
      const unknown = await purge('nope', 'status=done');
      expect([unknown.status, code(unknown.body)]).toEqual([404, 'UNKNOWN_QUEUE']);
      expect(t.daemon.queues.has('work')).toBe(true);
    });
  });

  describe('GET /queue/:q/type/:t/host', () => {
    it("lists __default__ and every host for an unrestricted caller (batchd's answer)", async () => {
      expect(await t.json('GET', '/queue/work/type/echo/host', { auth: ROOT })).toEqual({
        status: 200,
        body: ['__default__', 'box', 'crate'],
      });
      expect((await t.json('GET', '/queue/work/type/sleep/host', { auth: ANY_CREATE })).body).toEqual([
        '__default__',
        'box',
        'crate',
      ]);
    });

    it("lists only the hosts the caller's CreateJobs grants allow for that type and queue", async () => {
      expect((await t.json('GET', '/queue/work/type/echo/host', { auth: ECHO_ON_BOX })).body).toEqual([
        'box',
      ]);
      expect((await t.json('GET', '/queue/work/type/sleep/host', { auth: ECHO_ON_BOX })).body).toEqual([]);
      expect((await t.json('GET', '/queue/held/type/echo/host', { auth: ECHO_ON_BOX })).body).toEqual([]);
      expect((await t.json('GET', '/queue/work/type/echo/host', { auth: MANAGER })).body).toEqual([]);
    });

    it('answers 404 for an unknown type or queue, 400 for a bad name, 401 without credentials', async () => {
      const type = await t.json('GET', '/queue/work/type/nosuch/host', { auth: ROOT });
      expect([type.status, code(type.body)]).toEqual([404, 'UNKNOWN_TYPE']);
      const queue = await t.json('GET', '/queue/nope/type/echo/host', { auth: ROOT });
      expect([queue.status, code(queue.body)]).toEqual([404, 'UNKNOWN_QUEUE']);
      const bad = await t.json('GET', '/queue/work/type/%20x/host', { auth: ROOT });
      expect([bad.status, code(bad.body)]).toEqual([400, 'NAME_INVALID']);
      expect((await t.json('GET', '/queue/work/type/echo/host')).status).toBe(401);
    });
  });
});
