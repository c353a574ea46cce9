import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import type { BatchdEvents } from '../../daemon/events.ts';
import type { HostProvider } from '../../daemon/hosts/provider.ts';
import { dropJob, makeDispatchEnv, startInProcess } from '../helpers/dispatch.ts';
import { type TestEnv, waitFor } from '../helpers/env.ts';
import { finished, hostFile, hostState, log } from './ssh-env.ts';
import { type Sshd, startSshd } from './sshd.ts';

describe('host bring-up and idle stop through a provider', () => {
  let sshd: Sshd;
  let plain: Sshd;
  let env: TestEnv;
  let daemon: Daemon;
  const calls: string[] = [];
  const events: BatchdEvents['host:state'][] = [];

  // A provider whose "machine" is a real sshd: started and stopped on demand, found by its port.
  const provider: HostProvider = {
    name: 'test-vm',
    start: async () => {
      calls.push('start');
      await sshd.restart();
    },
    stop: async () => {
      calls.push('stop');
      await sshd.halt();
    },
    locate: () => Promise.resolve({ address: '127.0.0.1', port: sshd.port }),
  };

  beforeAll(async () => {
    [sshd, plain] = await Promise.all([startSshd(), startSshd()]);
    await sshd.halt();
    env = makeDispatchEnv({
      queues: { default: null },
      jobTypes: { hello: { template: 'echo hello from $BATCHD_HOST' } },
    });
    const here = path.join(env.root, 'started-here.log');
    const there = path.join(env.root, 'started-there.log');
    env.writeConfig(
      'hosts/vm.yaml',
      hostFile(sshd, path.join(env.root, 'remote'), {
        host_name: 'vm.invalid', // never used: the provider locates the host
        controller: 'testvm',
        testvm: { image: 'any' },
        startup_time: 0.05,
        shutdown_timeout: 1,
        variables: { greeting: 'hi there' },
        startup_commands_on_dispatcher: [`echo "$name $controllerId $greeting" >> ${here}`],
        startup_commands_on_host: [`echo "$user says $greeting" >> ${there}`],
      }),
    );
    // Always on (controller local): its startup commands run at first contact.
    env.writeConfig(
      'hosts/broken.yaml',
      hostFile(plain, path.join(env.root, 'remote'), {
        startup_commands_on_host: ['echo cannot mount >&2; exit 7'],
      }),
    );
    env.writeConfig(
      'hosts/ghost.yaml',
      hostFile(sshd, path.join(env.root, 'remote'), { controller: 'ghost' }),
    );
    daemon = await startInProcess(env);
    daemon.hosts.setProviders({
      provider: (controller) => (controller === 'testvm' ? provider : undefined),
      settings: () => undefined,
      tags: {},
    });
    daemon.events.on('host:state', (e) => events.push(e));
  });

  afterAll(async () => {
    await daemon?.stop();
    await Promise.all([sshd?.stop(), plain?.stop()]);
    env?.cleanup();
  });

  it('starts the host on demand, runs its startup commands with their variables, and stops it when idle', async () => {
    const id = await dropJob(env, 'default', { type: 'hello', host: 'vm' }, 'first');
    const first = await finished(env, id);
    expect(first.state, first.record.last?.error).toBe('done');
    expect(log(first.dir, 'stdout.log')).toBe('hello from vm\n');
    expect(readFileSync(path.join(env.root, 'started-here.log'), 'utf8')).toBe('vm vm hi there\n');
    expect(readFileSync(path.join(env.root, 'started-there.log'), 'utf8')).toBe('root says hi there\n');
    expect(calls).toEqual(['start']);
    // shutdown_timeout is 1 s.
    await waitFor(() => hostState(daemon, 'vm') === 'stopped', 5_000, 'vm stopped');
    expect(calls).toEqual(['start', 'stop']);
    expect(sshd.pid() === undefined || !isAlive(sshd.pid() ?? 0)).toBe(true);
    const vmStates = events.filter((e) => e.host === 'vm').map((e) => e.state);
    expect(vmStates).toEqual(['starting', 'busy', 'ready', 'stopping', 'stopped']);

    // The next job starts it again, startup commands included.
    const again = await dropJob(env, 'default', { type: 'hello', host: 'vm' }, 'second');
    const second = await finished(env, again);
    expect(second.state, second.record.last?.error).toBe('done');
    expect(calls).toEqual(['start', 'stop', 'start']);
    expect(readFileSync(path.join(env.root, 'started-there.log'), 'utf8')).toBe(
      'root says hi there\n'.repeat(2),
    );
  });

  it('a failing startup command fails the job with its output and marks the host down', async () => {
    const id = await dropJob(env, 'default', { type: 'hello', host: 'broken' }, 'on-broken');
    const { state, record } = await finished(env, id);
    expect(state).toBe('failed');
    expect(record.last?.error).toBe(
      'host broken: startup command on the host failed (exit code 7): echo cannot mount >&2; exit 7: cannot mount',
    );
    expect(hostState(daemon, 'broken')).toBe('failed');
  });

  it('a host whose controller has no provider fails its jobs with that reason', async () => {
    const id = await dropJob(env, 'default', { type: 'hello', host: 'ghost' }, 'on-ghost');
    const { state, record } = await finished(env, id);
    expect(state).toBe('failed');
    expect(record.last?.error).toBe(
      'host ghost: controller "ghost" has no provider plugin loaded (etc/controllers/ghost.yaml)',
    );
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
