import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { UserStore } from '../../daemon/auth/store.ts';
import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { lastJson, runPython } from './original.ts';

/**
 * batchd's Python client library (python/batchd/client.py), unchanged, against a real daemon: every
 * call its PyQt5 GUI and Blender add-on make, with the manager URL at the batchd face.
 */
const ECHO = { template: "printf '%s\\n' $message", params: [{ name: 'message', type: 'String' }] };
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('the Python client library, authentication disabled', () => {
  let d: ApiDaemon;
  let out: Record<string, unknown>;
  let printed: string[];

  beforeAll(async () => {
    d = await startApiDaemon({ jobTypes: { echo: ECHO } });
    const result = await runPython(
      `
import json, time
from batchd.client import Client
c = Client("${d.url}/batchd")
out = {}
out['queues'] = c.get_queues()
out['types'] = c.get_job_types()
out['hosts'] = c.get_hosts()
out['schedules'] = c.get_schedules()
c.new_queue({'name': 'render', 'title': 'Render', 'enabled': True, 'schedule_name': 'anytime'})
c.set_queue_status('render', False)
out['queues_after'] = c.get_queues()
c.do_enqueue('default', 'echo', None, {'message': 'hello from batchd'})
for _ in range(300):
    jobs = c.get_jobs('default')
    if jobs and jobs[0]['status'] in ('Done', 'Failed'):
        break
    time.sleep(0.1)
out['jobs'] = jobs
out['stats'] = c.get_queue_stats('default')
out['results'] = c.get_job_results(jobs[0]['id'])
c.do_enqueue('render', 'echo', None, {'message': 'never runs'})
waiting = c.get_jobs('render')
out['waiting'] = waiting
c.delete_job(waiting[0]['id'])
out['after_delete'] = c.get_jobs('render')
out['render_stats'] = c.get_queue_stats('render')
print(json.dumps(out))
`,
      {},
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    out = lastJson(result);
    printed = result.stdout.trim().split('\n').slice(0, -1);
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
  });

  it('lists queues as batchd Queue documents, and creates and disables one', () => {
    expect(out.queues).toEqual([
      {
        name: 'default',
        title: 'default',
        enabled: true,
        schedule_name: 'anytime',
        host_name: null,
        autostart_job_count: null,
      },
    ]);
    expect(out.queues_after).toContainEqual(
      expect.objectContaining({ name: 'render', title: 'Render', enabled: false, schedule_name: 'anytime' }),
    );
  });

  it("lists job types with batchd's parameter types: the built-in command's Script is a String", () => {
    const types = out.types as { name: string; params: unknown[] }[];
    expect(types.map((t) => t.name)).toEqual(['command', 'echo']);
    expect(types[0]).toMatchObject({
      name: 'command',
      template: ['$command'],
      on_fail: 'continue',
      params: [{ name: 'command', type: 'String', title: 'Command', default: '' }],
    });
    expect(types[1]?.params).toEqual([{ name: 'message', type: 'String', title: 'message', default: '' }]);
  });

  it('lists hosts as names and schedules as batchd ScheduleInfo', () => {
    expect(out.hosts).toEqual([]);
    expect(out.schedules).toEqual([{ name: 'anytime', weekdays: null, time: null }]);
  });

  it('enqueues with 200 and an integer id; lists the job in batchd JobInfo shape', () => {
    const jobs = out.jobs as Record<string, unknown>[];
    expect(jobs).toHaveLength(1);
    const job = jobs[0] as Record<string, unknown>;
    // do_enqueue prints the answer: the new job's number (new_queue printed its name, set_queue_status "done").
    expect(printed).toEqual([
      '"render"',
      'Set render => False',
      '"done"',
      String(job.id),
      String(Number(job.id) + 1),
      '<Response [200]>',
    ]);
    expect(job).toMatchObject({
      queue: 'default',
      type: 'echo',
      status: 'Done',
      try_count: 0,
      host_name: null,
      exit_code: 0,
      user_name: 'anonymous',
      params: { message: 'hello from batchd' },
    });
    expect(Number.isInteger(job.id)).toBe(true);
    expect(job.seq).toBe(job.id);
    expect(job.create_time).toMatch(ISO_MS);
    expect(job.result_time).toMatch(ISO_MS);
  });

  it("gives the queue's counts under batchd's lowercase status names", () => {
    expect(out.stats).toEqual({ done: 1 });
  });

  it("reads a job's results with its stdout and stderr", () => {
    const job = (out.jobs as { id: number }[])[0];
    expect(out.results).toEqual([
      {
        job_id: job?.id,
        time: expect.stringMatching(ISO_MS) as unknown,
        exit_code: 0,
        stdout: 'hello from batchd\n',
        stderr: '',
      },
    ]);
  });

  it('deletes a waiting job as batchd did: it is gone from the queue and its counts', () => {
    const waiting = out.waiting as Record<string, unknown>[];
    expect(waiting).toHaveLength(1);
    expect(waiting[0]).toMatchObject({ status: 'New', queue: 'render' });
    expect(out.after_delete).toEqual([]);
    expect(out.render_stats).toEqual({});
  });
});

describe('the Python client library, Basic authentication', () => {
  let d: ApiDaemon;

  beforeAll(async () => {
    d = await startApiDaemon({
      manager: { auth: { basic: true, token: true } },
      jobTypes: { echo: ECHO },
      beforeStart: async (env) => {
        const users = new UserStore(path.join(env.etc, 'users.yaml'));
        await users.addUser('viewer', 'viewerpassword');
        await users.addGrant('viewer', { permission: 'ViewQueues' });
      },
    });
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
  });

  it('lets a viewer list queues, and refuses its enqueue (403) and a wrong password (401) as InsufficientRights', async () => {
    const result = await runPython(
      `
import json
from batchd.client import Client, InsufficientRightsException
out = {}
c = Client("${d.url}/batchd", 'viewer', 'viewerpassword')
out['queues'] = [q['name'] for q in c.get_queues()]
try:
    c.do_enqueue('default', 'echo', None, {'message': 'x'})
    out['enqueue'] = 'accepted'
except InsufficientRightsException as e:
    out['enqueue'] = str(e)
try:
    Client("${d.url}/batchd", 'viewer', 'wrong-password').get_queues()
    out['wrong'] = 'accepted'
except InsufficientRightsException as e:
    out['wrong'] = str(e)
print(json.dumps(out))
`,
      {},
    );
    expect(result.code, result.stderr).toBe(0);
    const out = lastJson<{ queues: string[]; enqueue: string; wrong: string }>(result);
    expect(out.queues).toEqual(['default']);
    expect(out.enqueue).toBe(
      'viewer lacks the CreateJobs permission for queue "default", type "echo", host "__default__"',
    );
    expect(out.wrong).toBe('Wrong user name or password');
    // The native API gives the same refusal for the same request: one permission check.
    const native = await fetch(`${d.url}/queue/default`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('viewer:viewerpassword').toString('base64')}` },
      body: JSON.stringify({ type: 'echo', params: { message: 'x' } }),
    });
    expect(native.status).toBe(403);
    expect(((await native.json()) as { error: { message: string } }).error.message).toBe(out.enqueue);
  });
});
