import path from 'node:path';

import { type DaemonProcess } from '../helpers/daemon-process.ts';
import { makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { audit, type Audit, snapshot, summary } from './audit.ts';
import {
  countStates,
  killMarked,
  ledgerJobType,
  markedProcesses,
  type OnFailMode,
  pauseOf,
  random,
  readLedger,
  SEED,
  sleep,
  startMarked,
  Submissions,
  waitUntilFinished,
} from './harness.ts';

export interface CrashLoopPlan {
  onFail: OnFailMode;
  rounds: number;
  /** How many jobs to submit over all rounds (the last task may go a little past it). */
  jobs: number;
  seed?: number;
}

/** Where the kills landed: the loop proves little unless they hit every phase. */
export interface KillTally {
  rounds: number;
  /** Killed before it logged ready: during recovery of the previous kill or the backlog scan. */
  duringBoot: number;
  /** Jobs were in running/ at the kill. */
  duringRuns: number;
  /** Some drops of this life were taken and some not yet, or an acceptance was half built. */
  duringAcceptance: number;
  /** An acceptance was half built in .staging/ at the kill. */
  withStaging: number;
}

export interface CrashLoopResult {
  env: TestEnv;
  submissions: Submissions;
  tally: KillTally;
  audit: Audit;
  leftoverProcesses: number[];
  seconds: number;
}

const QUEUES = ['default', 'bulk'];

export function crashLoopEnv(onFail: OnFailMode): TestEnv {
  const env = makeEnv({
    queues: { default: null, bulk: null },
    // The loop kills far more often than any machine fails: a job may be hit many times. The
    // bound on interruptions has its own test (test/daemon/interruptions.test.ts).
    config: {
      dispatcher: { workers: 4, poll_timeout: 0.5, lock_stale: 2, grace_time: 2, max_interruptions: 1000 },
    },
  });
  env.writeConfig('jobtypes/ledger.yaml', ledgerJobType(path.join(env.root, 'ledger'), onFail));
  return env;
}

/**
 * Kill -9 the daemon again and again at random moments while drops arrive and jobs run, then let
 * one daemon finish everything and read the spool and the ledger back.
 */
export async function runCrashLoop(env: TestEnv, plan: CrashLoopPlan): Promise<CrashLoopResult> {
  const started = Date.now();
  const rng = random(plan.seed ?? SEED);
  const submissions = new Submissions();
  const tally: KillTally = { rounds: 0, duringBoot: 0, duringRuns: 0, duringAcceptance: 0, withStaging: 0 };
  // Drops per round; a drop is 1.6 jobs on average (one in 25 is a task of 5 to 25).
  const perRound = Math.max(1, Math.round(plan.jobs / plan.rounds / 1.6));
  const submit = (count: number): number => {
    let dropped = 0;
    for (; dropped < count && submissions.jobs < plan.jobs; dropped++) {
      const queue = rng.pick(QUEUES);
      if (rng.chance(0.04))
        submissions.drop(
          env.spool,
          queue,
          Array.from({ length: rng.int(5, 25) }, () => pauseOf(rng)),
        );
      else submissions.drop(env.spool, queue, pauseOf(rng));
    }
    return dropped;
  };

  for (let round = 0; round < plan.rounds; round++) {
    // A backlog that waits in incoming/ while no daemon runs is taken during the next boot.
    if (rng.chance(0.3)) submit(rng.int(1, perRound));
    const inBoot = rng.chance(0.15);
    const before = countStates(env.spool, QUEUES).incoming ?? 0;
    const daemon = await startMarked(env, { waitReady: !inBoot });
    let dropped = 0;
    if (inBoot) {
      // Its first log line comes as the configuration is read; the spool work follows at once.
      await waitFor(
        () => daemon.logs() !== '' || daemon.child.exitCode !== null,
        20_000,
        'the first log line',
      );
      await sleep(rng.int(0, 150));
    } else {
      // One round in four kills right after its burst of drops, while they are being taken: a
      // fast daemon accepts a burst within milliseconds, so later kills would rarely land there.
      const killAt = Date.now() + (rng.chance(0.25) ? rng.int(0, 6) : rng.int(30, 450));
      const burst = rng.int(0, 2 * perRound);
      for (let i = 0; i < burst; i++) {
        dropped += submit(1);
        if (i % 4 === 3) await sleep(rng.int(0, 4));
      }
      await sleep(killAt - Date.now());
    }
    await kill(daemon);
    const after = countStates(env.spool, QUEUES);
    tally.rounds += 1;
    if (!daemon.logs().includes('batchd ready')) tally.duringBoot += 1;
    if ((after.running ?? 0) > 0) tally.duringRuns += 1;
    if ((after.staging ?? 0) > 0) tally.withStaging += 1;
    const taken = before + dropped - (after.incoming ?? 0);
    if ((after.staging ?? 0) > 0 || (taken > 0 && (after.incoming ?? 0) > 0)) tally.duringAcceptance += 1;
  }

  // The last daemon finishes everything; then it is stopped the orderly way.
  const last = await startMarked(env);
  const unfinished = await waitUntilFinished(env.spool, QUEUES, submissions.jobs, 180_000);
  await last.stop();
  const leftoverProcesses = await waitFor(
    () => (markedProcesses(env.root).length === 0 ? [] : undefined),
    5_000,
    'no processes left',
  ).catch(() => markedProcesses(env.root));
  const result = audit(snapshot(env.spool), {
    submitted: submissions.expected,
    ledger: readLedger(path.join(env.root, 'ledger')),
    onFail: plan.onFail,
  });
  if (unfinished !== undefined) result.problems.unshift(unfinished);
  const seconds = (Date.now() - started) / 1000;
  console.log(
    `crash loop (on_fail ${plan.onFail}, seed ${plan.seed ?? SEED}): ${tally.rounds} kill -9 rounds in ${seconds.toFixed(1)} s ` +
      `(${tally.duringBoot} during boot, ${tally.duringRuns} with jobs running, ${tally.duringAcceptance} during acceptance, ` +
      `${tally.withStaging} with a half-built acceptance); ${submissions.jobs} jobs submitted; ${summary(result.stats)}`,
  );
  return { env, submissions, tally, audit: result, leftoverProcesses, seconds };
}

async function kill(daemon: DaemonProcess): Promise<void> {
  daemon.kill('SIGKILL');
  await daemon.exited;
}

export function cleanupCrashLoop(env: TestEnv | undefined): void {
  if (env === undefined) return;
  killMarked(env.root);
  env.cleanup();
}
