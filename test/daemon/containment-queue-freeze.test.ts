import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { fullCount, probe } from '../dispatch/pause-helpers.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { waitForState } from '../helpers/dispatch.ts';
import { waitFor } from '../helpers/env.ts';

/**
 * A queue's pause with ?running=freeze reaches every running job of the queue, also those that
 * another dispatcher process on the same spool runs (a `<id>.freeze` request is left for it), and
 * the queue's resume thaws them all: two real daemon processes on one spool.
 */
let a: ApiDaemon;
let b: DaemonProcess;
let p: ReturnType<typeof probe>;

const COUNT = 60;

beforeAll(async () => {
  a = await startApiDaemon({
    config: { dispatcher: { workers: 2, poll_timeout: 0.5 } },
    queues: { farm: null },
  });
  b = await startDaemon(a.env.etc, a.env.spool);
  p = probe(a);
});

afterAll(async () => {
  await b?.stop();
  await a?.stop();
});

/** The pid of the daemon that runs a job (its record's owner). */
function ownerOf(id: string): number | undefined {
  return (p.stateOf(id) as { running?: { owner?: { pid?: number } } }).running?.owner?.pid;
}

describe('a queue freeze on a spool shared by two dispatchers', () => {
  it('pauses the running jobs of both dispatchers, and the queue’s resume thaws them all', async () => {
    // Two workers each: four jobs run two and two.
    const ids = await Promise.all(
      Array.from({ length: 4 }, () =>
        p.submit('farm', {
          command: `i=0; while [ $i -lt ${COUNT} ]; do echo $i; i=$((i+1)); sleep 0.1; done`,
        }),
      ),
    );
    await waitFor(
      () => ids.every((id) => p.where(id).state === 'running' && p.stdoutSize(id) >= 6) || undefined,
      30_000,
      'all four jobs to run and print',
    );
    const owners = new Map(ids.map((id) => [id, ownerOf(id)]));
    const ofB = ids.filter((id) => owners.get(id) === b.pid);
    const ofA = ids.filter((id) => owners.get(id) !== b.pid);
    expect(ofB).toHaveLength(2);
    expect(ofA).toHaveLength(2);

    const paused = await p.call('POST', '/queue/farm/pause?running=freeze');
    expect(paused.status).toBe(200);
    expect(paused.body.jobs).toEqual(
      expect.arrayContaining([
        ...ofA.map((id) => ({ id, result: 'paused' })),
        ...ofB.map((id) => ({ id, result: 'requested' })),
      ]),
    );
    // The other dispatcher takes its requests and freezes its jobs too.
    await waitFor(
      () => ids.every((id) => p.stateOf(id).paused_at !== undefined) || undefined,
      15_000,
      'every job of the queue to be paused',
    );
    const requests = path.join(a.env.spool, 'farm', 'requests');
    await waitFor(
      () => !existsSync(requests) || readdirSync(requests).length === 0 || undefined,
      10_000,
      'the freeze requests to be carried out',
    );
    for (const id of ofB) expect(p.stateOf(id).history.at(-1)?.reason).toMatch(/^paused by request: /);
    await Promise.all(ids.map((id) => p.expectNoProgress(id)));

    const resumed = await p.call('POST', '/queue/farm/resume');
    expect(resumed.status).toBe(200);
    for (const id of ids) {
      await waitForState(a.env, id, 'done', 30_000);
      expect(p.stdoutOf(id)).toBe(fullCount(COUNT));
      expect(p.stateOf(id).paused_seconds).toBeGreaterThanOrEqual(1.3);
    }
  });
});
