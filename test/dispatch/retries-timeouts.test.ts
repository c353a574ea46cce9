import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import {
  blockUntil,
  dropJob,
  ledger,
  makeDispatchEnv,
  pidAlive,
  record,
  startInProcess,
  touch,
  waitForState,
  workDir,
} from '../helpers/dispatch.ts';
import { jobsIn, readState, type TestEnv, waitFor } from '../helpers/env.ts';

let env: TestEnv;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  env.cleanup();
  daemon = undefined;
});

/** A job type running shell code given as a parameter, with an on_fail policy. */
const shellType = (onFail: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  template: 'sh -c "$code"',
  params: [{ name: 'code', type: 'String' }],
  on_fail: onFail,
  ...extra,
});

describe('retries (on_fail)', () => {
  it('retry now with a count: every attempt is recorded, then the job fails', async () => {
    // A rescan every minute: the retries must not depend on one.
    env = makeDispatchEnv({
      config: { dispatcher: { poll_timeout: 60 } },
      jobTypes: { flaky: shellType({ retry: { when: 'now', count: 2 } }) },
      queues: { default: null },
    });
    daemon = await startInProcess(env);
    const id = await dropJob(
      env,
      'default',
      { type: 'flaky', params: { code: 'echo attempt $BATCHD_ATTEMPT; exit 3' } },
      'always-fails',
    );
    await waitForState(env, id, 'failed', 10_000);
    const state = readState(env.spool, 'default', 'failed', id);
    expect(state.attempts).toBe(3);
    expect(state.results.map((r) => [r.attempt, r.outcome, r.exit_code])).toEqual([
      [1, 'exit-code', 3],
      [2, 'exit-code', 3],
      [3, 'exit-code', 3],
    ]);
    expect(state.history.map((h) => h.to)).toEqual([
      'queued',
      'running',
      'queued',
      'running',
      'queued',
      'running',
      'failed',
    ]);
    expect(state.history[2]?.reason).toBe('exit code 3; retry 1 of 2 (now)');
    expect(state.retries).toBe(2);
    const dir = path.join(env.spool, 'default', 'failed', id.slice(0, 8), id);
    expect(readFileSync(path.join(dir, 'stdout.log'), 'utf8')).toBe('attempt 1\nattempt 2\nattempt 3\n');
  });

  it('a retry that succeeds ends in done with both attempts recorded', async () => {
    env = makeDispatchEnv({
      config: { dispatcher: { poll_timeout: 60 } },
      jobTypes: { flaky: shellType('retry') },
      queues: { default: null },
    });
    daemon = await startInProcess(env);
    const id = await dropJob(
      env,
      'default',
      { type: 'flaky', params: { code: '[ "$BATCHD_ATTEMPT" -ge 2 ]' } },
      'second-time-lucky',
    );
    await waitForState(env, id, 'done', 10_000);
    const state = readState(env.spool, 'default', 'done', id);
    expect(state.results.map((r) => r.outcome)).toEqual(['exit-code', 'success']);
    expect(state.last).toMatchObject({ attempt: 2, outcome: 'success', exit_code: 0 });
    expect(state.retries).toBe(1);
  });

  it('a job that succeeds at its first attempt records no retry in state.yaml', async () => {
    env = makeDispatchEnv({ jobTypes: { flaky: shellType('retry') }, queues: { default: null } });
    daemon = await startInProcess(env);
    const id = await dropJob(env, 'default', { type: 'flaky', params: { code: 'true' } }, 'first-time');
    await waitForState(env, id, 'done', 10_000);
    const state = readState(env.spool, 'default', 'done', id);
    expect({ attempts: state.attempts, retries: state.retries }).toEqual({ attempts: 1, retries: 0 });
  });

  it('retry now keeps the job’s place; retry later sends it to the back of the queue', async () => {
    env = makeDispatchEnv({
      config: { dispatcher: { workers: 1 } },
      jobTypes: {
        now: shellType({ retry: { when: 'now', count: 1 } }),
        later: shellType({ retry: { when: 'later', count: 1 } }),
      },
      queues: { default: null },
    });
    const work = workDir(env);
    daemon = await startInProcess(env);
    const run = async (policy: 'now' | 'later'): Promise<string[]> => {
      const order = path.join(work, `order-${policy}`);
      const gate = path.join(work, `go-${policy}`);
      const blocker = await dropJob(env, 'default', { command: blockUntil(gate) }, `blocker-${policy}`);
      await waitForState(env, blocker, 'running');
      const code = `echo F$BATCHD_ATTEMPT >> '${order}'; [ "$BATCHD_ATTEMPT" -ge 2 ]`;
      await dropJob(env, 'default', { type: policy, params: { code } }, `flaky-${policy}`);
      await dropJob(env, 'default', { command: record(order, 'X') }, `x-${policy}`);
      await dropJob(env, 'default', { command: record(order, 'Y') }, `y-${policy}`);
      touch(gate);
      await waitFor(
        () => ledger(order).length === 4 && jobsIn(env.spool, 'default', 'queued').length === 0,
        15_000,
        'four runs',
      );
      return ledger(order);
    };
    expect(await run('now')).toEqual(['F1', 'F2', 'X', 'Y']);
    expect(await run('later')).toEqual(['F1', 'X', 'Y', 'F2']);
  });

  it('a manual retry starts the on_fail count over but keeps counting attempts', async () => {
    env = makeDispatchEnv({ jobTypes: { once: shellType('retry') }, queues: { default: null } });
    daemon = await startInProcess(env);
    const id = await dropJob(env, 'default', { type: 'once', params: { code: 'exit 1' } }, 'stubborn');
    await waitForState(env, id, 'failed');
    expect(readState(env.spool, 'default', 'failed', id).attempts).toBe(2);
    await daemon.dispatcher.retry(id);
    await waitFor(
      () =>
        jobsIn(env.spool, 'default', 'failed').includes(id) &&
        readState(env.spool, 'default', 'failed', id).attempts === 4,
    );
    expect(readState(env.spool, 'default', 'failed', id).results).toHaveLength(4);
  });
});

