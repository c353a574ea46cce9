import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobInfo } from '../../daemon/protocol/index.ts';
import { fullCount, probe } from '../dispatch/pause-helpers.ts';
import { waitForState } from '../helpers/dispatch.ts';
import { type ApiDaemon, startApiDaemon } from './api-daemon.ts';
import { json } from './run-cli.ts';

/**
 * `batch pause`, `batch resume` and `batch queue Q -D --freeze` as real processes against a real
 * batchd process; `batch job` and `batch ls` show a paused job as paused.
 */
let d: ApiDaemon;
let p: ReturnType<typeof probe>;

beforeAll(async () => {
  d = await startApiDaemon({
    config: { dispatcher: { workers: 4 } },
    queues: { default: null, farm: null, held: { enabled: false } },
  });
  p = probe(d);
});

afterAll(async () => {
  await d?.stop();
});

/** The random part of a job id: a prefix `batch` takes as the job. */
const shortId = (id: string): string => id.split('-')[1] ?? id;

describe('batch pause and batch resume', () => {
  it('pause by a short id freezes the job; job and ls show it paused; resume lets it finish', async () => {
    const id = await p.runningCounter('default', 30);
    const paused = await d.batch(['pause', shortId(id)]);
    expect(paused).toMatchObject({ code: 0, stdout: `${id} paused\n`, stderr: '' });
    await p.expectNoProgress(id);

    const shown = await d.batch(['job', id]);
    expect(shown.stdout).toMatch(/^status: +paused$/m);
    expect(shown.stdout).toMatch(/^paused since: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/m);
    const info = json<JobInfo>(await d.batch(['job', id, '--json']));
    expect(info.status).toBe('running');
    expect(info.paused_at).toBe(p.stateOf(id).paused_at);
    const listed = await d.batch(['ls', 'default', '-s', 'running']);
    expect(listed.stdout.split('\n').find((line) => line.startsWith(id))).toMatch(/\bpaused\b/);

    const resumed = await d.batch(['resume', shortId(id), '--json']);
    expect(resumed.code).toBe(0);
    expect(json(resumed)).toEqual([{ id, result: 'resumed' }]);
    await waitForState(d.env, id, 'done', 20_000);
    expect(p.stdoutOf(id)).toBe(fullCount(30));
    const ended = await d.batch(['job', id]);
    expect(ended.stdout).toMatch(/^status: +done$/m);
    expect(ended.stdout).toMatch(/^paused \(s\): +\d+(\.\d+)?$/m);
  });

  it('pause of a queued job fails with the reason, and the other ids given are still tried', async () => {
    const queued = await p.submit('held', { command: 'true' });
    const running = await p.runningCounter('default', 30);
    const result = await d.batch(['pause', queued, running]);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe(`${running} paused\n`);
    expect(result.stderr).toContain(`${queued}: Job ${queued} is queued; only a running job can be paused`);
    await d.batch(['resume', running]);
    await waitForState(d.env, running, 'done', 20_000);
  });
});

describe('batch queue Q -D --freeze', () => {
  it('disables the queue and pauses its running jobs; -e enables it and they finish', async () => {
    const id = await p.runningCounter('farm', 30);
    const frozen = await d.batch(['queue', 'farm', '-D', '--freeze']);
    expect(frozen.code).toBe(0);
    expect(frozen.stdout).toBe(`queue farm disabled; 1 running job(s)\n  ${id} paused\n`);
    await p.expectNoProgress(id);
    expect((await d.batch(['queue', 'farm', '-e'])).code).toBe(0);
    await waitForState(d.env, id, 'done', 20_000);
    expect(p.stdoutOf(id)).toBe(fullCount(30));
    expect(p.stateOf(id).paused_seconds).toBeGreaterThanOrEqual(1.3);
  });

  it('--freeze without -D is a usage error', async () => {
    const result = await d.batch(['queue', 'farm', '--freeze']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('queue --freeze goes with --disable (-D)');
  });
});
