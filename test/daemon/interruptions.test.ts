import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobsIn, makeEnv, readState, type TestEnv, waitFor } from '../helpers/env.ts';
import { jobProcessesOf, readLedger } from '../helpers/spool-checks.ts';

/**
 * A daemon crash is not the job's failure: jobs of the built-in `command` type (on_fail:
 * continue) that a `kill -9` interrupts run again and end in done/, each interruption counted apart
 * from the retries; past dispatcher.max_interruptions a job fails with that reason.
 */
describe('interrupted runs', () => {
  let env: TestEnv | undefined;
  let daemon: DaemonProcess | undefined;

  afterEach(async () => {
    daemon?.kill('SIGKILL');
    await daemon?.exited;
    for (const pid of env === undefined ? [] : jobProcessesOf(env.spool)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    env?.cleanup();
  });

  const killNow = async (): Promise<void> => {
    daemon?.kill('SIGKILL');
    await daemon?.exited;
    // The launcher takes the job processes with it once its channel closes.
    await waitFor(() => jobProcessesOf(env?.spool ?? '').length === 0, 10_000, 'job processes to end');
  };

  it('runs every command job a kill -9 interrupted again, to done, its interruption counted', async () => {
    env = makeEnv({ queues: { default: null }, config: { dispatcher: { workers: 4, lock_stale: 2 } } });
    const ledger = path.join(env.root, 'ledger');
    daemon = await startDaemon(env.etc, env.spool);
    for (let i = 0; i < 12; i++)
      drop(
        env.spool,
        'default',
        `command: 'echo "$BATCHD_JOB_ID $BATCHD_ATTEMPT start" >> ${ledger}; sleep 1; echo "$BATCHD_JOB_ID $BATCHD_ATTEMPT end" >> ${ledger}'\n`,
        `work-${i}.yaml`,
      );
    await waitFor(
      () => jobsIn(env?.spool ?? '', 'default', 'running').length >= 4,
      20_000,
      'four jobs running',
    );
    await waitFor(() => readLedger(ledger).some((l) => l.endsWith(' start')), 10_000, 'a job to start');
    await killNow();
    const interrupted = jobsIn(env.spool, 'default', 'running');
    expect(interrupted.length).toBeGreaterThan(0);

    daemon = await startDaemon(env.etc, env.spool);
    await waitFor(
      () => jobsIn(env?.spool ?? '', 'default', 'done').length === 12,
      60_000,
      'all twelve done',
      100,
    );
    expect(jobsIn(env.spool, 'default', 'failed')).toEqual([]);
    for (const id of interrupted) {
      const record = readState(env.spool, 'default', 'done', id);
      expect(record.interruptions, id).toBe(1);
      expect(record.retries, id).toBe(0); // the interrupted attempt used no retry
      expect(
        record.results.map((r) => r.outcome),
        id,
      ).toEqual(['interrupted', 'success']);
      expect(record.history.some((h) => /^recovered: interrupted \(1 of at most 3\)/.test(h.reason))).toBe(
        true,
      );
      // The second attempt ran to its end exactly once.
      expect(readLedger(ledger).filter((l) => l === `${id} 2 end`)).toHaveLength(1);
    }
  }, 120_000);

  it('fails a job interrupted more than max_interruptions times, saying so', async () => {
    env = makeEnv({
      queues: { default: null },
      config: { dispatcher: { workers: 1, lock_stale: 2, max_interruptions: 2 } },
    });
    drop(env.spool, 'default', 'command: sleep 300\n', 'crasher.yaml');
    for (let round = 1; round <= 3; round++) {
      daemon = await startDaemon(env.etc, env.spool);
      const id = await waitFor(
        () => jobsIn(env?.spool ?? '', 'default', 'running')[0],
        20_000,
        'the job to run',
      );
      await waitFor(() => jobProcessesOf(env?.spool ?? '').length > 0, 10_000, 'its process');
      expect(readState(env.spool, 'default', 'running', id).attempts).toBe(round);
      await killNow();
    }
    daemon = await startDaemon(env.etc, env.spool);
    const id = await waitFor(
      () => jobsIn(env?.spool ?? '', 'default', 'failed')[0],
      20_000,
      'the job to fail',
    );
    const record = readState(env.spool, 'default', 'failed', id);
    expect(record.interruptions).toBe(3);
    expect(record.attempts).toBe(3);
    expect(record.results.map((r) => r.outcome)).toEqual(['interrupted', 'interrupted', 'interrupted']);
    expect(record.history.at(-1)?.reason).toMatch(/interrupted 3 times, more than max_interruptions \(2\)/);
  }, 120_000);
});
