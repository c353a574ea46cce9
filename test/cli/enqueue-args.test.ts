import { readdirSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { errorBodySchema, jobInfoSchema, submitResponseSchema } from '../../daemon/protocol/index.ts';
import { type Auth, type InProcessApi, JOB_TYPES, startApi, writeUsersFile } from '../api/api-helpers.ts';
import { type ApiDaemon, startApiDaemon } from './api-daemon.ts';
import { json } from './run-cli.ts';

const PASSWORD = 'correct horse battery staple';
const ROOT: Auth = { basic: ['root', PASSWORD] };
/** May submit jobs of type echo to queue q only. */
const ECHOER: Auth = { basic: ['echoer', PASSWORD] };
const TYPES = {
  ...JOB_TYPES,
  pair: {
    template: 'echo $name $count',
    params: [
      { name: 'name', type: 'String' },
      { name: 'count', type: 'Integer' },
    ],
  },
};

/**
 * `args` in a submission: positional values the server maps to the job type's parameters (the rule
 * of jobs/positional.ts), so `batch enqueue` needs no request to learn the type first.
 */
describe('POST /queue/:q with args', () => {
  let api: InProcessApi;
  beforeAll(async () => {
    // A disabled queue: the jobs stay queued, where their parameters can be read.
    api = await startApi({
      auth: { basic: true, token: false },
      queues: { q: { enabled: false } },
      jobTypes: TYPES,
    });
    await writeUsersFile(
      api.env.etc,
      [
        { name: 'root', grants: [{ permission: 'SuperUser' }] },
        { name: 'echoer', grants: [{ permission: 'CreateJobs', queue_name: 'q', type_name: 'echo' }] },
      ],
      PASSWORD,
    );
    for (let i = 0; i < 100; i++) {
      if ((await api.request('GET', '/whoami', { auth: ROOT })).status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => api?.close());

  const submit = async (body: unknown, auth: Auth = ROOT) =>
    api.json('POST', '/queue/q', { body, ...(auth === undefined ? {} : { auth }) });
  const anonymous = async (body: unknown) => api.json('POST', '/queue/q', { body });
  const paramsOf = async (body: unknown): Promise<Record<string, unknown>> => {
    const res = await submit(body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const [id] = submitResponseSchema.parse(res.body).jobs;
    const job = await api.json('GET', `/job/${id}`, { auth: ROOT });
    return jobInfoSchema.parse(job.body).params;
  };
  const queuedCount = (): number => readdirSync(path.join(api.env.spool, 'q', 'queued')).length;

  it('fills the parameters in their declared order, coerced to their types', async () => {
    expect(await paramsOf({ type: 'pair', args: ['frames', '12'] })).toEqual({ name: 'frames', count: 12 });
  });

  it("joins the values into the command type's one Script parameter, and a named parameter wins", async () => {
    expect(await paramsOf({ args: ['make', '-j8', 'test'] })).toEqual({ command: 'make -j8 test' });
    expect(await paramsOf({ type: 'pair', args: ['a', '1'], params: { count: 2 } })).toEqual({
      name: 'a',
      count: 2,
    });
  });

  it('takes args in a YAML job file as in JSON', async () => {
    const res = await api.request('POST', '/queue/q', {
      body: 'type: echo\nargs: [from yaml]\n',
      contentType: 'application/yaml',
      auth: ROOT,
    });
    expect(res.status).toBe(201);
  });

  it('refuses more values than the type has parameters, naming them, and queues nothing', async () => {
    const before = queuedCount();
    const res = await submit({ type: 'pair', args: ['a', '1', 'extra'] });
    expect(res.status).toBe(422);
    const { error } = errorBodySchema.parse(res.body);
    expect(error.code).toBe('JOB_INVALID');
    expect(error.details?.map(({ field, message }) => ({ field, message }))).toEqual([
      {
        field: 'args',
        message:
          'type "pair" takes 2 parameter(s) (name, count), got 3 values; name the others in params, or give fewer',
      },
    ]);
    expect(queuedCount()).toBe(before);
  });

  it('names the parameter that fewer values leave unset, and a value of the wrong type', async () => {
    const tooFew = errorBodySchema.parse((await submit({ type: 'pair', args: ['a'] })).body).error;
    expect(tooFew.code).toBe('JOB_INVALID');
    expect(tooFew.details).toEqual([
      expect.objectContaining({ field: 'params.count', message: 'Missing parameter "count" (Integer)' }),
    ]);
    const wrong = errorBodySchema.parse((await submit({ type: 'pair', args: ['a', 'ten'] })).body).error;
    expect(wrong.details?.[0]?.field).toBe('params.count');
    expect(wrong.details?.[0]?.message).toMatch(/integer/i);
  });

  it('checks the caller: none is 401, a grant for another type 403, the granted type 201', async () => {
    expect((await anonymous({ type: 'echo', args: ['hi'] })).status).toBe(401);
    expect((await submit({ type: 'pair', args: ['a', '1'] }, ECHOER)).status).toBe(403);
    const granted = await submit({ type: 'echo', args: ['hi'] }, ECHOER);
    expect(granted.status, JSON.stringify(granted.body)).toBe(201);
  });
});

/** `batch enqueue` with positional values: one request (the daemon's debug log lists each one it served). */
describe('batch enqueue with positional values', () => {
  let d: ApiDaemon;
  beforeAll(async () => {
    d = await startApiDaemon({
      jobTypes: TYPES,
      queues: { held: { enabled: false } },
      config: { logging: { level: 'debug' } },
    });
  });
  afterAll(async () => d?.stop());

  /** The requests the daemon served since `from` records of its log. */
  const requests = (from: number): string[] =>
    d.daemon
      .records()
      .slice(from)
      .filter((r) => r.msg === 'http request')
      .map((r) => `${String(r.method)} ${String(r.route)} ${String(r.status)}`);

  it('sends one request, the POST, and the server fills the parameters', async () => {
    const from = d.daemon.records().length;
    const result = await d.batch(['enqueue', '-q', 'held', '-t', 'pair', 'shot', '7']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(requests(from)).toEqual(['POST /queue/:q 201']);
    const job = json<{ params: unknown }>(await d.batch(['job', result.stdout.trim(), '--json']));
    expect(job.params).toEqual({ name: 'shot', count: 7 });
  });

  it('still says too many values is a usage error (2), after the one request', async () => {
    const from = d.daemon.records().length;
    const result = await d.batch(['enqueue', '-q', 'held', '-t', 'echo', 'a', 'b']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'enqueue: type "echo" takes 1 parameter(s) (message), got 2 values; use -p NAME=VALUE or fewer values',
    );
    expect(result.stdout).toBe('');
    expect(requests(from)).toEqual(['POST /queue/:q 422']);
  });

  it('still says an unknown type is not found (3), listing the types there are', async () => {
    const result = await d.batch(['enqueue', '-q', 'held', '-t', 'nosuch', 'a']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(
      /Unknown job type "nosuch"; known types: .*echo.*pair.*\(batch type lists them\)/,
    );
  });

  it('names the parameter fewer values leave unset, as the job', async () => {
    const result = await d.batch(['enqueue', '-q', 'held', '-t', 'pair', 'shot']);
    expect(result.code).toBe(6);
    expect(result.stderr).toContain('the job, field params.count: Missing parameter "count" (Integer)');
  });
});
