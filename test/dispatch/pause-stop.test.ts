import path from 'node:path';

import { afterEach, expect, it } from 'vitest';

import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { ledger, pidAlive } from '../helpers/dispatch.ts';
import { waitFor } from '../helpers/env.ts';
import { counter, probe } from './pause-helpers.ts';

/** A graceful stop of the daemon while a job is paused (daemon/dispatch/pause.ts), real processes. */
let d: ApiDaemon | undefined;

afterEach(() => {
  d?.daemon.kill('SIGKILL');
  d?.env.cleanup();
  d = undefined;
});

it('a graceful stop does not wait the grace time for a paused job: it is stopped and queued again, while a busy job may finish', async () => {
  // A grace time far longer than the test: a stop that waited for the paused job would time it out.
  d = await startApiDaemon({ config: { dispatcher: { workers: 4, grace_time: 600 } } });
  const p = probe(d);
  const pidFile = path.join(d.env.root, 'paused-pid');
  const paused = await p.submit('default', {
    command: `sh -c 'echo $$ > ${pidFile}; exec sleep 600' & ${counter(6000)}`,
  });
  await waitFor(() => p.stdoutSize(paused) >= 6, 15_000, 'the job to print');
  const child = Number(await waitFor(() => ledger(pidFile)[0]));
  expect((await p.call('POST', `/job/${paused}/pause`)).body).toMatchObject({ result: 'paused' });
  const busy = await p.runningCounter('default', 20);

  const exited = d.daemon.stop();
  await waitFor(() => p.where(busy).state !== 'running', 30_000, 'the busy job to end');
  await exited;

  expect(p.where(busy).state).toBe('done');
  expect(p.where(paused).state).toBe('queued');
  const record = p.stateOf(paused);
  expect(record.interruptions).toBe(1);
  expect(record.last?.outcome).toBe('interrupted');
  expect(record.paused_at).toBeUndefined();
  expect(record.paused_seconds).toBeGreaterThan(0);
  await waitFor(() => !pidAlive(child), 5000, "the paused job's child to be gone");
});
