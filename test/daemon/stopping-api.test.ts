import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { blockUntil, touch } from '../helpers/dispatch.ts';
import { jobsIn, waitFor } from '../helpers/env.ts';

/**
 * What the daemon says about itself over the API: during a graceful stop it keeps answering reads
 * and says it is stopping, refusing writes with 503 and Retry-After; and it counts the dispatchers
 * sharing its spool.
 */
describe('the API of a daemon that is stopping, and of a shared spool', () => {
  let d: ApiDaemon | undefined;
  let other: DaemonProcess | undefined;

  afterEach(async () => {
    other?.kill('SIGKILL');
    await other?.exited;
    other = undefined;
    d?.daemon.kill('SIGKILL');
    await d?.stop();
    d = undefined;
  });

  /** Poll an async check (waitFor takes synchronous ones). */
  const eventually = async (check: () => Promise<boolean>, what: string): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const get = async (url: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await fetch(url);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it('keeps answering reads while running jobs finish, says it is stopping, and refuses writes with 503', async () => {
    d = await startApiDaemon({ queues: { default: null }, config: { dispatcher: { grace_time: 60 } } });
    const gate = path.join(d.env.root, 'go');
    const submit = (): Promise<Response> =>
      fetch(`${d?.url ?? ''}/queue/default`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ command: blockUntil(gate) }),
      });
    const submitted = (await (await submit()).json()) as { jobs: string[] };
    const id = submitted.jobs[0] ?? '';
    await waitFor(
      () => jobsIn(d?.env.spool ?? '', 'default', 'running').includes(id),
      15_000,
      'the job to run',
    );
    expect((await get(`${d.url}/health`)).body).toMatchObject({
      status: 'running',
      stopping: false,
      running: 1,
    });

    d.daemon.kill('SIGTERM');
    await eventually(async () => (await get(`${d?.url ?? ''}/health`)).body.stopping === true, 'stopping');
    expect((await get(`${d.url}/health`)).body).toMatchObject({
      status: 'stopping',
      stopping: true,
      dispatchers: 1,
      running: 1,
    });
    // Reads: the running job, the queues.
    const job = await get(`${d.url}/job/${id}`);
    expect(job).toMatchObject({ status: 200, body: { id, status: 'running' } });
    expect((await fetch(`${d.url}/queue`)).status).toBe(200);
    // Writes: refused, saying why and when to try again.
    const refused = await submit();
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    const error = ((await refused.json()) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('STOPPING');
    expect(error.message).toMatch(/^batchd is stopping .* takes no submissions or changes now/);
    expect((await fetch(`${d.url}/job/${id}/cancel`, { method: 'POST' })).status).toBe(503);
    // `batch ls` lists as usual and ends with a line saying so.
    const ls = await d.batch(['ls']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain('default');
    expect(ls.stderr.trimEnd().split('\n').at(-1)).toMatch(/^daemon stopping: it waits for 1 running job/);

    touch(gate);
    expect((await d.daemon.exited).code).toBe(0);
    expect(jobsIn(d.env.spool, 'default', 'done')).toEqual([id]);
    await expect(fetch(`${d.url}/health`)).rejects.toThrow(); // closed only once the job had finished
  });

  it('counts the dispatchers sharing the spool, in GET /health and in batch ls', async () => {
    d = await startApiDaemon({ queues: { default: null } });
    expect((await get(`${d.url}/health`)).body.dispatchers).toBe(1);
    expect((await d.batch(['ls'])).stderr).not.toContain('dispatchers share this spool');

    // A second dispatcher on the same spool (its API on another free port).
    other = await startDaemon(d.env.etc, d.env.spool);
    await eventually(async () => (await get(`${d?.url ?? ''}/health`)).body.dispatchers === 2, 'two');
    const ls = await d.batch(['ls']);
    expect(ls.code).toBe(0);
    expect(ls.stderr).toContain('2 dispatchers share this spool');

    await other.stop();
    other = undefined;
    expect((await get(`${d.url}/health`)).body.dispatchers).toBe(1);
  });
});
