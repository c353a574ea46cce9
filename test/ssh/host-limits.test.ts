import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { dropJob, makeDispatchEnv, startInProcess } from '../helpers/dispatch.ts';
import { findJob, type TestEnv } from '../helpers/env.ts';
import { finished, hostFile, log } from './ssh-env.ts';
import { type Sshd, startSshd } from './sshd.ts';

/** The most jobs that were inside their sleep at once, from `+ t` / `- t` lines. */
function peak(file: string): { peak: number; starts: number } {
  const events = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [sign, t] = line.split(' ');
      return { delta: sign === '+' ? 1 : -1, t: Number(t) };
    })
    .sort((a, b) => a.t - b.t || a.delta - b.delta);
  let now = 0;
  let most = 0;
  for (const e of events) {
    now += e.delta;
    most = Math.max(most, now);
  }
  return { peak: most, starts: events.filter((e) => e.delta === 1).length };
}

describe('two hosts (two sshd instances)', () => {
  let one: Sshd;
  let three: Sshd;
  let env: TestEnv;
  let daemon: Daemon;

  beforeAll(async () => {
    // `three` allows two sessions per connection, like a server with MaxSessions 2.
    [one, three] = await Promise.all([startSshd(), startSshd({ maxSessions: 2 })]);
    env = makeDispatchEnv({
      config: { dispatcher: { workers: 10 } },
      queues: { default: null, other: null, viaqueue: { host_name: 'one' } },
      jobTypes: {
        probe: {
          template: ['echo "+ $(date +%s.%N)" >> "$log"', 'sleep 0.4', 'echo "- $(date +%s.%N)" >> "$log"'],
          params: [{ name: 'log', type: 'String' }],
        },
        where: { template: 'echo "on ${BATCHD_HOST:-this machine}"' },
        where3: { template: 'echo "on ${BATCHD_HOST:-this machine}"', host_name: 'three' },
      },
    });
    env.writeConfig('hosts/one.yaml', hostFile(one, path.join(env.root, 'remote-one'), { max_jobs: 1 }));
    // Two channels per connection, one of them SFTP's: three jobs at once take three connections,
    // and a third channel on one connection would be refused by the server (the job would fail).
    env.writeConfig(
      'hosts/three.yaml',
      hostFile(three, path.join(env.root, 'remote-three'), { max_jobs: 3, sessions_per_connection: 2 }),
    );
    daemon = await startInProcess(env);
  });

  afterAll(async () => {
    await daemon?.stop();
    await Promise.all([one?.stop(), three?.stop()]);
    env?.cleanup();
  });

  it('holds each host to its max_jobs, uses both hosts, and never holds up other hosts or local jobs', async () => {
    const logs = { one: path.join(env.root, 'one.log'), three: path.join(env.root, 'three.log') };
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      for (const host of ['one', 'three'] as const) {
        ids.push(
          await dropJob(env, 'default', { type: 'probe', host, params: { log: logs[host] } }, `${host}-${i}`),
        );
      }
    }
    // Dropped after twelve remote jobs, in another queue: it runs at once, not after host one's queue.
    const local = await dropJob(env, 'other', { command: 'true' }, 'local-meanwhile');
    expect((await finished(env, local, 10_000, 'other')).state).toBe('done');
    const oneFinished = ids
      .filter((id) => /-one-\d$/.test(id))
      .filter((id) => findJob(env.spool, id)[0]?.state === 'done');
    expect(oneFinished.length).toBeLessThan(6);
    const results = [];
    for (const id of ids) results.push(await finished(env, id, 30_000));
    expect(results.map((r) => r.state)).toEqual(ids.map(() => 'done'));
    expect(peak(logs.one)).toEqual({ peak: 1, starts: 6 });
    const busy = peak(logs.three);
    expect(busy.starts).toBe(6);
    expect(busy.peak).toBe(3);
  });

  it("runs a job on its own host, else its type's, else its queue's, else on this machine", async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['viaqueue', { type: 'where' }, 'on one'],
      ['viaqueue', { type: 'where3' }, 'on three'],
      ['viaqueue', { type: 'where3', host: 'one' }, 'on one'],
      ['default', { type: 'where' }, 'on this machine'],
    ];
    for (const [i, [queue, job, expected]] of cases.entries()) {
      const id = await dropJob(env, queue, job, `where-${i}`);
      const { state, dir } = await finished(env, id, 20_000, queue);
      expect(state).toBe('done');
      expect(log(dir, 'stdout.log'), JSON.stringify(job)).toBe(`${expected}\n`);
    }
  });
});
