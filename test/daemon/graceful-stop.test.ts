import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobsIn, makeEnv, readState, type TestEnv, waitFor } from '../helpers/env.ts';
import { jobProcessesOf, misplacedJobs, readLedger, sleep } from '../helpers/spool-checks.ts';

/**
 * `nap` sleeps `secs` on its first attempt only, so a job stopped by a shutdown finishes quickly
 * when the restarted daemon runs it again. Every attempt writes start and end lines to the ledger.
 */
function napEnv(dispatcher: Record<string, unknown>): { env: TestEnv; ledger: string } {
  const env = makeEnv({ queues: { default: null }, config: { dispatcher } });
  const ledger = path.join(env.root, 'ledger');
  env.writeConfig('jobtypes/nap.yaml', {
    template: [
      'echo "$BATCHD_JOB_ID $BATCHD_ATTEMPT start" >> "$LEDGER"',
      'if [ "$BATCHD_ATTEMPT" -eq 1 ]; then sleep $secs; fi',
      'echo "$BATCHD_JOB_ID $BATCHD_ATTEMPT end" >> "$LEDGER"',
    ],
    params: [{ name: 'secs', type: 'Float' }],
    environment: { LEDGER: ledger },
  });
  return { env, ledger };
}

describe('stopping the daemon', () => {
  let env: TestEnv | undefined;
  let daemon: DaemonProcess | undefined;

  afterEach(async () => {
    daemon?.kill('SIGKILL');
    await daemon?.exited;
    daemon = undefined;
    env?.cleanup();
  });

  const idOf = (spool: string, state: string, slug: string): string => {
    const id = jobsIn(spool, 'default', state).find((i) => i.endsWith(`-${slug}`));
    if (id === undefined) throw new Error(`no ${slug} job in ${state}/`);
    return id;
  };

  it('first SIGTERM: running jobs finish into done/, queued ones do not start; a restart runs them', async () => {
    const made = napEnv({ workers: 2, grace_time: 30 });
    env = made.env;
    daemon = await startDaemon(env.etc, env.spool);
    drop(env.spool, 'default', { type: 'nap', params: { secs: 3 } }, 'first.yaml');
    drop(env.spool, 'default', { type: 'nap', params: { secs: 3 } }, 'second.yaml');
    await waitFor(() => readLedger(made.ledger).length === 2, 15_000, 'both jobs to start');
    drop(env.spool, 'default', { type: 'nap', params: { secs: 0 } }, 'waiting.yaml');
    await waitFor(
      () => jobsIn(env?.spool ?? '', 'default', 'queued').length === 1,
      15_000,
      'the third job to be queued',
    );

    daemon.kill('SIGTERM');
    const exit = await daemon.exited;
    expect(exit.code).toBe(0);
    // Both running jobs ended normally before the daemon exited, and the queued one never started.
    expect(jobsIn(env.spool, 'default', 'done')).toHaveLength(2);
    for (const slug of ['first', 'second']) {
      const state = readState(env.spool, 'default', 'done', idOf(env.spool, 'done', slug));
      expect(state.attempts).toBe(1);
      expect(state.last?.outcome).toBe('success');
    }
    const waiting = idOf(env.spool, 'queued', 'waiting');
    expect(readState(env.spool, 'default', 'queued', waiting).attempts).toBe(0);
    expect(readLedger(made.ledger).filter((l) => l.startsWith(waiting))).toEqual([]);

    daemon = await startDaemon(env.etc, env.spool);
    await waitFor(
      () => jobsIn(env?.spool ?? '', 'default', 'done').length === 3,
      15_000,
      'the queued job to run after the restart',
    );
    expect(readState(env.spool, 'default', 'done', waiting).attempts).toBe(1);
    expect(misplacedJobs(env.spool, 'default')).toEqual([]);
  });

  it('a job still running after grace_time is stopped and queued again with its attempt counted', async () => {
    const made = napEnv({ workers: 2, grace_time: 1, kill_grace: 1 });
    env = made.env;
    daemon = await startDaemon(env.etc, env.spool);
    drop(env.spool, 'default', { type: 'nap', params: { secs: 300 } }, 'long.yaml');
    await waitFor(() => readLedger(made.ledger).length === 1, 15_000, 'the job to start');
    const id = idOf(env.spool, 'running', 'long');

    daemon.kill('SIGTERM');
    const stoppedAt = Date.now();
    const exit = await daemon.exited;
    expect(exit.code).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(20_000);
    expect(jobsIn(env.spool, 'default', 'queued')).toEqual([id]);
    const state = readState(env.spool, 'default', 'queued', id);
    expect(state.attempts).toBe(1);
    expect(state.results).toEqual([expect.objectContaining({ attempt: 1, outcome: 'interrupted' })]);
    expect(state.history.map((h) => h.to)).toEqual(['queued', 'running', 'queued']);
    expect(jobProcessesOf(env.spool)).toEqual([]);

    daemon = await startDaemon(env.etc, env.spool);
    await waitFor(
      () => jobsIn(env?.spool ?? '', 'default', 'done').length === 1,
      15_000,
      'the job to run again',
    );
    const after = readState(env.spool, 'default', 'done', id);
    expect(after.attempts).toBe(2);
    expect(after.results.map((r) => r.outcome)).toEqual(['interrupted', 'success']);
    expect(readLedger(made.ledger)).toEqual([`${id} 1 start`, `${id} 2 start`, `${id} 2 end`]);
  });

  it('a second SIGTERM stops running jobs at once', async () => {
    const made = napEnv({ workers: 2, grace_time: 120, kill_grace: 1 });
    env = made.env;
    daemon = await startDaemon(env.etc, env.spool);
    drop(env.spool, 'default', { type: 'nap', params: { secs: 300 } }, 'long.yaml');
    await waitFor(() => readLedger(made.ledger).length === 1, 15_000, 'the job to start');
    const id = idOf(env.spool, 'running', 'long');

    daemon.kill('SIGTERM');
    await sleep(1000);
    // Still waiting for the job (grace_time is two minutes).
    expect(daemon.child.exitCode).toBeNull();
    expect(jobsIn(env.spool, 'default', 'running')).toEqual([id]);
    daemon.kill('SIGTERM');
    const secondAt = Date.now();
    const exit = await daemon.exited;
    expect(Date.now() - secondAt).toBeLessThan(15_000);
    expect(exit.code).toBe(0);
    const state = readState(env.spool, 'default', 'queued', id);
    expect(state.attempts).toBe(1);
    expect(state.last?.outcome).toBe('interrupted');
    expect(jobProcessesOf(env.spool)).toEqual([]);
    expect(daemon.logs()).toContain('stopping now');
  });
});
