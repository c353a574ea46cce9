import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import {
  drop,
  jobDir,
  jobsIn,
  makeEnv,
  readState,
  TEST_DEFAULTS,
  type TestEnv,
  waitFor,
} from '../helpers/env.ts';
import {
  entriesOf,
  isAlive,
  jobProcessesOf,
  misplacedJobs,
  readLedger,
  sleep,
  statesById,
} from '../helpers/spool-checks.ts';

/** The launcher process the daemon forked (its only child). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

describe('kill -9 of the daemon in the middle of a run', () => {
  let env: TestEnv;
  let daemon: DaemonProcess | undefined;
  let ledger: string;
  const strays: number[] = [];

  beforeEach(() => {
    env = makeEnv({ queues: { default: null }, config: { dispatcher: { workers: 4 } } });
    ledger = path.join(env.root, 'ledger');
    const work = (onFail: unknown): unknown => ({
      template: [
        'echo "$BATCHD_JOB_ID $BATCHD_ATTEMPT start" >> "$LEDGER"',
        'sleep 0.5',
        'echo "$BATCHD_JOB_ID $BATCHD_ATTEMPT end" >> "$LEDGER"',
      ],
      on_fail: onFail,
      environment: { LEDGER: ledger },
    });
    env.writeConfig('jobtypes/retried.yaml', work('retry'));
    env.writeConfig('jobtypes/once.yaml', work('continue'));
    // Leaves a process in its own session, out of reach of the launcher's process-group kill.
    env.writeConfig('jobtypes/escaper.yaml', {
      // The ledger line is written by the escaped process once it has its own session: a kill
      // between the fork and setsid(2) would take it down with the job's group.
      template: [
        `setsid sh -c 'echo "$BATCHD_JOB_ID" >> "$LEDGER"; exec sleep 300' < /dev/null > /dev/null 2>&1 &`,
        'sleep 300',
      ],
      environment: { LEDGER: ledger },
    });
  });
  afterEach(async () => {
    daemon?.kill('SIGKILL');
    await daemon?.exited;
    for (const pid of [...strays, ...jobProcessesOf(env.spool)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    env.cleanup();
  });

  it('leaves every job in exactly one state folder, with interrupted attempts recorded, and no orphans', async () => {
    daemon = await startDaemon(env.etc, env.spool);
    const names = Array.from({ length: 24 }, (_, i) => `job${String(i).padStart(2, '0')}.yaml`);
    names.forEach((name, i) => drop(env.spool, 'default', { type: i % 2 === 0 ? 'retried' : 'once' }, name));

    // Mid-run: some jobs finished, four running, of both kinds.
    const typeOf = (state: string, id: string): string | undefined => {
      try {
        return (
          JSON.parse(
            readFileSync(path.join(jobDir(env.spool, 'default', state, id), 'job.yaml'), 'utf8'),
          ) as { type: string }
        ).type;
      } catch {
        return undefined;
      }
    };
    await waitFor(
      () => {
        if (jobsIn(env.spool, 'default', 'done').length < 4) return false;
        const running = jobsIn(env.spool, 'default', 'running');
        const types = new Set(running.map((id) => typeOf('running', id)));
        return running.length === 4 && types.has('retried') && types.has('once');
      },
      30_000,
      'a run in full swing',
      5,
    );
    const launcher = childrenOf(daemon.pid);
    expect(launcher).toHaveLength(1);
    expect(jobProcessesOf(env.spool).length).toBeGreaterThan(0);
    // More drops land just before the kill: some are taken, some half accepted, some not seen yet.
    const late = Array.from({ length: 20 }, (_, i) => `late${String(i).padStart(2, '0')}.yaml`);
    for (const name of late) drop(env.spool, 'default', { type: 'retried' }, name);
    daemon.kill('SIGKILL');
    await daemon.exited;
    const interrupted = jobsIn(env.spool, 'default', 'running');
    expect(interrupted.length).toBeGreaterThan(0);

    // The launcher saw its channel close and took every job with it.
    await waitFor(() => jobProcessesOf(env.spool).length === 0, 5000, 'job processes to end');
    await waitFor(() => !isAlive(launcher[0] ?? -1), 5000, 'the launcher to exit');
    const ledgerAtKill = readLedger(ledger).length;
    await sleep(800); // longer than a job's sleep: an orphan would write its "end" line now
    expect(readLedger(ledger)).toHaveLength(ledgerAtKill);

    daemon = await startDaemon(env.etc, env.spool);
    await waitFor(
      () =>
        jobsIn(env.spool, 'default', 'queued').length + jobsIn(env.spool, 'default', 'running').length === 0,
      60_000,
      'every job to finish',
      100,
    );
    expect(misplacedJobs(env.spool, 'default')).toEqual([]);
    const states = statesById(env.spool, 'default');
    expect(states.size).toBe(names.length + late.length);
    // Each drop became exactly one job.
    const slugs = [...states.keys()].map((id) => id.slice(id.lastIndexOf('-') + 1)).sort();
    expect(slugs).toEqual([...names, ...late].map((n) => n.replace('.yaml', '')).sort());
    expect(entriesOf(env.spool, 'default', 'incoming')).toEqual([]);
    expect(entriesOf(env.spool, 'default', '.staging')).toEqual([]);

    for (const [id, [state]] of states) {
      const record = readState(env.spool, 'default', state ?? '', id);
      const wasInterrupted = interrupted.includes(id);
      const type = typeOf(state ?? '', id);
      if (!wasInterrupted) {
        expect(state, id).toBe('done');
        expect(record.attempts, id).toBe(1);
        continue;
      }
      expect(record.results[0], id).toMatchObject({ attempt: 1, outcome: 'interrupted' });
      expect(
        record.history.some((h) => h.reason.startsWith('recovered')),
        id,
      ).toBe(true);
      {
        // Re-run after the crash whatever on_fail says (an interruption is not the job's failure):
        // the second attempt is visible, the interruption counted apart from the retries.
        expect(state, id).toBe('done');
        expect(record.attempts, id).toBe(2);
        expect(
          record.results.map((r) => r.outcome),
          id,
        ).toEqual(['interrupted', 'success']);
        expect(
          readLedger(ledger).filter((l) => l === `${id} 2 end`),
          id,
        ).toHaveLength(1);
        expect(record.interruptions, id).toBe(1);
        expect(type === 'retried' || type === 'once', id).toBe(true);
      }
      // Its first attempt may have ended just before the kill, unrecorded; it never ran on after it.
      expect(
        readLedger(ledger)
          .slice(ledgerAtKill)
          .filter((l) => l.startsWith(`${id} 1 `)),
        id,
      ).toEqual([]);
    }
    expect(interrupted.every((id) => jobsIn(env.spool, 'default', 'done').includes(id))).toBe(true);
    expect(jobsIn(env.spool, 'default', 'failed')).toEqual([]);
    // Every claim lock was released or broken. What is left is the running daemon's pool of spare
    // lock files; the killed daemon's pool was removed as the new one started.
    const left = readdirSync(path.join(env.spool, '.locks'));
    expect(left.filter((name) => !name.startsWith('.spares-'))).toEqual([]);
    expect(left.map((name) => name.split('-')[2])).toEqual([String(daemon.pid)]);
  });

  it('kills, on restart, a job process that escaped the launcher (found by BATCHD_JOB_ID)', async () => {
    // No interruption allowed: the recovered job fails instead of running (and escaping) again.
    // Process groups only: in a job cgroup the launcher kills the escaped process at once
    // (test/daemon/containment.test.ts); this is the path for machines without cgroups.
    env.writeConfig('batchd.yaml', {
      ...TEST_DEFAULTS,
      dispatcher: { ...TEST_DEFAULTS.dispatcher, workers: 4, max_interruptions: 0, containment: 'group' },
    });
    daemon = await startDaemon(env.etc, env.spool);
    drop(env.spool, 'default', { type: 'escaper' }, 'escaper.yaml');
    const [id] = await waitFor(() => {
      const lines = readLedger(ledger);
      return lines.length > 0 ? lines : undefined;
    });
    daemon.kill('SIGKILL');
    await daemon.exited;

    // The job's own group is gone; the process in its own session is not.
    const escaped = await waitFor(
      () => {
        const pids = jobProcessesOf(env.spool);
        const left = pids.filter((pid) =>
          readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('sleep\x00300\x00'),
        );
        return left.length === 1 && left.length === pids.length ? left : undefined;
      },
      5000,
      'only the escaped process to remain',
    ).catch((error: unknown) => {
      const left = jobProcessesOf(env.spool).map(
        (pid) => `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ')}`,
      );
      throw new Error(`${String(error)}; job processes: ${left.join('; ')}`);
    });
    strays.push(...escaped);
    await sleep(300);
    expect(escaped.every(isAlive)).toBe(true);

    daemon = await startDaemon(env.etc, env.spool);
    await waitFor(
      () => jobsIn(env.spool, 'default', 'failed').length === 1,
      20_000,
      'the job to be recovered',
    );
    await waitFor(() => escaped.every((pid) => !isAlive(pid)), 5000, 'the escaped process to be killed');
    const record = readState(env.spool, 'default', 'failed', id ?? '');
    expect(record.last?.outcome).toBe('interrupted');
    expect(record.history.at(-1)?.reason).toMatch(/interrupted 1 times, more than max_interruptions \(0\)/);
    expect(jobProcessesOf(env.spool)).toEqual([]);
  });
});
