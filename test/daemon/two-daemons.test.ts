import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobsIn, makeEnv, readState, type TestEnv, waitFor } from '../helpers/env.ts';
import { entriesOf, misplacedJobs, readLedger } from '../helpers/spool-checks.ts';

const JOBS = 300;

describe('two daemons on one spool', () => {
  let env: TestEnv;
  const daemons: DaemonProcess[] = [];
  let ledger: string;

  beforeEach(() => {
    env = makeEnv({ queues: { default: null }, config: { dispatcher: { workers: 3 } } });
    ledger = path.join(env.root, 'ledger');
    // Each job records which daemon ran it (DAEMON_TAG is in that daemon's environment).
    env.writeConfig('jobtypes/ledger.yaml', {
      template: ['echo "$BATCHD_JOB_ID $DAEMON_TAG" >> "$LEDGER"', 'sleep 0.02'],
      environment: { LEDGER: ledger },
    });
  });
  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((d) => d.stop()));
    env.cleanup();
  });

  it('run every job exactly once, and both run some', { timeout: 120_000 }, async () => {
    daemons.push(await startDaemon(env.etc, env.spool, { env: { DAEMON_TAG: 'A' } }));
    daemons.push(await startDaemon(env.etc, env.spool, { env: { DAEMON_TAG: 'B' } }));
    for (let i = 0; i < JOBS; i++)
      drop(env.spool, 'default', 'type: ledger\n', `j${String(i).padStart(3, '0')}.yaml`);

    await waitFor(
      () => jobsIn(env.spool, 'default', 'done').length >= JOBS,
      100_000,
      'every job to finish',
      200,
    );
    // Give a duplicate run, if any, the time to show up.
    await new Promise((r) => setTimeout(r, 1000));

    const lines = readLedger(ledger);
    const ids = lines.map((l) => l.split(' ')[0]);
    expect(new Set(ids).size).toBe(JOBS);
    expect(lines).toHaveLength(JOBS);
    const byTag = {
      A: lines.filter((l) => l.endsWith(' A')).length,
      B: lines.filter((l) => l.endsWith(' B')).length,
    };
    expect(byTag.A + byTag.B).toBe(JOBS);
    expect(byTag.A).toBeGreaterThan(0);
    expect(byTag.B).toBeGreaterThan(0);

    const done = jobsIn(env.spool, 'default', 'done');
    expect(done.sort()).toEqual([...new Set(ids)].sort());
    expect(misplacedJobs(env.spool, 'default')).toEqual([]);
    for (const id of done) expect(readState(env.spool, 'default', 'done', id).attempts, id).toBe(1);
    // Each drop became one job, whichever daemon took it.
    expect(new Set(done.map((id) => id.slice(id.lastIndexOf('-') + 1))).size).toBe(JOBS);
    expect(entriesOf(env.spool, 'default', 'incoming')).toEqual([]);
    expect(entriesOf(env.spool, 'default', 'rejected')).toEqual([]);
    expect(entriesOf(env.spool, 'default', '.staging')).toEqual([]);
    console.log(`two daemons: A ran ${byTag.A}, B ran ${byTag.B}`);
  });
});
