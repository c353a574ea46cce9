import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import type { DaemonProcess } from '../helpers/daemon-process.ts';
import { jobDir, jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { audit, clip, snapshot, summary } from './audit.ts';
import {
  countStates,
  killMarked,
  ledgerJobType,
  markedProcesses,
  random,
  readLedger,
  SEED,
  sleep,
  startMarked,
  Submissions,
  waitUntilFinished,
} from './harness.ts';

const QUEUES = ['default', 'bulk'];

/**
 * Several daemons share one spool: each claims jobs under a proper-lockfile lock and the rename
 * queued/ → running/, so no job may run twice, and a dead dispatcher's jobs go to the others.
 */
describe('dispatchers sharing one spool', () => {
  let env: TestEnv | undefined;
  let daemons: DaemonProcess[] = [];

  afterEach(async () => {
    for (const daemon of daemons) daemon.kill('SIGKILL');
    await Promise.all(daemons.map((d) => d.exited));
    if (env !== undefined) {
      killMarked(env.root);
      env.cleanup();
    }
    daemons = [];
    env = undefined;
  });

  /**
   * `lockStale`: seconds without a refresh before a claim counts as its owner's death. A live
   * dispatcher starved of CPU for that long loses its claims, so it stays at the default unless a
   * test kills one.
   */
  const setUp = async (
    dispatchers: number,
    lockStale = 20,
  ): Promise<{ env: TestEnv; submissions: Submissions }> => {
    env = makeEnv({
      queues: { default: null, bulk: null },
      config: { dispatcher: { workers: 2, poll_timeout: 0.5, lock_stale: lockStale, grace_time: 2 } },
    });
    env.writeConfig('jobtypes/ledger.yaml', ledgerJobType(path.join(env.root, 'ledger'), 'retry'));
    const e = env;
    daemons = await Promise.all(
      Array.from({ length: dispatchers }, (_, i) => startMarked(e, { dispatcher: `d${i + 1}` })),
    );
    return { env: e, submissions: new Submissions() };
  };

  /** Drop `jobs` jobs in small bursts (a task now and then), as the dispatchers run. */
  const feed = async (
    e: TestEnv,
    submissions: Submissions,
    jobs: number,
    pause: () => number,
    seed: number,
  ): Promise<void> => {
    const rng = random(seed);
    while (submissions.jobs < jobs) {
      const queue = rng.pick(QUEUES);
      if (rng.chance(0.05)) submissions.drop(e.spool, queue, Array.from({ length: rng.int(5, 20) }, pause));
      else submissions.drop(e.spool, queue, pause());
      if (rng.chance(0.1)) await sleep(rng.int(0, 10));
    }
  };

  /** Wait for the end, stop the dispatchers; returns why not all jobs finished, if they did not. */
  const finish = async (e: TestEnv, submissions: Submissions): Promise<string | undefined> => {
    const unfinished = await waitUntilFinished(e.spool, QUEUES, submissions.jobs, 120_000);
    await Promise.all(daemons.map((d) => d.stop()));
    await waitFor(
      () => markedProcesses(e.root).length === 0,
      5_000,
      'every daemon, launcher and job to be gone',
    );
    return unfinished;
  };

  for (const [count, jobs] of [
    [2, 400],
    [3, 600],
  ] as const) {
    it(`${count} dispatchers run ${jobs} jobs between them, none twice`, async () => {
      const { env: e, submissions } = await setUp(count);
      await feed(e, submissions, jobs, () => 0, SEED + count);
      const unfinished = await finish(e, submissions);
      const ledger = readLedger(path.join(e.root, 'ledger'));
      const result = audit(snapshot(e.spool), { submitted: submissions.expected, ledger, onFail: 'retry' });
      if (unfinished !== undefined) result.problems.unshift(unfinished);
      const lost = daemons
        .flatMap((d) => d.records())
        .filter((r) => String(r.msg).includes('lock lost')).length;
      console.log(
        `${count} dispatchers: ${summary(result.stats)}; runs per dispatcher ${JSON.stringify(runsPerDispatcher(ledger))}; ${lost} claims lost`,
      );
      expect(clip(result.problems)).toEqual([]);
      expect(result.stats.done).toBe(submissions.jobs);
      expect(result.stats.runs).toBe(submissions.jobs);
      expect(result.stats.reran).toBe(0);
      // They really shared the work: every dispatcher ran some of it.
      expect(Object.keys(runsPerDispatcher(ledger)).sort()).toEqual(
        Array.from({ length: count }, (_, i) => `d${i + 1}`),
      );
    }, 180_000);
  }

  it('3 dispatchers, one killed -9 mid-way: the others recover its jobs, and only those re-run', async () => {
    const { env: e, submissions } = await setUp(3, 2);
    const rng = random(SEED + 7);
    const pause = (): number => rng.int(20, 150) / 1000;
    await feed(e, submissions, 300, pause, SEED + 7);
    const victim = daemons[1] as DaemonProcess;
    // Kill it while it runs jobs, so there is something to recover.
    await waitFor(
      () => runningOf(e.spool, victim.pid).length > 0 && (countStates(e.spool, QUEUES).done ?? 0) > 50,
      60_000,
      'the victim to run jobs',
    );
    // Frozen first, so the jobs it holds are read while nobody can change them: once it is dead,
    // the others may recover its jobs at their next rescan, before they could be read here.
    victim.kill('SIGSTOP');
    const held = runningOf(e.spool, victim.pid);
    victim.kill('SIGKILL');
    await victim.exited;
    expect(held.length).toBeGreaterThan(0);
    daemons = daemons.filter((d) => d !== victim);
    const unfinished = await finish(e, submissions);

    const ledger = readLedger(path.join(e.root, 'ledger'));
    const snap = snapshot(e.spool);
    const result = audit(snap, { submitted: submissions.expected, ledger, onFail: 'retry' });
    if (unfinished !== undefined) result.problems.unshift(unfinished);
    const lost = daemons
      .flatMap((d) => d.records())
      .filter((r) => String(r.msg).includes('lock lost')).length;
    console.log(
      `3 dispatchers, d2 killed holding ${held.length} jobs: ${summary(result.stats)}; ${lost} claims lost by the others`,
    );
    expect(clip(result.problems)).toEqual([]);
    expect(result.stats.done).toBe(submissions.jobs);
    // Every job the victim held was recovered by another dispatcher and says so.
    for (const id of held) {
      const job = snap.jobs.find((j) => j.id === id);
      const state = JSON.parse(
        readFileSync(path.join(jobDir(e.spool, job?.queue ?? '', 'done', id), 'state.yaml'), 'utf8'),
      ) as {
        results: { outcome: string }[];
        history: { reason: string }[];
      };
      expect(state.results.map((r) => r.outcome)).toContain('interrupted');
      expect(state.history.map((h) => h.reason).join('\n')).toMatch(/recovered/);
    }
    // Only interrupted jobs ran twice.
    expect(result.stats.reran).toBeLessThanOrEqual(result.stats.interrupted);
  }, 180_000);
});

/** Jobs in running/ claimed by the dispatcher with this pid. */
function runningOf(spool: string, pid: number): string[] {
  const ids: string[] = [];
  for (const queue of QUEUES) {
    for (const id of jobsIn(spool, queue, 'running')) {
      try {
        const state = JSON.parse(
          readFileSync(path.join(jobDir(spool, queue, 'running', id), 'state.yaml'), 'utf8'),
        ) as {
          running?: { owner?: { pid?: number } };
        };
        if (state.running?.owner?.pid === pid) ids.push(id);
      } catch {
        // moved on meanwhile
      }
    }
  }
  return ids;
}

function runsPerDispatcher(ledger: ReturnType<typeof readLedger>): Record<string, number> {
  const runs: Record<string, number> = {};
  for (const lines of ledger.values())
    for (const l of lines) if (l.event === 'start') runs[l.dispatcher] = (runs[l.dispatcher] ?? 0) + 1;
  return runs;
}
