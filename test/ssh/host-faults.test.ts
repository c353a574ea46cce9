import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import type { BatchdEvents } from '../../daemon/events.ts';
import { dropJob, makeDispatchEnv, startInProcess } from '../helpers/dispatch.ts';
import { findJob, readState, type TestEnv, waitFor } from '../helpers/env.ts';
import { finished, hostFile, hostState, log, waitForNoProcess, waitForProcess } from './ssh-env.ts';
import { freePort, type Sshd, startSshd } from './sshd.ts';

describe('SSH faults are recorded on the job; the daemon and other hosts carry on', () => {
  let good: Sshd;
  let fragile: Sshd;
  let env: TestEnv;
  let daemon: Daemon;
  const hostEvents: BatchdEvents['host:state'][] = [];

  beforeAll(async () => {
    [good, fragile] = await Promise.all([startSshd(), startSshd()]);
    env = makeDispatchEnv({
      config: { dispatcher: { workers: 8 } },
      queues: { default: null },
      jobTypes: {
        hello: { template: 'echo hello from $where', params: [{ name: 'where', type: 'String' }] },
        once: {
          // Sleeps on its first run only: the run after the host comes back finishes at once. No
          // on_fail: a lost host is an interruption, not the job's failure, so it runs again anyway.
          template: ['if [ ! -e "$flag" ]; then touch "$flag"; sleep 319; fi', 'echo second run'],
          params: [{ name: 'flag', type: 'String' }],
          host_name: 'fragile',
        },
      },
    });
    const remote = (name: string): string => path.join(env.root, 'remote', name);
    // Another key, to stand for a host whose key changed.
    const otherKey = path.join(env.root, 'other_host_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const [type, blob] = readFileSync(`${otherKey}.pub`, 'utf8').split(' ');
    const changed = path.join(env.root, 'known_hosts_changed');
    writeFileSync(changed, `[127.0.0.1]:${good.port} ${type} ${blob}\n`);
    const empty = path.join(env.root, 'known_hosts_empty');
    writeFileSync(empty, '# nothing known\n');
    const otherFingerprint = execFileSync('ssh-keygen', ['-l', '-f', `${otherKey}.pub`], {
      encoding: 'utf8',
    }).split(' ')[1];

    env.writeConfig('hosts/good.yaml', hostFile(good, remote('good')));
    env.writeConfig('hosts/pinned.yaml', {
      ...hostFile(good, remote('pinned')),
      known_hosts: undefined,
      host_key_fingerprint: good.fingerprint,
    });
    env.writeConfig('hosts/changed.yaml', hostFile(good, remote('changed'), { known_hosts: changed }));
    env.writeConfig('hosts/unknown.yaml', hostFile(good, remote('unknown'), { known_hosts: empty }));
    env.writeConfig('hosts/pinned-wrong.yaml', {
      ...hostFile(good, remote('pw')),
      known_hosts: undefined,
      host_key_fingerprint: otherFingerprint,
    });
    env.writeConfig(
      'hosts/stranger.yaml',
      hostFile(good, remote('stranger'), { private_key: good.strangerKey }),
    );
    // A key with a passphrase, accepted by the server: given with its passphrase, and without.
    const locked = path.join(env.root, 'locked_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'open sesame', '-f', locked]);
    appendFileSync(path.join(good.dir, 'authorized_keys'), readFileSync(`${locked}.pub`));
    env.writeConfig(
      'hosts/locked.yaml',
      hostFile(good, remote('locked'), { private_key: locked, passphrase: 'open sesame' }),
    );
    env.writeConfig(
      'hosts/wrong-passphrase.yaml',
      hostFile(good, remote('wp'), { private_key: locked, passphrase: 'guess' }),
    );
    env.writeConfig('hosts/later.yaml', {
      ...hostFile(good, remote('later')),
      port: await freePort(),
      backoff: { initial: 2, max: 4 },
    });
    env.writeConfig('hosts/nowhere.yaml', {
      ...hostFile(good, remote('nowhere')),
      port: await freePort(),
      backoff: { initial: 2, max: 4 },
    });
    env.writeConfig(
      'hosts/fragile.yaml',
      hostFile(fragile, remote('fragile'), { backoff: { initial: 3, max: 6 } }),
    );
    daemon = await startInProcess(env);
    daemon.events.on('host:state', (e) => hostEvents.push(e));
  });

  afterAll(async () => {
    await daemon?.stop();
    await Promise.all([good?.stop(), fragile?.stop()]);
    env?.cleanup();
  });

  const hello = (host: string | undefined, name: string): Promise<string> =>
    dropJob(
      env,
      'default',
      { type: 'hello', params: { where: host ?? 'here' }, ...(host === undefined ? {} : { host }) },
      name,
    );

  it('refuses a wrong host key, an unknown host key, a wrong pinned fingerprint, a refused user key, a wrong key passphrase and an unreachable host, each with a clear recorded error; a key with its passphrase works', async () => {
    const cases: [string, RegExp][] = [
      [
        'changed',
        /^host changed \(root@127\.0\.0\.1:\d+\): HOST KEY CHANGED for \[127\.0\.0\.1\]:\d+: it presented ssh-ed25519 SHA256:\S+, but .*known_hosts_changed line 1 has/,
      ],
      [
        'unknown',
        /host key of \[127\.0\.0\.1\]:\d+ is not in .*known_hosts_empty: it presented ssh-ed25519 SHA256:\S+\. .*add this line/,
      ],
      ['pinned-wrong', /does not match host_key_fingerprint: it presented ssh-ed25519 SHA256:/],
      ['stranger', /the server refused the key .*stranger_ed25519 for user root/],
      ['nowhere', /^host nowhere \(root@127\.0\.0\.1:\d+\): cannot connect: connect ECONNREFUSED/],
      [
        'wrong-passphrase',
        /^host wrong-passphrase: cannot use private_key .*locked_key: .*(passphrase|decrypt)/i,
      ],
    ];
    const ids = new Map<string, string>();
    for (const [host] of cases) ids.set(host, await hello(host, `to-${host}`));
    const fine = [
      await hello('good', 'to-good'),
      await hello('pinned', 'to-pinned'),
      await hello('locked', 'to-locked'),
      await hello(undefined, 'stays-local'),
    ];
    for (const [host, message] of cases) {
      const { state, record } = await finished(env, ids.get(host) ?? '');
      expect(state, host).toBe('failed');
      expect(record.last?.outcome, host).toBe('error');
      expect(record.last?.error, host).toMatch(message);
      expect(hostState(daemon, host), host).toBe('failed');
    }
    for (const id of fine) {
      const { state, dir } = await finished(env, id);
      expect(state).toBe('done');
      expect(log(dir, 'stdout.log')).toMatch(/^hello from (good|pinned|locked|here)\n$/);
    }
    expect(hostState(daemon, 'good')).toBe('ready');
    expect(hostEvents.filter((e) => e.host === 'nowhere').map((e) => e.state)).toContain('failed');
  });

  it('takes a corrected host file without a restart', async () => {
    // `changed` was refused for its key in the test before; now its known_hosts is right.
    env.writeConfig('hosts/changed.yaml', hostFile(good, path.join(env.root, 'remote', 'changed')));
    await waitFor(
      () => daemon.hosts.host('changed')?.known_hosts === good.knownHosts,
      10_000,
      'the host file reloaded',
    );
    expect(hostState(daemon, 'changed')).toBe('unknown');
    const { state, dir } = await finished(env, await hello('changed', 'after-fix'));
    expect(state).toBe('done');
    expect(log(dir, 'stdout.log')).toBe('hello from changed\n');
    expect(hostState(daemon, 'changed')).toBe('ready');
  });

  it('starts nothing on a down host until its back-off ends, and other hosts keep working meanwhile', async () => {
    // `later` refuses connections; its back-off is 2 s.
    const first = await finished(env, await hello('later', 'later-first'));
    expect(first.state).toBe('failed');
    const waiting = await hello('later', 'waits-for-backoff');
    const meanwhile = await hello('good', 'meanwhile');
    expect((await finished(env, meanwhile)).state).toBe('done');
    expect(findJob(env.spool, waiting)).toEqual([{ queue: 'default', state: 'queued' }]);
    const { state, record } = await finished(env, waiting, 10_000);
    expect(state).toBe('failed');
    expect(record.last?.error).toContain('cannot connect');
    const waited = Date.parse(record.last?.started_at ?? '') - Date.parse(first.record.last?.ended_at ?? '');
    expect(waited).toBeGreaterThanOrEqual(1900);
    expect(daemon.hosts.states.get('later').failures).toBe(2);
  });

  it('a host whose sshd dies mid-job: the attempt ends interrupted with the lost connection, the job is queued again (an interruption, not a retry), the remote process is stopped, the host comes back after its back-off', async () => {
    const flag = path.join(env.root, 'once-flag');
    const id = await dropJob(env, 'default', { type: 'once', params: { flag } }, 'dies-mid-job');
    await waitForProcess('sleep 319');
    fragile.kill();
    const other = await hello('good', 'while-fragile-is-down');
    // Interrupted: the attempt is recorded with its reason and the job goes back to queued/.
    const first = await waitFor(() => {
      const where = findJob(env.spool, id)[0];
      if (where?.state !== 'queued') return undefined;
      const record = readState(env.spool, 'default', 'queued', id);
      return record.results.length === 1 ? record : undefined;
    });
    expect(first.results[0]?.outcome).toBe('interrupted');
    expect(first.results[0]?.error).toMatch(
      /^host fragile: connection lost mid-job \(.+\); the host is marked down$/,
    );
    expect(first.interruptions).toBe(1);
    expect(first.retries).toBe(0);
    expect(hostState(daemon, 'fragile')).toBe('failed');
    // No end-of-file on the job's stdin any more: the wrapper killed the job.
    await waitForNoProcess('sleep 319', 5_000);
    expect((await finished(env, other)).state).toBe('done');
    await fragile.restart();
    const { state, record, dir } = await finished(env, id, 20_000);
    expect(state).toBe('done');
    expect(record.attempts).toBe(2);
    expect(record.interruptions).toBe(1);
    expect(log(dir, 'stdout.log')).toBe('second run\n');
    expect(hostState(daemon, 'fragile')).toBe('ready');
  });
});
