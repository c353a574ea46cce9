import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Auth, type InProcessApi, startApi, writeUsersFile } from './api-helpers.ts';

const PASSWORD = 'correct horse battery staple';
const ROOT: Auth = { basic: ['root', PASSWORD] };
const ALICE: Auth = { basic: ['alice', PASSWORD] };
const JOB = { type: 'echo', params: { message: 'hello' } };

/**
 * What one user may not view must not show through another door: the metrics' per-queue counts,
 * a dependency (`after:`) naming a job of that queue (accepted if it exists, refused if not), or a
 * per-job route (403 if it exists, 404 if not).
 */
describe('the caller’s view in metrics and dependencies', () => {
  let api: InProcessApi;
  let bobsJob: string;

  beforeAll(async () => {
    api = await startApi({
      auth: { basic: true, token: false },
      queues: { alices: { enabled: false }, bobs: { enabled: false } },
    });
    await writeUsersFile(
      api.env.etc,
      [
        { name: 'root', grants: [{ permission: 'SuperUser' }] },
        {
          name: 'alice',
          grants: ['CreateJobs', 'ViewJobs', 'ViewQueues'].map((permission) => ({
            permission: permission as 'CreateJobs',
            queue_name: 'alices',
          })),
        },
      ],
      PASSWORD,
    );
    for (let i = 0; i < 100; i++) {
      if ((await api.request('GET', '/whoami', { auth: ROOT })).status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const submitted = await api.json<{ jobs: string[] }>('POST', '/queue/bobs', { auth: ROOT, body: JOB });
    expect(submitted.status).toBe(201);
    bobsJob = submitted.body.jobs[0] ?? '';
    expect((await api.json('POST', '/queue/alices', { auth: ALICE, body: JOB })).status).toBe(201);
  });
  afterAll(() => api.close());

  it('shows a user the metrics of the queues they may view only', async () => {
    const alices = await (await api.request('GET', '/metrics', { auth: ALICE })).text();
    expect(alices).toMatch(/batchd_jobs\{queue="alices",state="queued"\} 1/);
    expect(alices).not.toContain('queue="bobs"');
    // Counts summed over every queue would tell about bobs' too.
    expect(alices).not.toMatch(/^batchd_dispatcher_indexed /m);
    expect(alices).toMatch(/^batchd_process_resident_memory_bytes /m);
    const roots = await (await api.request('GET', '/metrics', { auth: ROOT })).text();
    expect(roots).toMatch(/batchd_jobs\{queue="bobs",state="queued"\} 1/);
    expect(roots).toMatch(/^batchd_dispatcher_indexed /m);
  });

  it('answers after: naming a job of a queue the user cannot view as for a job that does not exist', async () => {
    const missing = bobsJob.replace(/.{6}$/, 'zzzzzz');
    const hidden = await api.json<{ error: { code: string; message: string } }>('POST', '/queue/alices', {
      auth: ALICE,
      body: { ...JOB, after: [bobsJob] },
    });
    const absent = await api.json<{ error: { code: string; message: string } }>('POST', '/queue/alices', {
      auth: ALICE,
      body: { ...JOB, after: [missing] },
    });
    expect(hidden.status).toBe(422);
    expect(absent.status).toBe(422);
    expect(hidden.body.error.code).toBe(absent.body.error.code);
    expect(hidden.body.error.message.replace(bobsJob, 'ID')).toBe(
      absent.body.error.message.replace(missing, 'ID'),
    );
    // Who may view that queue can depend on its jobs.
    expect(
      (await api.json('POST', '/queue/alices', { auth: ROOT, body: { ...JOB, after: [bobsJob] } })).status,
    ).toBe(201);
  });

  it('answers every per-job route for a job of a queue the user cannot view as for a job that does not exist', async () => {
    const missing = bobsJob.replace(/.{6}$/, 'zzzzzz');
    // Every route of the API about one job, as it documents itself: a new one is checked too.
    const spec = await api.json<{ paths: Record<string, Record<string, unknown>> }>('GET', '/openapi.json');
    const routes = Object.entries(spec.body.paths)
      .filter(([p]) => p.includes('/job/{id}'))
      .flatMap(([p, methods]) => Object.keys(methods).map((m) => ({ method: m.toUpperCase(), path: p })));
    expect(routes.map((r) => `${r.method} ${r.path}`)).toEqual(
      expect.arrayContaining([
        'GET /job/{id}',
        'GET /job/{id}/log',
        'DELETE /job/{id}',
        'POST /job/{id}/retry',
      ]),
    );
    const differences: string[] = [];
    for (const route of routes) {
      const ask = async (id: string): Promise<{ status: number; body: string }> => {
        const res = await api.request(route.method, route.path.replace('{id}', id), {
          auth: ALICE,
          body: route.method === 'PUT' ? { notes: 'x' } : undefined,
        });
        return { status: res.status, body: (await res.text()).replaceAll(id, 'ID') };
      };
      const hidden = await ask(bobsJob);
      const absent = await ask(missing);
      if (hidden.status !== 404 || absent.status !== 404 || hidden.body !== absent.body)
        differences.push(
          `${route.method} ${route.path}: ${hidden.status} ${hidden.body} / ${absent.status} ${absent.body}`,
        );
    }
    expect(differences).toEqual([]);
    // Who may view the queue still learns that the job exists (and is refused what it may not do).
    expect((await api.request('GET', `/job/${bobsJob}`, { auth: ROOT })).status).toBe(200);
    const alicesJob = (
      await api.json<{ jobs: { id: string }[] }>('GET', '/queue/alices/jobs', { auth: ALICE })
    ).body.jobs[0]?.id;
    expect(alicesJob).toBeDefined();
    expect((await api.request('GET', `/job/${alicesJob}`, { auth: ALICE })).status).toBe(200);
    expect((await api.request('DELETE', `/job/${alicesJob}`, { auth: ALICE })).status).toBe(403);
  });
});
