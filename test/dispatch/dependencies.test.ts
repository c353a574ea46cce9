import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import {
  blockUntil,
  dropJob,
  ledger,
  makeDispatchEnv,
  record,
  request,
  startInProcess,
  stateOf,
  touch,
  waitForState,
  workDir,
} from '../helpers/dispatch.ts';
import { drop, jobsIn, readState, type TestEnv, waitFor } from '../helpers/env.ts';

let env: TestEnv;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  env.cleanup();
  daemon = undefined;
});

async function setup(): Promise<string> {
  env = makeDispatchEnv({ config: { dispatcher: { workers: 3 } }, queues: { default: null, other: null } });
  daemon = await startInProcess(env);
  return workDir(env);
}

describe('dependencies (`after:`)', () => {
  it('a dependent waits for its dependency and runs after it succeeds', async () => {
    const work = await setup();
    const order = path.join(work, 'order');
    const first = await dropJob(
      env,
      'default',
      { command: `${blockUntil(path.join(work, 'go'))}; ${record(order, 'first')}` },
      'first',
    );
    await waitForState(env, first, 'running');
    // In another queue, with workers to spare: only the dependency holds it back.
    const second = await dropJob(env, 'other', { command: record(order, 'second'), after: first }, 'second');
    await new Promise((r) => setTimeout(r, 1200));
    expect(stateOf(env, second)).toBe('queued');
    touch(path.join(work, 'go'));
    await waitForState(env, second, 'done');
    expect(ledger(order)).toEqual(['first', 'second']);
  });

  it('waits for all of several dependencies', async () => {
    const work = await setup();
    const order = path.join(work, 'order');
    const a = await dropJob(
      env,
      'default',
      { command: `${blockUntil(path.join(work, 'a'))}; ${record(order, 'a')}` },
      'a',
    );
    const b = await dropJob(
      env,
      'default',
      { command: `${blockUntil(path.join(work, 'b'))}; ${record(order, 'b')}` },
      'b',
    );
    const c = await dropJob(env, 'default', { command: record(order, 'c'), after: [a, b] }, 'c');
    touch(path.join(work, 'a'));
    await waitForState(env, a, 'done');
    await new Promise((r) => setTimeout(r, 300));
    expect(stateOf(env, c)).toBe('queued');
    touch(path.join(work, 'b'));
    await waitForState(env, c, 'done');
    expect(ledger(order)).toEqual(['a', 'b', 'c']);
  });

  it('a failed dependency fails its dependents with that reason, transitively', async () => {
    const work = await setup();
    const a = await dropJob(env, 'default', { command: `${blockUntil(path.join(work, 'go'))}; exit 4` }, 'a');
    const b = await dropJob(env, 'default', { command: 'true', after: a }, 'b');
    const c = await dropJob(env, 'other', { command: 'true', after: [b] }, 'c');
    touch(path.join(work, 'go'));
    await waitForState(env, c, 'failed');
    expect(stateOf(env, a)).toBe('failed');
    const bState = readState(env.spool, 'default', 'failed', b);
    expect(bState.attempts).toBe(0);
    expect(bState.last).toMatchObject({ outcome: 'dependency-failed', error: `dependency ${a} failed` });
    expect(bState.history.map((h) => h.to)).toEqual(['queued', 'failed']);
    expect(readState(env.spool, 'other', 'failed', c).last).toMatchObject({
      outcome: 'dependency-failed',
      error: `dependency ${b} failed`,
    });
  });

  it('a cancelled dependency fails its dependents, naming the cancel', async () => {
    const work = await setup();
    const a = await dropJob(
      env,
      'default',
      {
        command: blockUntil(path.join(work, 'never')),
        not_before: new Date(Date.now() + 3_600_000).toISOString(),
      },
      'a',
    );
    const b = await dropJob(env, 'default', { command: 'true', after: a }, 'b');
    request(env, 'default', a, 'cancel');
    await waitForState(env, b, 'failed');
    expect(stateOf(env, a)).toBe('cancelled');
    expect(readState(env.spool, 'default', 'failed', b).last).toMatchObject({
      outcome: 'dependency-failed',
      error: `dependency ${a} cancelled`,
    });
  });

  it('a dependency removed by hand fails its dependents at the next rescan, never waiting forever', async () => {
    await setup();
    const a = await dropJob(
      env,
      'default',
      { command: 'true', not_before: new Date(Date.now() + 3_600_000).toISOString() },
      'a',
    );
    const b = await dropJob(env, 'other', { command: 'true', after: a }, 'b');
    rmSync(path.join(env.spool, 'default', 'queued', a), { recursive: true });
    await waitForState(env, b, 'failed', 10_000);
    expect(readState(env.spool, 'other', 'failed', b).last).toMatchObject({
      outcome: 'dependency-failed',
      error: `dependency ${a} no longer exists`,
    });
  });

  it('a dependency that had already failed fails the new job at once, never waiting', async () => {
    await setup();
    const a = await dropJob(env, 'default', { command: 'exit 1' }, 'a');
    await waitForState(env, a, 'failed');
    const b = await dropJob(env, 'default', { command: 'true', after: a }, 'b');
    await waitForState(env, b, 'failed', 5000);
    expect(readState(env.spool, 'default', 'failed', b).last?.error).toBe(`dependency ${a} failed`);
  });

  it('a dependency that is already done does not hold the job', async () => {
    await setup();
    const a = await dropJob(env, 'default', { command: 'true' }, 'a');
    await waitForState(env, a, 'done');
    const b = await dropJob(env, 'other', { command: 'true', after: a }, 'b');
    await waitForState(env, b, 'done', 5000);
    const bState = readState(env.spool, 'other', 'done', b);
    expect(bState.history.map((h) => h.to)).toEqual(['queued', 'running', 'done']);
    expect([bState.attempts, bState.last?.exit_code, bState.last?.error ?? null]).toEqual([1, 0, null]);
  });

  it('a job that depends on an unknown id is rejected, saying which', async () => {
    await setup();
    const unknown = '20261121T093000.123Z-zzzzzz';
    drop(env.spool, 'default', `command: 'true'\nafter: [${unknown}]\n`, 'orphan.yaml');
    const report = await waitFor(() =>
      jobsIn(env.spool, 'default', 'rejected').find((f) => f.endsWith('.error.yaml')),
    );
    const text = readFileSync(path.join(env.spool, 'default', 'rejected', report), 'utf8');
    expect(text).toContain(`Unknown job \\"${unknown}\\" (no queue holds it)`.replace(/\\"/g, '"'));
    expect(text).toContain('line: 2');
    expect(jobsIn(env.spool, 'default', 'queued')).toEqual([]);
  });

  it('a dependent of a job being retried waits for the retry, and runs when it succeeds', async () => {
    env = makeDispatchEnv({
      jobTypes: {
        flaky: { template: ['if [ "$BATCHD_ATTEMPT" = 1 ]; then exit 1; fi', 'true'], on_fail: 'retry' },
      },
      queues: { default: null },
    });
    daemon = await startInProcess(env);
    const a = await dropJob(env, 'default', { type: 'flaky' }, 'a');
    const b = await dropJob(env, 'default', { command: 'true', after: a }, 'b');
    await waitForState(env, b, 'done');
    expect(readState(env.spool, 'default', 'done', a).attempts).toBe(2);
  });
});
