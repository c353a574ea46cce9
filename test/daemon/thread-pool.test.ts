import { readFileSync } from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { makeEnv, type TestEnv } from '../helpers/env.ts';

/** The threads of a process (Linux), libuv's pool among them. */
function threadsOf(pid: number): number {
  const line = /^Threads:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(line?.[1]);
}

/**
 * The `batchd` command sizes libuv's thread pool before the daemon's modules load (daemon/batchd.cts):
 * durable acceptance issues its fsyncs through that pool. libuv reads the size once, so only the
 * thread count of the running process shows which size took effect.
 */
describe("the batchd command's thread pool", () => {
  let env: TestEnv | undefined;
  let daemon: DaemonProcess | undefined;
  afterEach(async () => {
    await daemon?.stop();
    env?.cleanup();
  });

  const start = async (pool: string | undefined): Promise<number> => {
    env = makeEnv({ queues: { default: null }, config: { storage: { fsync: true } } });
    daemon = await startDaemon(env.etc, env.spool, { env: { UV_THREADPOOL_SIZE: pool } });
    return threadsOf(daemon.pid);
  };

  it('runs 64 pool threads by default', async () => {
    expect(await start(undefined)).toBeGreaterThanOrEqual(64);
  });

  it('takes the size from UV_THREADPOOL_SIZE when it is set', async () => {
    const six = await start('6');
    await daemon?.stop();
    env?.cleanup();
    const sixteen = await start('16');
    // The same daemon with 10 more pool threads: everything else (main, V8's, Node's) is equal.
    expect(sixteen - six).toBe(10);
    expect(sixteen).toBeLessThan(40);
  });
});
