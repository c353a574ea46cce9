import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobsIn, makeEnv, readState, type TestEnv, waitFor } from '../helpers/env.ts';
import { readLedger } from '../helpers/spool-checks.ts';

/**
 * No timing assertion on a noisy machine: the rescan interval and the in-place stability wait are
 * set to a minute, so a job that runs within seconds was started by the drop's event and by the
 * end of the previous job, not by a timer.
 */
const SLOW_S = 60;

describe('a new drop with a free slot', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let ledger: string;

  beforeAll(async () => {
    env = makeEnv({
      queues: { default: null },
      config: { dispatcher: { workers: 1, poll_timeout: SLOW_S, stable_time: SLOW_S } },
    });
    ledger = path.join(env.root, 'ledger');
    env.writeConfig('jobtypes/mark.yaml', {
      template: [
        'echo "$BATCHD_JOB_ID start" >> "$LEDGER"',
        'sleep $secs',
        'echo "$BATCHD_JOB_ID end" >> "$LEDGER"',
      ],
      params: [{ name: 'secs', type: 'Float' }],
      environment: { LEDGER: ledger },
    });
    daemon = await startDaemon(env.etc, env.spool);
  });
  afterAll(async () => {
    await daemon.stop();
    env.cleanup();
  });

  it('starts without waiting for a rescan, and the next one starts when the slot frees', async () => {
    const started = Date.now();
    drop(env.spool, 'default', { type: 'mark', params: { secs: 1 } }, 'first.yaml');
    await waitFor(() => readLedger(ledger).length > 0, (SLOW_S * 1000) / 4, 'the first job to start');
    // The slot is busy: the second waits for the first job's end, not for the rescan.
    drop(env.spool, 'default', { type: 'mark', params: { secs: 0 } }, 'second.yaml');
    await waitFor(
      () => jobsIn(env.spool, 'default', 'done').length === 2,
      (SLOW_S * 1000) / 4,
      'both jobs to finish',
    );
    const elapsed = Date.now() - started; // reported only: the waits above bound it

    const lines = readLedger(ledger).map((l) => l.split(' ')[1]);
    expect(lines).toEqual(['start', 'end', 'start', 'end']);
    const [first, second] = ['first', 'second'].map((slug) => {
      const id = jobsIn(env.spool, 'default', 'done').find((i) => i.endsWith(`-${slug}`)) ?? '';
      return readState(env.spool, 'default', 'done', id);
    });
    const firstEnded = Date.parse(first?.last?.ended_at ?? '');
    const secondStarted = Date.parse(second?.last?.started_at ?? '');
    expect(secondStarted).toBeGreaterThanOrEqual(firstEnded - 5);
    // Well inside the minute a rescan would take: the first job's end started the second.
    expect(secondStarted - firstEnded).toBeLessThan((SLOW_S * 1000) / 4);
    console.log(
      `prompt start: two jobs in ${elapsed} ms; second started ${secondStarted - firstEnded} ms after the first ended`,
    );
  });
});
