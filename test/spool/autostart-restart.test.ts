import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { startInProcess } from '../helpers/dispatch.ts';
import { drop, jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { sleep } from '../helpers/spool-checks.ts';

/** A queue enabled by its autostart_job_count stays enabled across a restart, until queue.yaml is edited. */
describe('autostart_job_count across restarts', () => {
  let env: TestEnv | undefined;
  let daemon: Daemon | undefined;
  afterEach(async () => {
    await daemon?.stop();
    env?.cleanup();
  });

  const doneCount = (): number => jobsIn(env?.spool ?? '', 'batch', 'done').length;

  it('keeps the queue enabled after a restart, and disabled again once queue.yaml is edited', async () => {
    env = makeEnv({ queues: { batch: { enabled: false, autostart_job_count: 2 } } });
    daemon = await startInProcess(env);
    drop(env.spool, 'batch', 'command: "true"\n', 'one.yaml');
    await sleep(600);
    expect(doneCount()).toBe(0); // one job is below the threshold
    drop(env.spool, 'batch', 'command: "true"\n', 'two.yaml');
    await waitFor(() => doneCount() === 2, 15_000, 'the queue to start by itself');

    await daemon.stop();
    daemon = await startInProcess(env);
    drop(env.spool, 'batch', 'command: "true"\n', 'three.yaml');
    await waitFor(() => doneCount() === 3, 15_000, 'a job after the restart to run');

    // The user edits queue.yaml (here: writes the same settings again): their word stands again.
    writeFileSync(path.join(env.spool, 'batch', 'queue.yaml'), 'enabled: false\nautostart_job_count: 2\n');
    await waitFor(() => daemon?.queues.settings('batch').enabled === false, 15_000, 'the edit to be read');
    drop(env.spool, 'batch', 'command: "true"\n', 'four.yaml');
    await sleep(800);
    expect(doneCount()).toBe(3);
  }, 60_000);
});
