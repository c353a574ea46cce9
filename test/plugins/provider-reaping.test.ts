import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { dropJob, makeDispatchEnv, startInProcess } from '../helpers/dispatch.ts';
import { type TestEnv, waitFor } from '../helpers/env.ts';
import { finished } from '../ssh/ssh-env.ts';
import { PROCESS_PROVIDER } from './fixtures/process-provider.ts';

/** The fixture provider's machines: running while `<id>/.running` exists. */
function running(machines: string, id: string): boolean {
  return existsSync(path.join(machines, id, '.running'));
}

function calls(machines: string): string[] {
  try {
    return readFileSync(path.join(machines, 'calls.log'), 'utf8').trim().split('\n');
  } catch {
    return [];
  }
}

function setUp(extra: Record<string, unknown> = {}): { env: TestEnv; machines: string; gate: string } {
  const env = makeDispatchEnv({
    queues: { default: null },
    config: { dispatcher: { workers: 1, lock_stale: 3, reap_interval: 1, ...extra } },
    jobTypes: {
      // Waits for a gate file, so a test decides when it ends.
      gated: {
        template: 'echo waiting; while [ ! -e "$gate" ]; do sleep 0.1; done; echo through',
        params: [{ name: 'gate', type: 'String' }],
        on_fail: 'retry',
      },
      quick: { template: 'echo quick' },
    },
  });
  const machines = path.join(env.root, 'machines');
  env.writeConfig('controllers/proc.yaml', { driver: PROCESS_PROVIDER, root: machines });
  const host = { controller: 'proc', startup_time: 0, shutdown_timeout: 1, work_directory: 'work' };
  env.writeConfig('hosts/box.yaml', host);
  // Stays up once started: nothing but reaping stops it.
  env.writeConfig('hosts/spare.yaml', { ...host, shutdown_timeout: 3600 });
  return { env, machines, gate: path.join(env.root, 'gate') };
}

describe('dispatchers sharing a spool share its provider-started hosts', () => {
  let env: TestEnv | undefined;
  const daemons: Daemon[] = [];

  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((d) => d.stop()));
    env?.cleanup();
  });

  it('neither stops a host while the other still runs a job on it', async () => {
    const setup = setUp();
    env = setup.env;
    const { machines, gate } = setup;
    daemons.push(await startInProcess(env), await startInProcess(env));
    const long = await dropJob(env, 'default', { type: 'gated', host: 'box', params: { gate } }, 'long');
    await waitFor(
      () => existsSync(path.join(env?.spool ?? '', 'default', 'running', long)),
      10_000,
      'long runs',
    );
    // The dispatcher running `long` has no free worker: the other one takes `short`.
    const short = await dropJob(env, 'default', { type: 'quick', host: 'box' }, 'short');
    expect((await finished(env, short)).state).toBe('done');
    const owners = daemons.map((d) => d.hosts.active('box'));
    expect(owners.sort()).toEqual([0, 1]);
    const idle = daemons.find((d) => d.hosts.active('box') === 0) as Daemon;
    // Its idle stop (shutdown_timeout 1 s) leaves the host to the dispatcher still using it.
    await waitFor(() => idle.hosts.states.get('box').state === 'stopped', 10_000, 'idle dispatcher let go');
    expect(idle.hosts.states.get('box').reason).toContain('another dispatcher still uses it');
    expect(running(machines, 'box')).toBe(true);
    expect(calls(machines).filter((c) => c.startsWith('stop'))).toEqual([]);

    writeFileSync(gate, '');
    expect((await finished(env, long)).state).toBe('done');
    await waitFor(() => !running(machines, 'box'), 10_000, 'box stopped by the last user');
    expect(calls(machines).filter((c) => c.startsWith('stop'))).toEqual(['stop box']);
  });
});

describe('after a crash, what batchd started is recovered and reaped', () => {
  let env: TestEnv | undefined;
  let daemon: DaemonProcess | undefined;

  afterEach(async () => {
    daemon?.kill();
    await daemon?.exited;
    env?.cleanup();
  });

  it("reruns the interrupted job on its host, stops the dead daemon's hosts once idle, and touches nothing else", async () => {
    const setup = setUp();
    env = setup.env;
    const { machines, gate } = setup;
    daemon = await startDaemon(env.etc, env.spool);
    // `spare` comes up for one job and stays up (shutdown_timeout 1 h).
    const warm = await dropJob(env, 'default', { type: 'quick', host: 'spare' }, 'warm');
    expect((await finished(env, warm)).state).toBe('done');
    const id = await dropJob(env, 'default', { type: 'gated', host: 'box', params: { gate } }, 'interrupted');
    const out = path.join(env.spool, 'default', 'running', id, 'stdout.log');
    await waitFor(() => existsSync(out) && readFileSync(out, 'utf8').includes('waiting'), 10_000, 'job runs');
    daemon.kill('SIGKILL');
    await daemon.exited;
    expect([running(machines, 'box'), running(machines, 'spare')]).toEqual([true, true]);

    // Leftovers of others: a machine with no batchd tags, and one of another spool.
    for (const [name, tags] of [
      ['stranger', {}],
      ['foreign', { 'batchd.spool': 'another-spool', 'batchd.host': 'box', 'batchd.created': 'true' }],
    ] as const) {
      mkdirSync(path.join(machines, name), { recursive: true });
      writeFileSync(path.join(machines, name, '.running'), JSON.stringify(tags));
    }
    // And one of ours that no dispatcher claims any more (its claim folder is gone).
    const ours = JSON.parse(readFileSync(path.join(machines, 'box', '.running'), 'utf8')) as Record<
      string,
      string
    >;
    mkdirSync(path.join(machines, 'orphan'), { recursive: true });
    writeFileSync(
      path.join(machines, 'orphan', '.running'),
      JSON.stringify({ ...ours, 'batchd.host': 'orphan' }),
    );

    daemon = await startDaemon(env.etc, env.spool);
    writeFileSync(gate, '');
    const job = await finished(env, id, 30_000);
    expect(job.state, JSON.stringify(job.record.history)).toBe('done');
    expect(job.record.attempts).toBe(2);
    // The dead daemon's idle host and the unclaimed leftover are stopped; box once its rerun is over.
    await waitFor(
      () => !running(machines, 'spare') && !running(machines, 'orphan') && !running(machines, 'box'),
      20_000,
      'leftovers stopped',
    );
    expect(calls(machines)).toEqual(expect.arrayContaining(['stop spare', 'reap orphan', 'stop box']));
    expect(running(machines, 'stranger') && running(machines, 'foreign')).toBe(true);
    expect(calls(machines).filter((c) => /stranger|foreign/.test(c))).toEqual([]);
    expect(readdirSync(path.join(env.spool, '.hosts', 'spare'))).toEqual([]);
  });
});
