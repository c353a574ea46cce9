import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

import { errorBodySchema, queueInfoSchema, statsSchema } from '../../daemon/protocol/index.ts';
import { type InProcessApi, startApi } from './api-helpers.ts';

/** Queues and stats: every endpoint, its success and its errors (authentication disabled: everyone is a superuser). */
describe('queue and stats endpoints', () => {
  let t: InProcessApi;
  beforeAll(async () => {
    t = await startApi({ queues: { paused: { enabled: false, title: 'Paused' } } });
  });
  afterAll(async () => t.close());

  const expectError = (body: unknown, code: string): void => {
    expect(errorBodySchema.parse(body).error.code).toBe(code);
  };

  it('OPTIONS / lists no auth methods when authentication is disabled', async () => {
    expect(await t.json('OPTIONS', '/')).toEqual({ status: 200, body: [] });
  });

  it('GET /queue lists queues with settings and counts', async () => {
    const { status, body } = await t.json('GET', '/queue');
    expect(status).toBe(200);
    const queues = z.array(queueInfoSchema).parse(body);
    expect(queues.map((q) => q.name)).toEqual(['default', 'paused']);
    expect(queues[1]).toMatchObject({
      title: 'Paused',
      enabled: false,
      schedule_name: 'anytime',
      counts: { queued: 0 },
    });
  });

  it('POST /queue creates the folder and an atomic queue.yaml, and the daemon takes it at once', async () => {
    const { status, body } = await t.json('POST', '/queue', {
      body: { name: 'renders', title: 'Renders', parallel: 3, priority: 5 },
    });
    expect(status).toBe(201);
    expect(queueInfoSchema.parse(body)).toMatchObject({
      name: 'renders',
      title: 'Renders',
      parallel: 3,
      priority: 5,
    });
    const file = path.join(t.env.spool, 'renders', 'queue.yaml');
    expect(readFileSync(file, 'utf8')).toContain('parallel: 3');
    for (const folder of [
      'incoming',
      'queued',
      'running',
      'done',
      'failed',
      'cancelled',
      'rejected',
      'requests',
      'tasks',
    ]) {
      expect(existsSync(path.join(t.env.spool, 'renders', folder))).toBe(true);
    }
    const submitted = await t.json<{ jobs: string[] }>('POST', '/queue/renders', {
      body: { command: 'true' },
    });
    expect(submitted.status).toBe(201);
  });

  it('POST /queue refuses a duplicate (409), unknown fields and schedules (422), bad JSON (400), bad names (422)', async () => {
    const dup = await t.json('POST', '/queue', { body: { name: 'default' } });
    expect(dup.status).toBe(409);
    expectError(dup.body, 'ALREADY_EXISTS');
    const unknownField = await t.json('POST', '/queue', { body: { name: 'q1', colour: 'red' } });
    expect(unknownField.status).toBe(422);
    expectError(unknownField.body, 'ENTITY_INVALID');
    const schedule = await t.json<{ error: { details: { field: string }[] } }>('POST', '/queue', {
      body: { name: 'q2', schedule_name: 'never' },
    });
    expect(schedule.status).toBe(422);
    expectError(schedule.body, 'UNKNOWN_SCHEDULE');
    expect(schedule.body.error.details[0]?.field).toBe('schedule_name');
    const badJson = await t.json('POST', '/queue', { body: '{"name": ' });
    expect(badJson.status).toBe(400);
    expectError(badJson.body, 'BAD_JSON');
    const traversal = await t.json('POST', '/queue', { body: { name: '../escape' } });
    expect(traversal.status).toBe(422);
    for (const name of ['q1', 'q2', 'escape']) expect(existsSync(path.join(t.env.spool, name))).toBe(false);
    expect(existsSync(path.join(t.env.spool, '..', 'escape'))).toBe(false);
  });

  it('GET /queue/:q shows one queue; 404 for an unknown one; 400 for a bad name', async () => {
    expect(queueInfoSchema.parse((await t.json('GET', '/queue/paused')).body).enabled).toBe(false);
    const missing = await t.json('GET', '/queue/nope');
    expect(missing.status).toBe(404);
    expectError(missing.body, 'UNKNOWN_QUEUE');
    const bad = await t.json('GET', '/queue/.hidden');
    expect(bad.status).toBe(400);
    expectError(bad.body, 'NAME_INVALID');
  });

  it('PUT /queue/:q changes only the given fields, keeps comments, and null or "*" clears', async () => {
    const file = path.join(t.env.spool, 'paused', 'queue.yaml');
    writeFileSync(file, '# my comment\nenabled: false\ntitle: Paused\nhost_name: somewhere\n');
    t.daemon.queues.reload('paused');
    const { status, body } = await t.json('PUT', '/queue/paused', {
      body: { enabled: true, parallel: 2, host_name: '*' },
    });
    expect(status).toBe(200);
    expect(queueInfoSchema.parse(body)).toMatchObject({
      enabled: true,
      parallel: 2,
      title: 'Paused',
      host_name: null,
    });
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('# my comment');
    expect(text).not.toContain('host_name');
    const cleared = await t.json('PUT', '/queue/paused', { body: { parallel: null } });
    expect(queueInfoSchema.parse(cleared.body).parallel).toBeNull();
  });

  it('PUT /queue/:q refuses invalid values (422) and unknown queues (404)', async () => {
    const invalid = await t.json('PUT', '/queue/paused', { body: { parallel: 0 } });
    expect(invalid.status).toBe(422);
    expectError(invalid.body, 'ENTITY_INVALID');
    const type = await t.json('PUT', '/queue/paused', { body: { type: 'nosuchtype' } });
    expect(type.status).toBe(422);
    expect((await t.json('PUT', '/queue/nope', { body: { enabled: true } })).status).toBe(404);
  });

  it('DELETE /queue/:q refuses a non-empty queue (409) unless forced, and the default queue always', async () => {
    await t.json('POST', '/queue', { body: { name: 'scratch', enabled: false } });
    await t.json('POST', '/queue/scratch', { body: { command: 'true' } });
    const refused = await t.json('DELETE', '/queue/scratch');
    expect(refused.status).toBe(409);
    expectError(refused.body, 'NOT_EMPTY');
    expect(existsSync(path.join(t.env.spool, 'scratch'))).toBe(true);
    expect(await t.json('DELETE', '/queue/scratch?forced=true')).toEqual({ status: 200, body: { ok: true } });
    expect(existsSync(path.join(t.env.spool, 'scratch'))).toBe(false);
    expect((await t.json('GET', '/queue/scratch')).status).toBe(404);
    const defaultQueue = await t.json('DELETE', '/queue/default?forced=true');
    expect(defaultQueue.status).toBe(409);
    expect((await t.json('DELETE', '/queue/nope')).status).toBe(404);
  });

  it('DELETE /queue/:q?status=… deletes jobs in that state, never the queue (queue-purge-and-type-hosts.test.ts has the rest)', async () => {
    await t.json('POST', '/queue', { body: { name: 'keepme' } });
    const res = await t.json('DELETE', '/queue/keepme?status=done');
    expect(res).toEqual({
      status: 200,
      body: { queue: 'keepme', status: 'done', deleted: 0, cancelled: 0, skipped: [] },
    });
    expect(t.daemon.queues.has('keepme')).toBe(true);
  });

  it('DELETE /queue/:q deletes an empty queue', async () => {
    await t.json('POST', '/queue', { body: { name: 'empty' } });
    expect((await t.json('DELETE', '/queue/empty')).status).toBe(200);
    expect(t.daemon.queues.has('empty')).toBe(false);
  });

  it('GET /stats and /stats/:q count jobs by state', async () => {
    // Disabled before the submission, so the job stays queued however fast jobs start.
    await t.json('PUT', '/queue/paused', { body: { enabled: false } });
    await t.json('POST', '/queue/paused', { body: { command: 'true' } });
    const all = statsSchema.parse((await t.json('GET', '/stats')).body);
    expect(Object.keys(all)).toEqual(expect.arrayContaining(['default', 'paused', 'renders']));
    const one = await t.json('GET', '/stats/paused');
    expect(one.status).toBe(200);
    expect(statsSchema.parse(one.body).paused?.queued).toBeGreaterThanOrEqual(1);
    expect((await t.json('GET', '/stats/nope')).status).toBe(404);
    expect((await t.json('GET', '/stats/bad%2Fname')).status).toBe(400);
  });

  it('GET /queue/:q/type and /queue/:q/host list what may be submitted', async () => {
    const types = await t.json<{ name: string }[]>('GET', '/queue/default/type');
    expect(types.body.map((x) => x.name)).toEqual(['command', 'echo', 'sleep']);
    expect((await t.json('GET', '/queue/default/host')).body).toEqual(['__default__']);
    expect((await t.json('GET', '/queue/nope/type')).status).toBe(404);
    expect((await t.json('GET', '/queue/nope/host')).status).toBe(404);
  });

  it('unknown endpoints answer 404 in the one error shape', async () => {
    const { status, body } = await t.json('GET', '/no/such/thing');
    expect(status).toBe(404);
    expectError(body, 'NOT_FOUND');
  });
});
