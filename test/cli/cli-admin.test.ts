import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobInfo, QueueInfo, ScheduleInfo } from '../../daemon/protocol/index.ts';
import { type ApiDaemon, enqueueJob, startApiDaemon } from './api-daemon.ts';
import { json } from './run-cli.ts';

/**
 * The catalogue and admin verbs (ls of queues, type, host, stats, queue, schedule) and the settings
 * precedence, as real processes against a real batchd process, authentication disabled.
 */
let d: ApiDaemon;

beforeAll(async () => {
  d = await startApiDaemon({
    jobTypes: {
      echo: { template: "printf '%s\\n' $message", params: [{ name: 'message', type: 'String' }] },
    },
    queues: {
      held: { enabled: false },
      fromfile: { enabled: false },
      fromenv: { enabled: false },
      fromflag: { enabled: false },
    },
  });
});

afterAll(async () => {
  await d?.stop();
});

const enqueue = (args: string[]): Promise<string> => enqueueJob(d, args);

describe('reads', () => {
  it('ls lists the queues as aligned text in a pipe, and as JSON with --json', async () => {
    const text = await d.batch(['ls']);
    expect(text.code).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      /^ON\s+QUEUE\s+TITLE\s+SCHEDULE\s+HOST\s+AUTO\s+QUEUED\s+RUN\s+DONE\s+FAILED\s+CANCEL$/,
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^\[\*\]\s+default\s+default\s+anytime\s+\*\s+no\s+\d/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^\[ \]\s+held\s/));
    const queues = json<QueueInfo[]>(await d.batch(['ls', '--json']));
    expect(queues.map((q) => q.name).sort()).toEqual(['default', 'fromenv', 'fromfile', 'fromflag', 'held']);
    expect(queues.find((q) => q.name === 'held')).toMatchObject({ enabled: false, counts: { queued: 0 } });
  });

  it("type shows the server's job types and a type's parameters in order", async () => {
    const types = json<{ name: string }[]>(await d.batch(['type', '--json']));
    expect(types.map((t) => t.name)).toEqual(expect.arrayContaining(['command', 'echo']));
    const echo = await d.batch(['type', 'echo']);
    expect(echo.code).toBe(0);
    expect(echo.stdout).toMatch(/1\s+message\s+String/);
    expect((await d.batch(['type', 'nosuch'])).code).toBe(3);
  });

  it("stats and host read the server's counts and hosts", async () => {
    const stats = json<Record<string, { queued: number }>>(await d.batch(['stats', '--json']));
    expect(Object.keys(stats)).toEqual(expect.arrayContaining(['default', 'held']));
    expect(json<unknown[]>(await d.batch(['host', '--json']))).toEqual([]);
  });

  it('-v tells on stderr which server and config it used and each request, leaving stdout alone', async () => {
    const verbose = await d.batch(['-v', 'stats', '--json']);
    expect(verbose.code).toBe(0);
    expect(verbose.stderr).toContain(`batch: server ${d.url} (from env), client config none`);
    expect(verbose.stderr).toMatch(/batch: GET \/stats → 200 \(\d+ ms\)/);
    expect(Object.keys(json<object>(verbose))).toContain('default');
  });
});

describe('queues and schedules', () => {
  it('queue adds, shows, changes and deletes a queue; a queue with jobs needs -f', async () => {
    const added = json<QueueInfo>(await d.batch(['queue', 'q2', '-a', '-n', 'Second', '-D', '--json']));
    expect(added).toMatchObject({ name: 'q2', title: 'Second', enabled: false, schedule_name: 'anytime' });
    const changed = json<QueueInfo>(
      await d.batch(['queue', 'q2', '--priority', '5', '--parallel', '2', '--autostart', '3', '--json']),
    );
    expect(changed).toMatchObject({ priority: 5, parallel: 2, autostart_job_count: 3, enabled: false });
    await enqueue(['-q', 'q2', '-t', 'echo', 'x']);
    const refused = await d.batch(['queue', 'q2', '-d']);
    expect(refused.code).toBe(6);
    expect(refused.stderr).toContain('batch queue q2 -d -f');
    expect((await d.batch(['queue', 'q2', '-d', '-f'])).code).toBe(0);
    expect((await d.batch(['queue', 'q2'])).code).toBe(3);
    expect((await d.batch(['queue', 'q2', '-e', '-D'])).code).toBe(2);
  });

  it('schedule adds, lists and deletes a schedule', async () => {
    const added = json<ScheduleInfo>(
      await d.batch(['schedule', 'night', '-a', '-p', '22:00 06:00', '-w', 'Mon', '--json']),
    );
    expect(added).toMatchObject({
      name: 'night',
      weekdays: ['Monday'],
      time: [{ begin: '22:00:00', end: '06:00:00' }],
    });
    const list = await d.batch(['schedule']);
    expect(list.stdout).toMatch(/^night\s+Mon\s+22:00:00–06:00:00/m);
    expect((await d.batch(['schedule', 'night', '-d'])).code).toBe(0);
    expect((await d.batch(['schedule', 'night', '-d'])).code).toBe(3);
  });
});

describe('settings', () => {
  it('takes the queue from -q over BATCH_QUEUE over client.yaml', async () => {
    const config = path.join(d.home, '.config', 'batchd');
    mkdirSync(config, { recursive: true });
    writeFileSync(path.join(config, 'client.yaml'), 'queue: fromfile\ntype: echo\n');
    const fromFile = (await d.batch(['enqueue', 'a'])).stdout.trim();
    const fromEnv = (await d.batch(['enqueue', 'b'], { env: { BATCH_QUEUE: 'fromenv' } })).stdout.trim();
    const fromFlag = (
      await d.batch(['enqueue', '-q', 'fromflag', 'c'], { env: { BATCH_QUEUE: 'fromenv' } })
    ).stdout.trim();
    const jobs = json<JobInfo[]>(await d.batch(['ls', 'fromfile', 'fromenv', 'fromflag', '--json']));
    const queueOf = (id: string): string | undefined => jobs.find((j) => j.id === id)?.queue;
    expect([queueOf(fromFile), queueOf(fromEnv), queueOf(fromFlag)]).toEqual([
      'fromfile',
      'fromenv',
      'fromflag',
    ]);
    expect(jobs.find((j) => j.id === fromFile)?.type).toBe('echo'); // the type came from client.yaml too
  });

  it('takes the server from client.yaml unless BATCH_MANAGER_URL says otherwise', async () => {
    const file = path.join(d.home, 'other-client.yaml');
    writeFileSync(file, `manager_url: ${d.url}\n`);
    const ok = await d.batch(['--client-config', file, 'stats', '--json'], {
      env: { BATCH_MANAGER_URL: '' },
    });
    expect(ok.code).toBe(0);
    const overridden = await d.batch(['stats'], {
      env: { BATCH_CLIENT_CONFIG: file, BATCH_MANAGER_URL: 'http://127.0.0.1:1' },
    });
    expect(overridden.code).toBe(5);
    expect(overridden.stderr).toContain('cannot reach http://127.0.0.1:1 — is batchd running?');
  });
});
