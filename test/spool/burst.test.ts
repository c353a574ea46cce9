import { existsSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { entriesOf, misplacedJobs, readLedger } from '../helpers/spool-checks.ts';

const DROPS = 20_000;

/**
 * 20,000 drops land while the daemon runs: every one is accepted once, none is lost, and each job
 * runs once (its id appears once in the ledger every job appends to). The queue is disabled during
 * the burst, which proves acceptance on its own, then enabled by editing queue.yaml (hot reload).
 */
describe('a burst of 20,000 drops', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let ledger: string;

  beforeAll(async () => {
    env = makeEnv({
      queues: { burst: { enabled: false } },
      config: { dispatcher: { workers: 8, poll_timeout: 2 } },
      // This shared machine's disk is often saturated by other suites' fsyncs. What this test proves
      // (nothing lost, nothing doubled, also when inotify's queue of 16,384 events overflows, as
      // four events per drop make likely) does not depend on the disk; a tmpfs keeps the time sane.
      parent: existsSync('/dev/shm') ? '/dev/shm' : undefined,
    });
    ledger = path.join(env.root, 'ledger');
    env.writeConfig('jobtypes/ledger.yaml', {
      template: 'echo "$BATCHD_JOB_ID" >> "$LEDGER"',
      environment: { LEDGER: ledger },
    });
    daemon = await startDaemon(env.etc, env.spool);
  });
  afterAll(async () => {
    await daemon.stop();
    env.cleanup();
  });

  // What it proves is "none lost, none twice", not speed: the limits are generous for a loaded machine.
  it('accepts every drop once, then runs every job exactly once', { timeout: 1_200_000 }, async () => {
    const incoming = path.join(env.spool, 'burst', 'incoming');
    const names: string[] = [];
    const started = Date.now();
    for (let i = 0; i < DROPS; i++) {
      const name = `b${String(i).padStart(5, '0')}.yaml`;
      const tmp = path.join(incoming, `.${name}.tmp`);
      writeFileSync(tmp, 'type: ledger\n');
      renameSync(tmp, path.join(incoming, name));
      names.push(name);
    }
    const dropped = Date.now();

    // Reading a folder of 20,000 entries costs milliseconds: look once a second, not every 20 ms.
    const count = (folder: string): number => entriesOf(env.spool, 'burst', folder).length;
    const queued = await waitFor(
      () => {
        const ids = readdirSync(path.join(env.spool, 'burst', 'queued'));
        return ids.length >= DROPS ? ids : undefined;
      },
      240_000,
      'all drops to be accepted',
      1000,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}; incoming: ${count('incoming')}, queued: ${count('queued')}`);
    });
    const accepted = Date.now();
    expect(queued).toHaveLength(DROPS);
    expect(entriesOf(env.spool, 'burst', 'incoming')).toEqual([]);
    expect(entriesOf(env.spool, 'burst', 'rejected')).toEqual([]);
    // Every drop became exactly one job: ids end with the slug of their file's name.
    const slugs = queued.map((id) => id.slice(id.lastIndexOf('-') + 1)).sort();
    expect(slugs).toEqual(names.map((n) => n.replace('.yaml', '')).sort());
    // Nothing ran while the queue was disabled.
    expect(readLedger(ledger)).toEqual([]);

    writeFileSync(path.join(env.spool, 'burst', 'queue.yaml'), 'enabled: true\n');
    await waitFor(
      () => count('queued') === 0 && count('running') === 0,
      900_000,
      'the queue to drain',
      1000,
    ).catch((error: unknown) => {
      throw new Error(
        `${String(error)}; queued: ${count('queued')}, running: ${count('running')}, ledger: ${readLedger(ledger).length}`,
      );
    });
    const ran = Date.now();

    const lines = readLedger(ledger);
    const distinct = new Set(lines);
    expect(lines).toHaveLength(DROPS);
    expect(distinct.size).toBe(DROPS);
    const done = jobsIn(env.spool, 'burst', 'done');
    expect(done.sort()).toEqual([...distinct].sort());
    expect(misplacedJobs(env.spool, 'burst')).toEqual([]);
    expect(jobsIn(env.spool, 'burst', 'failed')).toEqual([]);
    expect(entriesOf(env.spool, 'burst', '.staging')).toEqual([]);
    console.log(
      `burst: ${DROPS} drops written in ${dropped - started} ms, all accepted after ${accepted - started} ms, ` +
        `all run in ${ran - accepted} ms (${Math.round((DROPS * 1000) / (ran - accepted))} jobs/s)`,
    );
  });
});
