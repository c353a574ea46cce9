import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import type { BatchdEvents } from '../../daemon/events.ts';
import { dropJob, makeDispatchEnv, startInProcess } from '../helpers/dispatch.ts';
import { type TestEnv, waitFor } from '../helpers/env.ts';
import { finished, hostState, log, waitForNoProcess, waitForProcess } from '../ssh/ssh-env.ts';
import { PROCESS_PROVIDER } from './fixtures/process-provider.ts';

describe('host providers through the plugin seam', () => {
  let env: TestEnv;
  let daemon: Daemon;
  const states: BatchdEvents['host:state'][] = [];
  let machines: string;
  let hostEvents: string;
  let hookDir: string;

  beforeAll(async () => {
    hookDir = mkdtempSync(path.join(tmpdir(), 'batchd-seam-hooks-'));
    hostEvents = path.join(hookDir, 'host-events.log');
    env = makeDispatchEnv({
      queues: { default: null },
      // A lifecycle hook told of every host event: the provider's starts and stops reach hooks.
      config: {
        hooks: [
          {
            driver: 'command',
            events: ['host:starting', 'host:ready', 'host:stopped', 'host:failed'],
            command: `echo "$BATCHD_EVENT $BATCHD_HOST" >> ${hostEvents}`,
          },
        ],
      },
      jobTypes: {
        hello: { template: 'echo hello from $BATCHD_HOST in $PWD; echo oops >&2' },
        fail: { template: 'exit 3', on_fail: 'continue' },
        wait: { template: 'echo started; sleep 3607 & sleep 3607; wait', on_fail: 'continue' },
        slow: { template: 'sleep 3607', timeout: 1, on_fail: 'continue' },
        copy: {
          template: 'tr a-z A-Z < $input > $output; echo \'{"n": 1}\' > $BATCHD_RESULT',
          params: [
            { name: 'input', type: 'InputFile' },
            { name: 'output', type: 'OutputFile' },
          ],
        },
      },
    });
    machines = path.join(env.root, 'machines');
    env.writeConfig('controllers/proc.yaml', { driver: PROCESS_PROVIDER, root: machines });
    // The same plugin as an installed package, found from the config folder by its name.
    const pkg = path.join(env.etc, 'node_modules', 'batchd-provider-process');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      path.join(pkg, 'package.json'),
      JSON.stringify({ name: 'batchd-provider-process', main: 'index.mjs' }),
    );
    copyFileSync(PROCESS_PROVIDER, path.join(pkg, 'index.mjs'));
    env.writeConfig('controllers/packaged.yaml', { driver: 'batchd-provider-process', root: machines });
    env.writeConfig('hosts/crate.yaml', {
      controller: 'packaged',
      startup_time: 0,
      shutdown_timeout: 60,
      work_directory: 'work',
    });
    env.writeConfig('controllers/hands-off.yaml', {
      driver: PROCESS_PROVIDER,
      root: machines,
      enable_start_stop: false,
    });
    env.writeConfig('hosts/always.yaml', {
      controller: 'hands-off',
      startup_time: 0,
      shutdown_timeout: 1,
      work_directory: 'work',
    });
    env.writeConfig('controllers/refusing.yaml', {
      driver: PROCESS_PROVIDER,
      root: machines,
      fail_start: true,
    });
    env.writeConfig('controllers/bad.yaml', { driver: PROCESS_PROVIDER, root: machines, fail_start: 'yes' });
    const base = {
      startup_time: 0,
      shutdown_timeout: 1,
      backoff: { initial: 1, max: 2 },
      work_directory: 'work',
    };
    env.writeConfig('hosts/box.yaml', { ...base, controller: 'proc', controller_id: 'box-1' });
    env.writeConfig('hosts/nope.yaml', { ...base, controller: 'refusing' });
    daemon = await startInProcess(env);
    daemon.events.on('host:state', (e) => states.push(e));
  });

  afterAll(async () => {
    await daemon?.stop();
    env?.cleanup();
    rmSync(hookDir, { recursive: true, force: true });
  });

  const calls = (): string[] => {
    try {
      return readFileSync(path.join(machines, 'calls.log'), 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  };

  it('a controller file is checked by its plugin, with file, line and field', async () => {
    expect(daemon.controllers.get('proc')?.driver).toBe(PROCESS_PROVIDER);
    expect(daemon.controllers.get('bad')).toBeUndefined();
    const invalid: string[] = [];
    daemon.events.on('config:invalid', (e) => invalid.push(e.message));
    const bad = path.join(env.etc, 'controllers', 'bad.yaml');
    writeFileSync(bad, `driver: ${PROCESS_PROVIDER}\nroot: m\nfail_start: "yes"\n`);
    daemon.config.reloadFile(bad);
    expect(invalid).toEqual([`${bad}, line 3, field fail_start: Expected true or false`]);
    // A driver that is no plugin: the load fails (logged), and the file says why it is refused.
    const unknown = path.join(env.etc, 'controllers', 'unknown.yaml');
    writeFileSync(unknown, 'driver: no-such-driver-anywhere\n');
    daemon.config.reloadFile(unknown);
    await waitFor(() => invalid.length === 2, 5_000, 'unknown driver refused');
    expect(invalid[1]).toBe(
      `${unknown}, line 1, field driver: No provider plugin loaded for driver "no-such-driver-anywhere" (see the log for why)`,
    );
  });

  it('starts a stopped host for a job, runs it through the provider, and stops it when idle', async () => {
    const id = await dropJob(env, 'default', { type: 'hello', host: 'box' }, 'first');
    const job = await finished(env, id);
    expect(job.state, job.record.last?.error).toBe('done');
    // It ran in the machine's folder, under the host's work folder there.
    expect(log(job.dir, 'stdout.log')).toBe(`hello from box in ${machines}/box-1/work/${id}.1\n`);
    expect(log(job.dir, 'stderr.log')).toBe('oops\n');
    await waitFor(() => hostState(daemon, 'box') === 'stopped', 10_000, 'box stopped');
    expect(calls()).toEqual(['start box-1', 'stop box-1']);
    expect(states.filter((s) => s.host === 'box').map((s) => s.state)).toEqual([
      'starting',
      'busy',
      'ready',
      'stopping',
      'stopped',
    ]);
    expect(existsSync(path.join(machines, 'box-1', 'work', `${id}.1`))).toBe(false);
    // Once per change, busy and ready being one thing to a hook.
    await waitFor(
      () => existsSync(hostEvents) && readFileSync(hostEvents, 'utf8').includes('stopped'),
      5_000,
      'hook',
    );
    expect(readFileSync(hostEvents, 'utf8')).toBe('host:starting box\nhost:ready box\nhost:stopped box\n');
  });

  it('loads a provider installed as a package, by its name', async () => {
    const id = await dropJob(env, 'default', { type: 'hello', host: 'crate' }, 'in-crate');
    const job = await finished(env, id);
    expect(job.state, job.record.last?.error).toBe('done');
    expect(log(job.dir, 'stdout.log')).toBe(`hello from crate in ${machines}/crate/work/${id}.1\n`);
  });

  it('with enable_start_stop: false, uses the host as it is: never starts or stops it', async () => {
    mkdirSync(path.join(machines, 'always'), { recursive: true });
    writeFileSync(path.join(machines, 'always', '.running'), '{}');
    const before = calls().length;
    const id = await dropJob(env, 'default', { type: 'hello', host: 'always' }, 'hands-off');
    const job = await finished(env, id);
    expect(job.state, job.record.last?.error).toBe('done');
    await new Promise((r) => setTimeout(r, 1500)); // past its shutdown_timeout
    expect(calls().slice(before)).toEqual([]);
    expect(existsSync(path.join(machines, 'always', '.running'))).toBe(true);
  });

  it('copies input files in and output files and the result out', async () => {
    const input = path.join(env.root, 'in.txt');
    const output = path.join(env.root, 'out', 'result.txt');
    writeFileSync(input, 'shout\n');
    const id = await dropJob(
      env,
      'default',
      { type: 'copy', host: 'box', params: { input, output } },
      'copy',
    );
    const job = await finished(env, id);
    expect(job.state, job.record.last?.error).toBe('done');
    expect(readFileSync(output, 'utf8')).toBe('SHOUT\n');
    expect(JSON.parse(readFileSync(path.join(job.dir, 'result.json'), 'utf8'))).toEqual({ n: 1 });
  });

  it('records a non-zero exit code', async () => {
    const id = await dropJob(env, 'default', { type: 'fail', host: 'box' }, 'fails');
    const job = await finished(env, id);
    expect(job.state).toBe('failed');
    expect(job.record.last?.exit_code).toBe(3);
  });

  it("cancel kills the job's whole process group on the host", async () => {
    const id = await dropJob(env, 'default', { type: 'wait', host: 'box', notes: 'cancel-me' }, 'cancelled');
    await waitForProcess('sleep 3607');
    await waitFor(() => existsSync(path.join(env.spool, 'default', 'running', id)), 5_000, 'running');
    writeFileSync(path.join(env.spool, 'default', 'requests', `${id}.cancel`), '');
    const job = await finished(env, id);
    expect(job.state).toBe('cancelled');
    await waitForNoProcess('sleep 3607');
  });

  it('a timeout kills the job on the host', async () => {
    const id = await dropJob(env, 'default', { type: 'slow', host: 'box' }, 'times-out');
    const job = await finished(env, id);
    expect(job.state).toBe('failed');
    expect(job.record.last?.outcome).toBe('timeout');
    await waitForNoProcess('sleep 3607');
  });

  it('a host that fails to start fails its job with the reason, is backed off, and local jobs still run', async () => {
    const id = await dropJob(env, 'default', { type: 'hello', host: 'nope' }, 'on-nope');
    const job = await finished(env, id);
    expect(job.state).toBe('failed');
    expect(job.record.last?.error).toContain('machine nope refused to start');
    expect(hostState(daemon, 'nope')).toBe('failed');
    const local = await dropJob(env, 'default', { command: 'echo here' }, 'local');
    expect((await finished(env, local)).state).toBe('done');
  });
});
