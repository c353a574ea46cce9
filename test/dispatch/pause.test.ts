import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { ledger, pidAlive, request, waitForState } from '../helpers/dispatch.ts';
import { waitFor } from '../helpers/env.ts';
import { counter, fullCount, probe } from './pause-helpers.ts';

/**
 * Pause and resume of a running job (daemon/dispatch/pause.ts) against a real batchd process, by
 * the API and by plain-file requests: a paused job's output stops, its record says so, and it
 * finishes once resumed. A queue's pause: pause-queue.test.ts; a graceful stop with paused jobs:
 * pause-stop.test.ts; the CLI's verbs: test/cli/cli-pause.test.ts.
 */
let d: ApiDaemon;
let p: ReturnType<typeof probe>;

beforeAll(async () => {
  d = await startApiDaemon({
    config: { dispatcher: { workers: 4 } },
    queues: { default: null, held: { enabled: false } },
  });
  p = probe(d);
});

afterAll(async () => {
  await d?.stop();
});

describe('pause and resume of a running job', () => {
  it('by the API: its output stops while paused, it finishes after resume, and state.yaml records the time paused', async () => {
    const id = await p.runningCounter('default', 30);
    const paused = await p.call('POST', `/job/${id}/pause`);
    expect(paused).toMatchObject({ status: 200, body: { id, result: 'paused' } });
    await p.expectNoProgress(id);
    const record = p.stateOf(id);
    expect(record.paused_at).toEqual(expect.any(String));
    expect(record.history.at(-1)).toMatchObject({ from: 'running', to: 'running' });
    expect(record.history.at(-1)?.reason).toMatch(/^paused by anonymous \(API\)/);
    const shown = await p.call('GET', `/job/${id}`);
    expect(shown.body).toMatchObject({ status: 'running', paused_at: record.paused_at });
    // Pausing again changes nothing.
    expect((await p.call('POST', `/job/${id}/pause`)).body).toMatchObject({ result: 'paused' });
    expect(p.stateOf(id).paused_at).toBe(record.paused_at);

    expect((await p.call('POST', `/job/${id}/resume`)).body).toMatchObject({ id, result: 'resumed' });
    await waitForState(d.env, id, 'done', 20_000);
    expect(p.stdoutOf(id)).toBe(fullCount(30));
    const done = p.stateOf(id);
    expect(done.paused_at).toBeUndefined();
    expect(done.paused_seconds).toBeGreaterThanOrEqual(1.3);
    expect(done.history.map((h) => h.reason)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^resumed by anonymous \(API\) after .* paused$/)]),
    );
    expect((await p.call('GET', `/job/${id}`)).body).toMatchObject({
      status: 'done',
      paused_seconds: done.paused_seconds,
    });
  });

  it('the event stream tells of the pause and the resume', async () => {
    const id = await p.runningCounter('default', 30);
    const stream = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(`${d.url}/events`, resolve).on('error', reject),
    );
    let seen = '';
    stream.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    const readUntil = (text: string): Promise<boolean> =>
      waitFor(() => seen.includes(text), 10_000, `${text} on the event stream`);
    await readUntil(': connected');
    await p.call('POST', `/job/${id}/pause`);
    await readUntil('event: job:paused');
    await p.call('POST', `/job/${id}/resume`);
    await readUntil('event: job:resumed');
    stream.destroy();
    const lines = seen.split('\n').filter((l) => l.startsWith('data:') && l.includes(id));
    expect(lines.map((l) => (JSON.parse(l.slice(5)) as { reason: string }).reason)).toEqual([
      'paused by anonymous (API)',
      expect.stringMatching(/^resumed by anonymous \(API\)/),
    ]);
    await waitForState(d.env, id, 'done', 20_000);
  });

  it('by plain-file requests <id>.pause and <id>.resume', async () => {
    const id = await p.runningCounter('default', 30);
    const file = request(d.env, 'default', id, 'pause', 'the machine is needed');
    await waitFor(() => p.stateOf(id).paused_at, 10_000, 'the pause to be recorded');
    await waitFor(() => !existsSync(file), 10_000, 'the request to be taken');
    await p.expectNoProgress(id);
    expect(p.stateOf(id).history.at(-1)?.reason).toBe('paused by request: the machine is needed');
    request(d.env, 'default', id, 'resume');
    await waitForState(d.env, id, 'done', 20_000);
    expect(p.stdoutOf(id)).toBe(fullCount(30));
    expect(p.stateOf(id).paused_seconds).toBeGreaterThanOrEqual(1.3);
  });

  it('a queued job is refused with a clear error, and so is a finished one', async () => {
    const queued = await p.submit('held', { command: 'true' });
    const refused = await p.call('POST', `/job/${queued}/pause`);
    expect(refused.status).toBe(409);
    expect(refused.body.error?.message).toBe(
      `Job ${queued} is queued; only a running job can be paused (to hold a queued job, disable its queue or give it a not_before time)`,
    );
    const done = await p.submit('default', { command: 'true' });
    await waitForState(d.env, done, 'done');
    const late = await p.call('POST', `/job/${done}/resume`);
    expect(late.status).toBe(409);
    expect(late.body.error?.message).toBe(`Job ${done} is done; only a running job can be resumed`);
    expect((await p.call('POST', '/job/20260101T000000.000Z-nosuch/pause')).status).toBe(404);
  });

  it('cancel of a paused job ends it cancelled, with no process left', async () => {
    const pidFile = path.join(d.env.root, 'cancel-pid');
    const id = await p.submit('default', {
      command: `sh -c 'echo $$ > ${pidFile}; exec sleep 60' & ${counter(600)}`,
    });
    await waitFor(() => p.stdoutSize(id) >= 6, 15_000, 'the job to print');
    const child = Number(await waitFor(() => ledger(pidFile)[0]));
    await p.call('POST', `/job/${id}/pause`);
    await p.expectNoProgress(id);
    expect((await p.call('POST', `/job/${id}/cancel`)).body).toMatchObject({ result: 'stopping' });
    await waitForState(d.env, id, 'cancelled', 15_000);
    await waitFor(() => !pidAlive(child), 5000, 'the paused child to be gone');
    const record = p.stateOf(id);
    expect(record.last?.outcome).toBe('cancelled');
    expect(record.paused_at).toBeUndefined();
    expect(record.paused_seconds).toBeGreaterThan(1);
  });

  it('a job with a timeout of 2 s paused for 3 s still finishes: its timeout does not run while paused', async () => {
    const id = await p.runningCounter('default', 8, { timeout: '2s' });
    await p.call('POST', `/job/${id}/pause`);
    await sleep(3000);
    expect(p.where(id).state).toBe('running');
    await p.call('POST', `/job/${id}/resume`);
    await waitForState(d.env, id, 'done', 15_000);
    expect(p.stdoutOf(id)).toBe(fullCount(8));
    expect(p.stateOf(id).last?.outcome).toBe('success');
  });
});
