import { readFileSync } from 'node:fs';

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { pinnedPolicy } from '../../daemon/hosts/known-hosts.ts';
import { SshPool } from '../../daemon/hosts/ssh-pool.ts';
import { type Sshd, startSshd } from './sshd.ts';

/** Keep the event loop busy in slices, as a loaded daemon is: replies pile up in the socket meanwhile. */
function busyNeighbour(sliceMs: number): () => void {
  let on = true;
  const spin = (): void => {
    if (!on) return;
    const until = performance.now() + sliceMs;
    while (performance.now() < until);
    setTimeout(spin, 1);
  };
  setTimeout(spin, 1);
  return () => (on = false);
}

describe('short commands over a pooled SSH connection', () => {
  let sshd: Sshd;
  let pool: SshPool;

  beforeAll(async () => {
    sshd = await startSshd();
    pool = new SshPool(
      'loopback',
      { maxConnections: 1, sessionsPerConnection: 10, idleTimeoutMs: 60_000 },
      () =>
        Promise.resolve({
          where: `root@127.0.0.1:${sshd.port}`,
          keyFile: sshd.clientKey,
          policy: pinnedPolicy([sshd.fingerprint], `[127.0.0.1]:${sshd.port}`),
          config: {
            host: '127.0.0.1',
            port: sshd.port,
            username: 'root',
            privateKey: readFileSync(sshd.clientKey),
          },
        }),
      pino({ level: 'silent' }),
    );
  });

  afterAll(async () => {
    pool?.retire();
    await sshd?.stop();
  });

  // A quick command's exit status can arrive in the same read as the reply to the exec request,
  // and ssh2 emits 'exit' before a caller that awaited the channel listens: it was reported as
  // "killed" (a startup command on a host, under load).
  it('reports the exit status of quick commands on a busy event loop', async () => {
    const lease = await pool.lease(AbortSignal.timeout(10_000));
    const stop = busyNeighbour(25);
    try {
      const results = [];
      for (let i = 0; i < 12; i++) results.push(await lease.run(`echo out-${i}; exit ${i % 4}`));
      expect(results.map((r) => r.code)).toEqual(Array.from({ length: 12 }, (_, i) => i % 4));
      expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 12 }, (_, i) => `out-${i}\n`));
    } finally {
      stop();
      lease.release();
    }
  });
});
