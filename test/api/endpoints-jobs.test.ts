import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

import {
  attemptResultSchema,
  controlResponseSchema,
  errorBodySchema,
  jobInfoSchema,
  jobPageSchema,
  submitResponseSchema,
} from '../../daemon/protocol/index.ts';
import { dropJob, waitForState } from '../helpers/dispatch.ts';
import { jobDir } from '../helpers/env.ts';
import { eventually, type InProcessApi, startApi } from './api-helpers.ts';

/** Jobs: submit, read, list, change, cancel, retry, results and logs. */
describe('job endpoints', () => {
  let t: InProcessApi;
  beforeAll(async () => {
    t = await startApi({
      queues: { hold: { enabled: false }, other: { enabled: false }, wide: { enabled: false } },
      config: { manager: { max_body_bytes: 4096 } },
    });
  });
  afterAll(async () => t.close());

  const submit = async (queue: string, body: unknown): Promise<string[]> => {
    const res = await t.json('POST', `/queue/${queue}`, { body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return submitResponseSchema.parse(res.body).jobs;
  };
  const code = (body: unknown): string => errorBodySchema.parse(body).error.code;

  it('POST /queue/:q of a large task answers 201 with every id, each queued, folders made from the first', async () => {
    const n = 450; // more than the folders made ahead of a disabled queue (tasks/materialise.ts)
    const res = await t.json('POST', '/queue/wide', {
      body: { type: 'echo', task: 'wide', params: { message: { range: `1..${n}` } } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const { jobs, task } = submitResponseSchema.parse(res.body);
    expect(task).toBe('wide');
    expect(new Set(jobs).size).toBe(n);
    // Every job is queued (with its folder, or still only in the task's manifest).
    const status = await t.json('GET', '/queue/wide/task/wide');
    expect(status.body).toMatchObject({ total: n, queued: n, missing: 0 });
    // The folders that exist are the task's first jobs.
    const queued = new Set(readdirSync(path.join(t.env.spool, 'wide', 'queued')));
    expect(queued.size).toBeGreaterThan(0);
    expect(jobs.slice(0, queued.size).filter((id) => !queued.has(id))).toEqual([]);
    expect(readdirSync(path.join(t.env.spool, 'wide', '.staging'))).toEqual([]);
  });

  it('POST /queue/:q leaves the same job folder as a dropped file (the one path for writes)', async () => {
    const yaml = 'type: echo\nparams:\n  message: same\nnotes: compare me\n';
    const res = await t.request('POST', '/queue/hold', { body: yaml, contentType: 'application/yaml' });
    expect(res.status).toBe(201);
    const [viaApi] = submitResponseSchema.parse(await res.json()).jobs;
    const viaDrop = await dropJob(t.env, 'hold', yaml, 'compare');
    const apiDir = jobDir(t.env.spool, 'hold', 'queued', viaApi ?? '');
    const dropDir = jobDir(t.env.spool, 'hold', 'queued', viaDrop);
    expect(readdirSync(apiDir).sort()).toEqual(readdirSync(dropDir).sort());
    expect(readFileSync(path.join(apiDir, 'drop.yaml'), 'utf8')).toBe(yaml);
    const strip = (dir: string): unknown => {
      const spec = JSON.parse(readFileSync(path.join(dir, 'job.yaml'), 'utf8')) as Record<string, unknown>;
      const { id: _id, submitted_at: _at, source: _source, submitted_by: _by, ...rest } = spec;
      return rest;
    };
    expect(strip(apiDir)).toEqual(strip(dropDir));
    const state = JSON.parse(readFileSync(path.join(apiDir, 'state.yaml'), 'utf8')) as {
      state: string;
      history: { reason: string }[];
    };
    expect(state.state).toBe('queued');
    expect(state.history[0]?.reason).toBe('accepted (api)');
  });

  it('POST /queue/:q takes JSON, records the submitter, and runs the job', async () => {
    const [id] = await submit('default', {
      type: 'echo',
      params: { message: 'hello api' },
      name: 'greeting',
    });
    await waitForState(t.env, id ?? '', 'done');
    const job = jobInfoSchema.parse((await t.json('GET', `/job/${id}`)).body);
    expect(job).toMatchObject({
      status: 'done',
      type: 'echo',
      params: { message: 'hello api' },
      name: 'greeting',
      user: 'anonymous',
      exit_code: 0,
      attempts: 1,
    });
    expect(job.history?.map((h) => h.to)).toEqual(['queued', 'running', 'done']);
    const log = await t.request('GET', `/job/${id}/log`);
    expect(log.headers.get('content-type')).toContain('text/plain');
    expect(await log.text()).toBe('hello api\n');
  });

  it('POST /queue/:q refuses invalid jobs (422 with field and line), bad JSON and YAML (400), big bodies (413), unknown queues (404)', async () => {
    const before = readdirSync(path.join(t.env.spool, 'hold', 'queued')).length;
    const invalid = await t.json<{ error: { details: { field: string; line: number }[] } }>(
      'POST',
      '/queue/hold',
      {
        body: 'type: echo\nparams:\n  message: x\n  colour: red\n',
        contentType: 'application/yaml',
      },
    );
    expect(invalid.status).toBe(422);
    expect(code(invalid.body)).toBe('JOB_INVALID');
    expect(invalid.body.error.details[0]).toMatchObject({ field: 'params.colour', line: 4 });
    const type = await t.json('POST', '/queue/hold', { body: { type: 'nosuch' } });
    expect([type.status, code(type.body)]).toEqual([422, 'UNKNOWN_TYPE']);
    const json = await t.json('POST', '/queue/hold', { body: '{"type": "echo",' });
    expect([json.status, code(json.body)]).toEqual([400, 'BAD_JSON']);
    const yaml = await t.json('POST', '/queue/hold', {
      body: 'type: [echo\n',
      contentType: 'application/yaml',
    });
    expect([yaml.status, code(yaml.body)]).toEqual([400, 'YAML_SYNTAX']);
    const big = await t.json('POST', '/queue/hold', { body: { command: 'x'.repeat(5000) } });
    expect([big.status, code(big.body)]).toEqual([413, 'TOO_LARGE']);
    const queue = await t.json('POST', '/queue/nope', { body: { command: 'true' } });
    expect([queue.status, code(queue.body)]).toEqual([404, 'UNKNOWN_QUEUE']);
    expect(readdirSync(path.join(t.env.spool, 'hold', 'queued')).length).toBe(before);
    expect(readdirSync(path.join(t.env.spool, 'hold', 'rejected'))).toEqual([]);
  });

  it('a task submission makes many jobs and names the task', async () => {
    const res = await t.json('POST', '/queue/hold', {
      body: { type: 'echo', task: 'greetings', params: { message: ['a', 'b', 'c'] } },
    });
    expect(res.status).toBe(201);
    expect(submitResponseSchema.parse(res.body)).toMatchObject({
      task: 'greetings',
      jobs: expect.any(Array) as unknown,
    });
    expect(submitResponseSchema.parse(res.body).jobs).toHaveLength(3);
  });

  it('GET /queue/:q/jobs pages through jobs in submission order, by status (batchd names too)', async () => {
    // Listings are in id order: ids sort by submission time (jobs of one task share the millisecond).
    const ids = (
      await submit('other', { type: 'echo', params: { message: { range: '1..5' } }, task: 'pager' })
    ).sort();
    const first = jobPageSchema.parse((await t.json('GET', '/queue/other/jobs?limit=2')).body);
    expect(first.jobs.map((j) => j.id)).toEqual(ids.slice(0, 2));
    const second = jobPageSchema.parse(
      (await t.json('GET', `/queue/other/jobs?limit=2&cursor=${first.next_cursor}`)).body,
    );
    expect(second.jobs.map((j) => j.id)).toEqual(ids.slice(2, 4));
    const third = jobPageSchema.parse(
      (await t.json('GET', `/queue/other/jobs?limit=2&cursor=${second.next_cursor}`)).body,
    );
    expect(third).toMatchObject({ next_cursor: null });
    expect(third.jobs.map((j) => j.id)).toEqual(ids.slice(4));
    const batchdName = jobPageSchema.parse(
      (await t.json('GET', '/queue/other/jobs?status=New&limit=1000')).body,
    );
    expect(batchdName.jobs).toHaveLength(5);
    expect(jobPageSchema.parse((await t.json('GET', '/queue/other/jobs?status=done')).body).jobs).toEqual([]);
    expect((await t.json('GET', '/queue/other/jobs?status=sideways')).status).toBe(400);
    expect((await t.json('GET', '/queue/other/jobs?limit=0')).status).toBe(400);
    expect((await t.json('GET', '/queue/nope/jobs')).status).toBe(404);
  });

  it('GET /jobs lists over all queues; status=all includes finished jobs', async () => {
    const page = jobPageSchema.parse((await t.json('GET', '/jobs?status=all&limit=1000')).body);
    const queues = new Set(page.jobs.map((j) => j.queue));
    expect([...queues].sort()).toEqual(['default', 'hold', 'other', 'wide']);
    expect(page.jobs.some((j) => j.status === 'done')).toBe(true);
    const ids = page.jobs.map((j) => j.id);
    expect(ids).toEqual([...ids].sort());
  });

  it('GET /job/:id answers 404 for an unknown id and 400 for a malformed one', async () => {
    const unknown = await t.json('GET', '/job/20200101T000000.000Z-aaaaaa');
    expect([unknown.status, code(unknown.body)]).toEqual([404, 'UNKNOWN_JOB']);
    const malformed = await t.json('GET', '/job/..%2F..%2Fetc');
    expect([malformed.status, code(malformed.body)]).toEqual([400, 'NAME_INVALID']);
  });

  // more/less swap places with the neighbour: job-fields-and-order.test.ts proves the order they then run in.
  it('PUT /job/:id re-prioritises (number, first, last, more, less), moves and annotates a queued job', async () => {
    const [a, b, c] = await submit('hold', {
      type: 'echo',
      task: 'prio',
      params: { message: ['1', '2', '3'] },
    });
    const priority = async (id: string | undefined, value: unknown): Promise<number> => {
      const res = await t.json('PUT', `/job/${id}`, { body: { priority: value } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return jobInfoSchema.parse(res.body).priority;
    };
    expect(await priority(a, 7)).toBe(7);
    expect(await priority(c, 'first')).toBe(8);
    expect(await priority(c, 'less')).toBe(7);
    expect(await priority(c, 'more')).toBe(8);
    expect(await priority(b, 'last')).toBe(0); // the last job submitted is at the back already
    expect(await priority(a, 'last')).toBeLessThan(0);
    const moved = await t.json('PUT', `/job/${a}`, { body: { move: 'other' } });
    expect(jobInfoSchema.parse(moved.body).queue).toBe('other');
    const notes = await t.json('PUT', `/job/${a}`, { body: { notes: 'look at me' } });
    expect(jobInfoSchema.parse(notes.body).notes).toBe('look at me');
  });

  it('PUT /job/:id refuses two changes at once (422), an unknown target queue (404) and a finished job (409)', async () => {
    const [id] = await submit('hold', { command: 'true' });
    const two = await t.json('PUT', `/job/${id}`, { body: { priority: 1, notes: 'x' } });
    expect([two.status, code(two.body)]).toEqual([422, 'ENTITY_INVALID']);
    const target = await t.json('PUT', `/job/${id}`, { body: { move: 'nope' } });
    expect([target.status, code(target.body)]).toEqual([404, 'UNKNOWN_QUEUE']);
    const done = jobPageSchema.parse((await t.json('GET', '/queue/default/jobs?status=done')).body).jobs[0];
    const finished = await t.json('PUT', `/job/${done?.id}`, { body: { move: 'hold' } });
    expect(finished.status).toBe(409);
    expect((await t.json('PUT', '/job/20200101T000000.000Z-aaaaaa', { body: { notes: 'x' } })).status).toBe(
      404,
    );
  });

  it('DELETE /job/:id cancels a queued job, keeps its folder in cancelled/, and refuses it twice (409)', async () => {
    const [id] = await submit('hold', { command: 'true' });
    const res = await t.json('DELETE', `/job/${id}`);
    expect(res.status).toBe(200);
    expect(controlResponseSchema.parse(res.body)).toEqual({ id, result: 'cancelled' });
    await waitForState(t.env, id ?? '', 'cancelled');
    const again = await t.json('DELETE', `/job/${id}`);
    expect([again.status, code(again.body)]).toEqual([409, 'CONFLICT']);
  });

  it('POST /job/:id/cancel stops a running job (202), which ends in cancelled/', async () => {
    const [id] = await submit('default', { type: 'sleep', params: { seconds: 30 } });
    await waitForState(t.env, id ?? '', 'running');
    const res = await t.json('POST', `/job/${id}/cancel`);
    expect(res.status).toBe(202);
    expect(controlResponseSchema.parse(res.body).result).toBe('stopping');
    await waitForState(t.env, id ?? '', 'cancelled');
    const last = await t.json('GET', `/job/${id}/results/last`);
    expect(attemptResultSchema.parse(last.body).outcome).toBe('cancelled');
  });

  it('POST /job/:id/retry queues a failed or cancelled job again; 409 otherwise', async () => {
    const [id] = await submit('default', { command: 'exit 3' });
    await waitForState(t.env, id ?? '', 'failed');
    const results = z.array(attemptResultSchema).parse((await t.json('GET', `/job/${id}/results`)).body);
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ outcome: 'exit-code', exit_code: 3 });
    const res = await t.json('POST', `/job/${id}/retry`);
    expect(res).toEqual({ status: 200, body: { id, result: 'queued' } });
    await eventually(
      async () =>
        (await t.json<{ attempts: number; status: string }>('GET', `/job/${id}`)).body.status === 'failed' &&
        true,
      15_000,
      'second failure',
    );
    expect(z.array(attemptResultSchema).parse((await t.json('GET', `/job/${id}/results`)).body)).toHaveLength(
      2,
    );
    const [queued] = await submit('hold', { command: 'true' });
    expect((await t.json('POST', `/job/${queued}/retry`)).status).toBe(409);
    expect((await t.json('POST', '/job/20200101T000000.000Z-aaaaaa/retry')).status).toBe(404);
  });

  it('GET /job/:id/results/last is 404 before any attempt ended', async () => {
    const [id] = await submit('hold', { command: 'true' });
    expect((await t.json('GET', `/job/${id}/results/last`)).status).toBe(404);
    expect((await t.json('GET', `/job/${id}/results`)).body).toEqual([]);
  });

  it('GET /job/:id/log gives stdout or stderr; empty before the job ran', async () => {
    const [id] = await submit('default', { command: 'echo out; echo err >&2' });
    await waitForState(t.env, id ?? '', 'done');
    expect(await (await t.request('GET', `/job/${id}/log`)).text()).toBe('out\n');
    expect(await (await t.request('GET', `/job/${id}/log?stream=stderr`)).text()).toBe('err\n');
    const [queued] = await submit('hold', { command: 'true' });
    const empty = await t.request('GET', `/job/${queued}/log`);
    expect([empty.status, await empty.text()]).toEqual([200, '']);
    expect((await t.json('GET', `/job/${id}/log?stream=both`)).status).toBe(400);
  });

  it('GET /job/:id/log?follow=1 streams the log as it grows and ends with the job', async () => {
    // The job writes a line, then waits for a gate file that the test makes only once that line
    // has come through the stream: a server that answered after the job ended would never get it.
    const gate = path.join(t.env.root, 'follow-gate');
    const [id] = await submit('default', {
      command: `echo line 1; while [ ! -e ${gate} ]; do sleep 0.05; done; echo line 2`,
    });
    const res = await t.request('GET', `/job/${id}/log?follow=1`);
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(text).toBe('line 1\n');
    expect(jobInfoSchema.parse((await t.json('GET', `/job/${id}`)).body).status).toBe('running');
    writeFileSync(gate, '');
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      text += decoder.decode(chunk.value, { stream: true });
    expect(text).toBe('line 1\nline 2\n'); // the stream ends with the job
    expect(jobInfoSchema.parse((await t.json('GET', `/job/${id}`)).body).status).toBe('done');
  });

  it('a followed log stream ends when the client goes away (no listener or timer left)', async () => {
    const [id] = await submit('hold', { command: 'true' }); // never runs: the queue is disabled
    const res = await t.request('GET', `/job/${id}/log?follow=1`);
    const gauge = async (): Promise<number> => {
      const text = await (await t.request('GET', '/metrics')).text();
      return Number(/^batchd_http_open_streams (\d+)/m.exec(text)?.[1] ?? NaN);
    };
    expect(await gauge()).toBe(1);
    await res.body?.cancel();
    await eventually(async () => (await gauge()) === 0, 5000, 'stream closed');
  });
});