describe('timeouts', () => {
  /** Shell code starting a grandchild that would outlive its parent, and writing its pid. */
  const withGrandchild = (pidFile: string): string =>
    `(sleep 60; echo late) & echo $! > '${pidFile}'; sleep 60`;

  it('a job type’s timeout kills the whole process tree and records outcome timeout', async () => {
    env = makeDispatchEnv({
      jobTypes: { slow: shellType('continue', { timeout: 0.5 }) },
      queues: { default: null },
    });
    const pidFile = path.join(workDir(env), 'pid');
    daemon = await startInProcess(env);
    const id = await dropJob(
      env,
      'default',
      { type: 'slow', params: { code: withGrandchild(pidFile) } },
      'slow',
    );
    await waitForState(env, id, 'failed', 10_000);
    const grandchild = Number(ledger(pidFile)[0]);
    expect(grandchild).toBeGreaterThan(0);
    await waitFor(() => !pidAlive(grandchild), 3000, 'the grandchild to be gone');
    const state = readState(env.spool, 'default', 'failed', id);
    expect(state.last).toMatchObject({ outcome: 'timeout', signal: 'SIGTERM' });
    expect(state.last?.error).toBe('timed out after 0.5 s');
  });

  it('a job’s own timeout applies, and a process ignoring SIGTERM is killed after kill_grace', async () => {
    env = makeDispatchEnv({ queues: { default: null } });
    const pidFile = path.join(workDir(env), 'pid');
    daemon = await startInProcess(env);
    const code = `trap '' TERM; (trap '' TERM; sleep 60) & echo $! > '${pidFile}'; while true; do sleep 0.1; done`;
    const id = await dropJob(env, 'default', { command: code, timeout: '300ms' }, 'stubborn');
    await waitForState(env, id, 'failed', 10_000);
    const grandchild = Number(ledger(pidFile)[0]);
    await waitFor(() => !pidAlive(grandchild), 3000, 'the grandchild to be gone');
    expect(readState(env.spool, 'default', 'failed', id).last).toMatchObject({
      outcome: 'timeout',
      signal: 'SIGKILL',
      error: 'timed out after 0.3 s',
    });
  });

  it('a timeout is a failure for on_fail: it is retried', async () => {
    env = makeDispatchEnv({
      jobTypes: { slow: shellType('retry', { timeout: 0.3 }) },
      queues: { default: null },
    });
    daemon = await startInProcess(env);
    const id = await dropJob(env, 'default', { type: 'slow', params: { code: 'sleep 30' } }, 'slow');
    await waitForState(env, id, 'failed', 10_000);
    expect(readState(env.spool, 'default', 'failed', id).results.map((r) => r.outcome)).toEqual([
      'timeout',
      'timeout',
    ]);
  });
});
