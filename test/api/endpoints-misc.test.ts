import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

import {
  errorBodySchema,
  jobTypeInfoSchema,
  scheduleInfoSchema,
  submitResponseSchema,
  taskResultsSchema,
  taskStatusSchema,
  taskSummarySchema,
  whoamiSchema,
} from '../../daemon/protocol/index.ts';
import { waitForState } from '../helpers/dispatch.ts';
import { eventually, type InProcessApi, startApi } from './api-helpers.ts';

/** Tasks, schedules, job types, hosts, meta, metrics and the event stream. */
describe('task, schedule, type, host, meta and event endpoints', () => {
  let t: InProcessApi;
  beforeAll(async () => {
    t = await startApi({
      queues: { hold: { enabled: false }, nightly: { schedule_name: 'night' } },
      schedules: { night: { time: [{ begin: '22:00', end: '06:00' }], timezone: 'UTC' } },
    });
  });
  afterAll(async () => t.close());

  const code = (body: unknown): string => errorBodySchema.parse(body).error.code;

  describe("tasks (restbatch's workflow)", () => {
    it("status counts, results in the task's order, resume of only the failed and cancelled jobs", async () => {
      const script = 'if [ "$n" = 2 ]; then exit 1; fi; printf \'{"n": %s}\' "$n" > "$BATCHD_RESULT"';
      t.env.writeConfig('jobtypes/square.yaml', {
        template: script,
        params: [{ name: 'n', type: 'Integer' }],
      });
      t.daemon.config.reloadFile(path.join(t.env.etc, 'jobtypes', 'square.yaml'));
      const sub = submitResponseSchema.parse(
        (
          await t.json('POST', '/queue/default', {
            body: { type: 'square', task: 'squares', params: { n: [3, 2, 1] } },
          })
        ).body,
      );
      expect(sub.task).toBe('squares');
      const status = await eventually(async () => {
        const s = taskStatusSchema.parse((await t.json('GET', '/queue/default/task/squares')).body);
        return s.resolved ? s : undefined;
      });
      expect(status).toMatchObject({
        total: 3,
        done: 2,
        failed: 1,
        queued: 0,
        running: 0,
        missing: 0,
        resolved: true,
      });
      const results = taskResultsSchema.parse(
        (await t.json('GET', '/queue/default/task/squares/results')).body,
      );
      expect(results.map((r) => [r.index, r.id, r.status, r.result])).toEqual([
        [0, sub.jobs[0], 'done', { n: 3 }],
        [1, sub.jobs[1], 'failed', null],
        [2, sub.jobs[2], 'done', { n: 1 }],
      ]);
      expect(results[1]?.exit_code).toBe(1);
      const resumed = await t.json('POST', '/queue/default/task/squares/resume');
      expect(resumed).toEqual({ status: 200, body: { resumed: [sub.jobs[1]] } });
      await waitForState(t.env, sub.jobs[1] ?? '', 'failed');
      const attempts = await Promise.all(
        sub.jobs.map(async (id) => (await t.json<{ attempts: number }>('GET', `/job/${id}`)).body.attempts),
      );
      expect(attempts).toEqual([1, 2, 1]);
      const list = z.array(taskSummarySchema).parse((await t.json('GET', '/queue/default/tasks')).body);
      expect(list.map((x) => [x.name, x.count])).toEqual([['squares', 3]]);
    });

    it('an unknown task or queue is 404; a bad task name is 400', async () => {
      const task = await t.json('GET', '/queue/default/task/nosuch');
      expect([task.status, code(task.body)]).toEqual([404, 'UNKNOWN_TASK']);
      expect((await t.json('GET', '/queue/nope/task/x/results')).status).toBe(404);
      expect((await t.json('POST', '/queue/default/task/nosuch/resume')).status).toBe(404);
      expect((await t.json('GET', '/queue/default/task/..%2F..')).status).toBe(400);
    });
  });

  describe('schedules', () => {
    it("GET /schedule lists file and built-in schedules in batchd's shape", async () => {
      const list = z.array(scheduleInfoSchema).parse((await t.json('GET', '/schedule')).body);
      expect(list.map((s) => [s.name, s.builtin])).toEqual([
        ['anytime', true],
        ['night', false],
      ]);
      expect(list[1]).toMatchObject({
        time: [{ begin: '22:00:00', end: '06:00:00' }],
        weekdays: null,
        timezone: 'UTC',
      });
    });

    it('POST /schedule writes etc/schedules/<name>.yaml and it is in force at once', async () => {
      const res = await t.json('POST', '/schedule', {
        body: { name: 'workdays', weekdays: ['Mon', 'Tuesday'], time: [{ begin: '09:00', end: '17:30' }] },
      });
      expect(res.status).toBe(201);
      expect(scheduleInfoSchema.parse(res.body)).toMatchObject({
        name: 'workdays',
        weekdays: ['Monday', 'Tuesday'],
        time: [{ begin: '09:00:00', end: '17:30:00' }],
      });
      expect(readFileSync(path.join(t.env.etc, 'schedules', 'workdays.yaml'), 'utf8')).toContain('17:30');
      expect(scheduleInfoSchema.parse((await t.json('GET', '/schedule/workdays')).body).name).toBe(
        'workdays',
      );
      expect((await t.json('PUT', '/queue/hold', { body: { schedule_name: 'workdays' } })).status).toBe(200);
    });

    it('POST /schedule refuses duplicates (409) and invalid schedules (422)', async () => {
      expect((await t.json('POST', '/schedule', { body: { name: 'night' } })).status).toBe(409);
      expect((await t.json('POST', '/schedule', { body: { name: 'anytime' } })).status).toBe(409);
      const weekday = await t.json('POST', '/schedule', { body: { name: 'odd', weekdays: ['Caturday'] } });
      expect([weekday.status, code(weekday.body)]).toEqual([422, 'ENTITY_INVALID']);
      const time = await t.json('POST', '/schedule', {
        body: { name: 'odd', time: [{ begin: '25:00', end: '26:00' }] },
      });
      expect(time.status).toBe(422);
      const zone = await t.json('POST', '/schedule', { body: { name: 'odd', timezone: 'Mars/Olympus' } });
      expect(zone.status).toBe(422);
      expect(existsSync(path.join(t.env.etc, 'schedules', 'odd.yaml'))).toBe(false);
    });

    it('DELETE /schedule/:n refuses one in use (409) unless forced, and built-ins; 404 for unknown', async () => {
      const used = await t.json('DELETE', '/schedule/night');
      expect([used.status, code(used.body)]).toEqual([409, 'CONFLICT']);
      expect((await t.json('DELETE', '/schedule/anytime')).status).toBe(409);
      expect((await t.json('DELETE', '/schedule/nosuch')).status).toBe(404);
      expect(await t.json('DELETE', '/schedule/night?forced=true')).toEqual({
        status: 200,
        body: { ok: true },
      });
      expect((await t.json('GET', '/schedule/night')).status).toBe(404);
      expect(existsSync(path.join(t.env.etc, 'schedules', 'night.yaml'))).toBe(false);
    });
  });

  describe('job types and hosts', () => {
    it("GET /type and /type/:n give batchd's JSON shape; 404 for unknown", async () => {
      const types = z.array(jobTypeInfoSchema).parse((await t.json('GET', '/type')).body);
      expect(types.map((x) => x.name)).toEqual(expect.arrayContaining(['command', 'echo', 'sleep']));
      const sleep = jobTypeInfoSchema.parse((await t.json('GET', '/type/sleep')).body);
      expect(sleep).toMatchObject({
        template: ['sleep $seconds'],
        on_fail: 'continue',
        params: [{ name: 'seconds', type: 'Integer', default: 1, title: 'seconds' }],
      });
      expect((await t.json('GET', '/type/nosuch')).status).toBe(404);
    });

    it('GET /host lists hosts (none configured here)', async () => {
      expect(await t.json('GET', '/host')).toEqual({ status: 200, body: [] });
    });
  });

  describe('meta', () => {
    it('GET /whoami: with authentication disabled everyone is the anonymous superuser', async () => {
      expect(whoamiSchema.parse((await t.json('GET', '/whoami')).body)).toEqual({
        name: 'anonymous',
        superuser: true,
        via: 'none',
        grants: [],
      });
    });

    it('GET /metrics serves Prometheus text with job gauges, transitions and HTTP counters', async () => {
      // Failures are counted under their route with their real status; a path no route takes, as unmatched.
      expect((await t.request('GET', '/job/20200101T000000.000Z-nosuch')).status).toBe(404);
      expect((await t.request('GET', '/no/such/endpoint')).status).toBe(404);
      const res = await t.request('GET', '/metrics');
      expect(res.headers.get('content-type')).toContain('text/plain');
      const text = await res.text();
      expect(text).toMatch(/^batchd_jobs\{queue="default",state="done"\} \d+/m);
      expect(text).toMatch(/^batchd_job_transitions_total\{queue="default",from="running",to="done"\} \d+/m);
      expect(text).toMatch(/^batchd_http_requests_total\{method="GET",route="\/type",status="200"\} 1/m);
      expect(text).toContain('batchd_http_request_duration_seconds_bucket');
      expect(text).toMatch(/^batchd_http_requests_total\{method="GET",route="\/job\/:id",status="404"\} 1/m);
      expect(text).toMatch(/^batchd_http_requests_total\{method="GET",route="unmatched",status="404"\} 1/m);
      expect(text).toMatch(
        /^batchd_http_request_duration_seconds_count\{method="GET",route="\/job\/:id"\} [1-9]/m,
      );
    });

    it('GET /openapi.json documents every route, generated from the request schemas', async () => {
      const doc = (
        await t.json<{
          openapi: string;
          paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> } }>>;
        }>('GET', '/openapi.json')
      ).body;
      expect(doc.openapi).toBe('3.0.3');
      for (const route of t.api.routes) {
        const p = route.path.replace(/:([A-Za-z_]+)/g, '{$1}');
        expect(doc.paths[p]?.[route.method], `${route.method} ${p}`).toBeDefined();
      }
      const submit = doc.paths['/queue/{q}']?.post?.requestBody?.content;
      expect(Object.keys(submit ?? {})).toEqual(['application/json', 'application/yaml']);
      expect(JSON.stringify(submit)).toContain('not_before');
    });
  });

  describe('event stream', () => {
    it('GET /events streams job and queue events as SSE, and ends cleanly when the client goes away', async () => {
      const res = await t.request('GET', '/events');
      expect(res.headers.get('content-type')).toBe('text/event-stream');
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let text = '';
      const readUntil = async (needle: string): Promise<void> => {
        while (!text.includes(needle)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`stream ended before ${needle}: ${text}`);
          text += decoder.decode(value);
        }
      };
      await readUntil(': connected');
      const [id] = submitResponseSchema.parse(
        (await t.json('POST', '/queue/default', { body: { command: 'true' } })).body,
      ).jobs;
      await readUntil('event: job:accepted');
      await readUntil('"to":"done"');
      expect(text).toContain(`"jobId":"${id}"`);
      const accepted = /event: job:accepted\ndata: (.*)\nid: \d+/.exec(text)?.[1];
      expect(JSON.parse(accepted ?? '{}')).toMatchObject({ jobId: id, queue: 'default' });
      await t.json('PUT', '/queue/hold', { body: { title: 'changed' } });
      await readUntil('event: queue:changed');
      expect((await t.json('POST', `/job/${id}/delete`)).status).toBe(200);
      await readUntil('event: job:purged');
      const purged = /event: job:purged\ndata: (.*)\nid: \d+/.exec(text)?.[1];
      expect(JSON.parse(purged ?? '{}')).toMatchObject({ jobId: id, queue: 'default', from: 'done' });
      await reader.cancel();
      await eventually(
        async () => /^batchd_http_open_streams 0$/m.test(await (await t.request('GET', '/metrics')).text()),
        5000,
        'stream closed',
      );
    });
  });
});
