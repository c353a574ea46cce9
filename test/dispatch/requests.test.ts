import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import {
  blockUntil,
  dropJob,
  ledger,
  listDir,
  makeDispatchEnv,
  pidAlive,
  record,
  request,
  startInProcess,
  stateOf,
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

async function setup(workers = 2, dispatcher: Record<string, unknown> = {}): Promise<string> {
  env = makeDispatchEnv({
    config: { dispatcher: { workers, ...dispatcher } },
    queues: { default: null, hold: { enabled: false } },
  });
  daemon = await startInProcess(env);
  return workDir(env);
}

const gone = (file: string): Promise<boolean> =>
  waitFor(() => !existsSync(file), 10_000, `${file} to be taken`);

describe('plain-file requests: <queue>/requests/<id>.<verb>', () => {
  it('cancel of a queued job moves it to cancelled/ and takes the request', async () => {
    await setup();
    const id = await dropJob(env, 'hold', { command: 'true' }, 'waiting');
    const file = request(env, 'hold', id, 'cancel', 'not needed any more');
    await waitForState(env, id, 'cancelled');
    await gone(file);
    const state = readState(env.spool, 'hold', 'cancelled', id);
    expect(state.attempts).toBe(0);
    expect(state.last).toMatchObject({
      outcome: 'cancelled',
      error: 'cancel requested: not needed any more',
    });
    expect(state.history.map((h) => h.to)).toEqual(['queued', 'cancelled']);
  });

  it('cancel of a running job kills its whole process tree and records outcome cancelled', async () => {
    const work = await setup();
    const pidFile = path.join(work, 'pid');
    const id = await dropJob(
      env,
      'default',
      { command: `(sleep 60) & echo $! > '${pidFile}'; sleep 60` },
      'long',
    );
    await waitForState(env, id, 'running');
    const grandchild = Number(await waitFor(() => ledger(pidFile)[0]));
    expect(pidAlive(grandchild)).toBe(true);
    // The request may go to any queue's requests/ folder.
    const file = request(env, 'hold', id, 'cancel');
    await waitForState(env, id, 'cancelled');
    await gone(file);
    await waitFor(() => !pidAlive(grandchild), 3000, 'the grandchild to be gone');
    const state = readState(env.spool, 'default', 'cancelled', id);
    expect(state.attempts).toBe(1);
    expect(state.last).toMatchObject({ attempt: 1, outcome: 'cancelled' });
    expect(state.history.map((h) => h.to)).toEqual(['queued', 'running', 'cancelled']);
  });

  it('retry of a failed job queues it again; it runs and its attempts are counted', async () => {
    const work = await setup();
    const id = await dropJob(env, 'default', { command: `[ -e '${path.join(work, 'fixed')}' ]` }, 'broken');
    await waitForState(env, id, 'failed');
    touch(path.join(work, 'fixed'));
    const file = request(env, 'default', id, 'retry');
    await waitForState(env, id, 'done');
    await gone(file);
    const state = readState(env.spool, 'default', 'done', id);
    expect(state.attempts).toBe(2);
    expect(state.results.map((r) => r.outcome)).toEqual(['exit-code', 'success']);
    expect(state.history.map((h) => [h.to, h.reason])).toContainEqual(['queued', 'retry requested']);
  });

  it('retry of a cancelled job queues it again', async () => {
    await setup();
    const id = await dropJob(env, 'hold', { command: 'true' }, 'revived');
    request(env, 'hold', id, 'cancel');
    await waitForState(env, id, 'cancelled');
    request(env, 'hold', id, 'retry');
    await waitForState(env, id, 'queued');
    expect(stateOf(env, id)).toBe('queued');
  });

  it('priority re-orders a queued job', async () => {
    const work = await setup(1);
    const order = path.join(work, 'order');
    const blocker = await dropJob(env, 'default', { command: blockUntil(path.join(work, 'go')) }, 'blocker');
    await waitForState(env, blocker, 'running');
    await dropJob(env, 'default', { command: record(order, 'a') }, 'a');
    const b = await dropJob(env, 'default', { command: record(order, 'b') }, 'b');
    await dropJob(env, 'default', { command: record(order, 'c') }, 'c');
    const file = request(env, 'default', b, 'priority', '7\n');
    await gone(file);
    expect(readState(env.spool, 'default', 'queued', b).priority).toBe(7);
    touch(path.join(work, 'go'));
    await waitFor(() => ledger(order).length === 3);
    expect(ledger(order)).toEqual(['b', 'a', 'c']);
  });

  it('a request file written in place by a slow writer is read once complete', async () => {
    await setup(2, { stable_time: 1.5 });
    const id = await dropJob(env, 'hold', { command: 'true' }, 'slowly');
    const file = path.join(env.spool, 'hold', 'requests', `${id}.priority`);
    // The file appears empty first (as with `echo 7 > file` caught between open and write); it
    // counts as being written until it has not changed for stable_time.
    const writer = spawn('sh', ['-c', `exec 3> '${file}'; sleep 0.3; echo 7 >&3`], { stdio: 'ignore' });
    await new Promise((resolve) => writer.once('exit', resolve));
    await gone(file);
    expect(existsSync(`${file}.rejected`)).toBe(false);
    expect(readState(env.spool, 'hold', 'queued', id).priority).toBe(7);
  });

  it('move takes a queued job to another queue, where it runs', async () => {
    await setup();
    const id = await dropJob(env, 'hold', { command: 'echo moved' }, 'mover');
    const file = request(env, 'hold', id, 'move', 'default');
    const where = await waitForState(env, id, 'done');
    await gone(file);
    expect(where.queue).toBe('default');
    const state = readState(env.spool, 'default', 'done', id);
    expect(state.queue).toBe('default');
    expect(state.history.find((h) => h.queue === 'default')?.reason).toBe('moved from hold to default');
  });

  it.each([
    ['a priority that is not a number', 'priority', 'high', /Expected an integer priority, got "high"/],
    ['a move to an unknown queue', 'move', 'nowhere', /Unknown queue "nowhere"/],
    ['a retry of a queued job', 'retry', '', /only failed or cancelled jobs can be retried/],
  ])('%s is renamed .rejected beside an .error file saying why', async (_what, verb, content, why) => {
    await setup();
    const id = await dropJob(env, 'hold', { command: 'true' }, 'target');
    const file = request(env, 'hold', id, verb, content);
    await waitFor(() => existsSync(`${file}.rejected`), 10_000, 'the rejection');
    expect(readFileSync(`${file}.error`, 'utf8')).toMatch(why);
    expect(existsSync(file)).toBe(false);
    expect(stateOf(env, id)).toBe('queued');
  });

  it('requests for unknown jobs and badly named request files are rejected', async () => {
    await setup();
    const unknown = request(env, 'default', '20261121T093000.123Z-zzzzzz', 'cancel');
    const badName = request(env, 'default', 'not-a-job', 'cancel');
    const badVerb = request(env, 'default', '20261121T093000.123Z-zzzzzz', 'explode');
    await waitFor(
      () => [unknown, badName, badVerb].every((f) => existsSync(`${f}.rejected`)),
      10_000,
      'three rejections',
    );
    expect(readFileSync(`${unknown}.error`, 'utf8')).toMatch(
      /No job 20261121T093000\.123Z-zzzzzz in any queue/,
    );
    expect(readFileSync(`${badName}.error`, 'utf8')).toMatch(/named <job-id>\.<verb>/);
    expect(readFileSync(`${badVerb}.error`, 'utf8')).toMatch(/cancel, retry, priority or move/);
    expect(
      listDir(path.join(env.spool, 'default', 'requests')).filter((f) => !/\.(rejected|error)$/.test(f)),
    ).toEqual([]);
    expect(jobsIn(env.spool, 'default', 'cancelled')).toEqual([]);
  });
});
