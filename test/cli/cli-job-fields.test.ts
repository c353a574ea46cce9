import { existsSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { queuedInOrder } from '../../daemon/dispatch/reorder.ts';
import type { JobInfo, QueuePurge } from '../../daemon/protocol/index.ts';
import { SpoolLayout } from '../../daemon/spool/layout.ts';
import { jobDir, jobsIn } from '../helpers/env.ts';
import { type ApiDaemon, enqueueJob, startApiDaemon } from './api-daemon.ts';
import { json } from './run-cli.ts';

/**
 * batchd's `job -u --at/-h` and `-p up/down`, `queue -d --status` and `host -q -t`, as real
 * processes against a real batchd process (authentication disabled).
 */
let d: ApiDaemon;
let layout: SpoolLayout;

beforeAll(async () => {
  d = await startApiDaemon({
    jobTypes: {
      echo: { template: "printf '%s\\n' $message", params: [{ name: 'message', type: 'String' }] },
    },
    queues: { held: { enabled: false }, swaps: { enabled: false } },
    beforeStart: (env) => {
      env.writeConfig('hosts/box.yaml', { host_name: '127.0.0.1', user_name: 'batch' });
      return Promise.resolve();
    },
  });
  layout = new SpoolLayout(d.env.spool);
});

afterAll(async () => {
  await d?.stop();
});

const enqueue = (args: string[]): Promise<string> => enqueueJob(d, args);
const show = async (id: string): Promise<JobInfo> => json<JobInfo>(await d.batch(['job', id, '--json']));

describe('job -u: start time and host', () => {
  it('--at sets the start time (batchd formats, +duration, now); any and anytime clear it', async () => {
    const id = await enqueue(['-q', 'held', '-t', 'echo', 'x']);
    const before = Date.now();
    const later = await d.batch(['job', id, '-u', '--at', '+1h', '--json']);
    expect(later.code, later.stderr).toBe(0);
    expect(Date.parse(json<JobInfo>(later).not_before ?? '') - before).toBeGreaterThan(3_590_000);
    const local = await d.batch(['job', id, '--at', '2030-01-02 03:04:05']);
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toMatch(new RegExp(`^${id} not before `));
    expect((await show(id)).not_before).toBe(new Date(2030, 0, 2, 3, 4, 5).toISOString());
    expect((await d.batch(['job', id, '--at', 'anytime'])).stdout).toBe(`${id} no start time\n`);
    expect((await show(id)).not_before).toBeNull();
    const now = await d.batch(['job', id, '--at', 'now', '--json']);
    expect(Math.abs(Date.parse(json<JobInfo>(now).not_before ?? '') - Date.now())).toBeLessThan(10_000);
    const bad = await d.batch(['job', id, '--at', 'soonish']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('cannot read the time');
  });

  it('-h sets the host, "*" clears it, an unknown host is refused (exit 6); fields go together in one call', async () => {
    const id = await enqueue(['-q', 'held', '-t', 'echo', 'y']);
    expect(await d.batch(['job', id, '-h', 'box'])).toMatchObject({ code: 0, stdout: `${id} host box\n` });
    expect((await show(id)).host).toBe('box');
    expect((await d.batch(['job', id, '-h', '*'])).stdout).toBe(`${id} no host of its own\n`);
    expect((await show(id)).host).toBeNull();
    const unknown = await d.batch(['job', id, '-h', 'nowhere']);
    expect(unknown.code).toBe(6);
    expect(unknown.stderr).toContain('Unknown host "nowhere"');
    const together = await d.batch(['job', id, '-h', 'box', '-n', 'on the box', '--at', '+2h']);
    expect(together.code, together.stderr).toBe(0);
    expect(together.stdout).toMatch(/ host box, notes changed\n$/);
    expect(await show(id)).toMatchObject({ host: 'box', notes: 'on the box' });
    const mixed = await d.batch(['job', id, '-h', 'box', '-p', 'up']);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain('give one change');
  });

  it('-h on a finished job is a conflict (exit 6)', async () => {
    const id = await enqueue(['-t', 'echo', 'z']);
    expect((await d.batch(['wait', id])).code).toBe(0);
    const res = await d.batch(['job', id, '-h', 'box']);
    expect(res.code).toBe(6);
    expect(res.stderr).toContain('only a queued job');
  });
});

describe('job -p up/down: one place in the queue', () => {
  it('up swaps the job with the one ahead, down with the one behind, as batchd', async () => {
    const ids = [
      await enqueue(['-q', 'swaps', '--', 'true']),
      await enqueue(['-q', 'swaps', '--', 'true']),
      await enqueue(['-q', 'swaps', '--', 'true']),
    ];
    const order = (): number[] => queuedInOrder(layout, 'swaps').map((p) => ids.indexOf(p.id));
    expect(order()).toEqual([0, 1, 2]);
    expect((await d.batch(['job', ids[2] ?? '', '-p', 'up'])).code).toBe(0);
    expect(order()).toEqual([0, 2, 1]);
    expect((await d.batch(['job', ids[0] ?? '', '-p', 'd'])).code).toBe(0);
    expect(order()).toEqual([2, 0, 1]);
    expect((await d.batch(['job', ids[1] ?? '', '-p', 'first'])).code).toBe(0);
    expect(order()).toEqual([1, 2, 0]);
  });
});

describe('queue NAME -d --status S', () => {
  it('deletes the done jobs of a queue and says how many; failed ones stay', async () => {
    const done = await enqueue(['-t', 'echo', 'gone soon']);
    const failed = await enqueue(['--', 'exit', '2']);
    expect((await d.batch(['wait', done])).code).toBe(0);
    expect((await d.batch(['wait', failed])).code).toBe(1);
    const doneBefore = jobsIn(d.env.spool, 'default', 'done').length;
    const res = await d.batch(['queue', 'default', '-d', '--status', 'done']);
    expect(res).toMatchObject({ code: 0, stdout: `queue default: ${doneBefore} done job(s) deleted\n` });
    expect(existsSync(jobDir(d.env.spool, 'default', 'done', done))).toBe(false);
    expect(existsSync(jobDir(d.env.spool, 'default', 'failed', failed))).toBe(true);
    expect((await d.batch(['job', done])).code).toBe(3);
  });

  it('--status queued cancels the queued jobs (--json gives the counts)', async () => {
    const id = await enqueue(['-q', 'held', '-t', 'echo', 'cancel me']);
    const res = await d.batch(['queue', 'held', '-d', '--status', 'New', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const result = json<QueuePurge>(res);
    expect(result).toMatchObject({ queue: 'held', status: 'queued', deleted: 0, skipped: [] });
    expect(result.cancelled).toBeGreaterThanOrEqual(1);
    expect((await show(id)).status).toBe('cancelled');
  });

  it('--status running is refused (exit 6); --status without -d or with -f is a usage error (exit 2)', async () => {
    const running = await d.batch(['queue', 'default', '-d', '--status', 'running']);
    expect(running.code).toBe(6);
    expect(running.stderr).toContain('cancel each');
    expect((await d.batch(['queue', 'default', '--status', 'done'])).code).toBe(2);
    expect((await d.batch(['queue', 'default', '-d', '-f', '--status', 'done'])).code).toBe(2);
    expect((await d.batch(['queue', 'default', '-d', '--status', 'sideways'])).code).toBe(6);
  });
});

describe('host -q QUEUE -t TYPE', () => {
  it('lists the hosts one may use for a type in a queue; -t needs -q; an unknown type exits 3', async () => {
    expect(await d.batch(['host', '-q', 'default', '-t', 'echo'])).toMatchObject({
      code: 0,
      stdout: '__default__\nbox\n',
    });
    expect(json<string[]>(await d.batch(['host', '-q', 'default', '-t', 'echo', '--json']))).toEqual([
      '__default__',
      'box',
    ]);
    expect((await d.batch(['host', '-t', 'echo'])).code).toBe(2);
    expect((await d.batch(['host', '-q', 'default', '-t', 'nosuch'])).code).toBe(3);
  });
});
