import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { waitForState } from '../helpers/dispatch.ts';
import { fullCount, probe } from './pause-helpers.ts';

/**
 * A queue's pause that also freezes its running jobs (POST /queue/:q/pause?running=freeze), and its
 * resume, against a real batchd process. One job at a time: pause.test.ts.
 */
let d: ApiDaemon;
let p: ReturnType<typeof probe>;

beforeAll(async () => {
  d = await startApiDaemon({
    config: { dispatcher: { workers: 4 } },
    queues: { default: null, farm: null },
  });
  p = probe(d);
});

afterAll(async () => {
  await d?.stop();
});

describe('a queue pause that freezes its running jobs', () => {
  it('?running=freeze disables the queue and pauses its running jobs; resume enables it and thaws them', async () => {
    const a = await p.runningCounter('farm', 30);
    const b = await p.runningCounter('farm', 30);
    const elsewhere = await p.runningCounter('default', 30);
    const paused = await p.call('POST', '/queue/farm/pause?running=freeze');
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ queue: 'farm', enabled: false });
    expect(paused.body.jobs).toEqual(
      expect.arrayContaining([
        { id: a, result: 'paused' },
        { id: b, result: 'paused' },
      ]),
    );
    expect(paused.body.jobs).toHaveLength(2);
    const queued = await p.submit('farm', { command: 'true' });
    await p.expectNoProgress(a);
    expect(p.stateOf(b).paused_at).toEqual(expect.any(String));
    expect(p.stateOf(elsewhere).paused_at).toBeUndefined();
    expect(p.where(queued).state).toBe('queued');
    expect((await p.call('GET', '/queue/farm')).body).toMatchObject({ enabled: false });

    const resumed = await p.call('POST', '/queue/farm/resume');
    expect(resumed.body).toMatchObject({ queue: 'farm', enabled: true });
    expect(resumed.body.jobs).toEqual(
      expect.arrayContaining([
        { id: a, result: 'resumed' },
        { id: b, result: 'resumed' },
      ]),
    );
    for (const id of [a, b]) {
      await waitForState(d.env, id, 'done', 20_000);
      expect(p.stdoutOf(id)).toBe(fullCount(30));
      expect(p.stateOf(id).paused_seconds).toBeGreaterThanOrEqual(1.3);
    }
    await waitForState(d.env, queued, 'done', 15_000);
    await waitForState(d.env, elsewhere, 'done', 15_000);
  });

  it('a job paused on its own stays paused when its queue is resumed, and a plain pause leaves running jobs alone', async () => {
    const own = await p.runningCounter('farm', 30);
    const other = await p.runningCounter('farm', 30);
    await p.call('POST', `/job/${own}/pause`);
    expect((await p.call('POST', '/queue/farm/pause')).body).toEqual({
      queue: 'farm',
      enabled: false,
      jobs: [],
    });
    expect(p.stateOf(other).paused_at).toBeUndefined();
    await p.call('POST', '/queue/farm/pause?running=freeze');
    expect(p.stateOf(other).paused_at).toEqual(expect.any(String));
    const resumed = await p.call('POST', '/queue/farm/resume');
    expect(resumed.body.jobs).toEqual([{ id: other, result: 'resumed' }]);
    await waitForState(d.env, other, 'done', 20_000);
    expect(p.where(own).state).toBe('running');
    await p.expectNoProgress(own);
    await p.call('POST', `/job/${own}/resume`);
    await waitForState(d.env, own, 'done', 20_000);
    expect(p.stdoutOf(own)).toBe(fullCount(30));
  });

  it('enabling the queue by changing its settings thaws what its pause froze', async () => {
    const id = await p.runningCounter('farm', 30);
    await p.call('POST', '/queue/farm/pause?running=freeze');
    await p.expectNoProgress(id);
    expect((await p.call('PUT', '/queue/farm', { enabled: true })).status).toBe(200);
    await waitForState(d.env, id, 'done', 20_000);
    expect(p.stdoutOf(id)).toBe(fullCount(30));
    expect(p.stateOf(id).history.map((h) => h.reason)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^resumed by the enabling of queue farm/)]),
    );
  });
});
