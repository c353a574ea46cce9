import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

import type { ConfigStore } from '../config/store.ts';
import { nextStep } from '../jobs/outcome.ts';
import { isFinished } from '../jobs/status.ts';
import type { Logger } from '../log.ts';
import { finishTask, stagingName } from './accept.ts';
import { type JobLocation, locateJob } from './find.ts';
import type { JournalRecord } from './journal.ts';
import { forEachJournaled, lostFiles, writeAgain, writeJobAgain } from './journal-replay.ts';
import type { SpoolLayout } from './layout.ts';
import { killAll } from './orphans.ts';
import { HOST_TAG, pidAlive } from './owner.ts';
import { forEachStaleClaim, type StaleClaim, type StaleClaimScan } from './recover.ts';
import { type JobState, readJobState } from './state-file.ts';
import { tasksLeftUnmade } from './task-manifest.ts';
import { moveJobFolder, type Transitions } from './transition.ts';

/**
 * What a crash can leave that a running daemon never does, and its repair, as pueue's
 * `restore_state`: each list below is one kind of leftover, each row one impossible state and what
 * puts it right. The first row whose `when` holds is applied (the last always holds). At start
 * the lists run in the order of `recoverSpool`; staging leftovers and stale claims are looked for
 * again at each rescan.
 * Every folder these rows move goes through the transition module's table (spool/transition.ts).
 */
interface Rule<T, R = void> {
  /** The state found, as the log names it. */
  state: string;
  when: (found: T) => boolean;
  repair: (found: T) => R;
}

const always = (): boolean => true;

function apply<T, R>(rules: readonly Rule<T, R>[], found: T): R {
  for (const rule of rules) if (rule.when(found)) return rule.repair(found);
  throw new Error('recovery: a list of rules must end with one that always holds');
}

// 1. The acceptance journal (spool/journal.ts): each acknowledged acceptance of a writer that is
//    gone must be in its spool whole. `job.yaml` and its drop are never rewritten after acceptance,
//    so they must match the record; `state.yaml` is rewritten as the job moves on, so it is written
//    again only if it cannot be read.

export interface ReplayOutcome {
  /** Segments read and dropped. */
  segments: number;
  /** Jobs written again whole: their folders had not reached the disk. */
  recreated: number;
  /** Files written again in folders that had. */
  repaired: number;
  /** Records of queues that no longer exist. */
  skipped: number;
}

interface Journaled {
  layout: SpoolLayout;
  record: JournalRecord;
  queueExists: boolean;
  /** Where the job is now, in any queue and state (it may have moved since). */
  found: JobLocation | undefined;
  lost: string[];
  outcome: ReplayOutcome;
  log: Logger;
}

export const JOURNAL_RULES: readonly Rule<Journaled>[] = [
  {
    state: 'an accepted job of a queue that is gone',
    when: (j) => !j.queueExists,
    repair: (j) => {
      j.outcome.skipped += 1;
      j.log.warn(
        { queue: j.record.queue, jobId: j.record.id },
        'journal: the queue of an accepted job is gone; not written again',
      );
    },
  },
  {
    state: 'an accepted job whose folder lost files a power loss emptied or took',
    when: (j) => j.found !== undefined && j.lost.length > 0,
    repair: (j) => {
      for (const name of j.lost) {
        writeAgain((j.found as JobLocation).dir, name, j.record);
        j.outcome.repaired += 1;
        j.log.warn(
          { queue: j.record.queue, jobId: j.record.id, file: name },
          'journal: wrote again a file a crash had lost',
        );
      }
    },
  },
  {
    state: 'an accepted job whole in its spool',
    when: (j) => j.found !== undefined,
    repair: () => undefined,
  },
  {
    state: 'an accepted job nowhere in its spool (not committed, or committed and lost)',
    when: always,
    repair: (j) => {
      writeJobAgain(j.layout, j.record);
      j.outcome.recreated += 1;
      j.log.warn(
        { queue: j.record.queue, jobId: j.record.id, state: j.record.into },
        'journal: wrote again an accepted job a crash had lost',
      );
    },
  },
];

/**
 * Replay the journal segments of writers that are gone. `foreignAfterMs`: a segment from another
 * machine is replayed once it is this old.
 */
export function replayJournal(
  layout: SpoolLayout,
  queues: readonly string[],
  log: Logger,
  foreignAfterMs = 3_600_000,
): ReplayOutcome {
  const outcome: ReplayOutcome = { segments: 0, recreated: 0, repaired: 0, skipped: 0 };
  outcome.segments = forEachJournaled(layout, foreignAfterMs, (record) => {
    const queueExists = existsSync(layout.queueDir(record.queue));
    const where = queues.includes(record.queue) ? queues : [...queues, record.queue];
    const found = queueExists ? locateJob(layout, where, record.id) : undefined;
    const lost = found === undefined ? [] : lostFiles(found.dir, record);
    apply(JOURNAL_RULES, { layout, record, queueExists, found, lost, outcome, log });
  });
  return outcome;
}

// 2. `.staging/` (spool/accept.ts): acceptances a dead process left half done. The commit point of a
//    single job is the rename of its folder out of staging, of a task the rename of its manifest.

interface LeftInStaging {
  layout: SpoolLayout;
  queue: string;
  dir: string;
  /** The job id (a task's first) the folder is named after. */
  id: string;
  /** The drop beside a single job, taken from `incoming/`. */
  drop: string | undefined;
  /** A task's manifest still in staging: the task was not committed. */
  manifest: string | undefined;
  isTask: boolean;
  outcome: { restored: number; committed: number };
}

export const STAGING_RULES: readonly Rule<LeftInStaging>[] = [
  {
    state: 'a task whose manifest was not committed',
    when: (s) => s.isTask && s.manifest !== undefined,
    repair: (s) => {
      // Its drop (if it had been taken) goes back to incoming/ and is read again.
      const manifest = s.manifest as string;
      const drop = readdirSync(manifest).find((f) => f.startsWith('drop.'));
      if (drop !== undefined) {
        const back = `recovered-${s.id}${path.extname(drop)}`;
        renameSync(path.join(manifest, drop), path.join(s.layout.folder(s.queue, 'incoming'), back));
        s.outcome.restored += 1;
      }
      rmSync(s.dir, { recursive: true, force: true });
    },
  },
  {
    state: 'a committed task whose jobs are still in staging',
    when: (s) => s.isTask,
    repair: (s) => {
      s.outcome.committed += readdirSync(path.join(s.dir, 'jobs')).length;
      finishTask(s.layout, s.queue, s.dir);
    },
  },
  {
    state: 'a single job whose drop was taken, not committed',
    when: (s) => s.drop !== undefined,
    repair: (s) => {
      // Its files are complete, so it is committed: one claimed at its acceptance goes where a
      // crash after its commit would have left it (running/), and is recovered as such.
      const into = claimedAtAcceptance(s.dir) ? 'running' : 'queued';
      const job = { id: s.id, queue: s.queue };
      moveJobFolder(job, 'staging', into, s.dir, s.layout.jobDir(s.queue, into, s.id));
      s.outcome.committed += 1;
    },
  },
  {
    state: 'a single job whose drop was not taken (or a task job half made)',
    when: always,
    repair: (s) => rmSync(s.dir, { recursive: true, force: true }),
  },
];

/**
 * Finish or undo the acceptances a dead process left in a queue's `.staging/`. Returns how many
 * drops were put back into `incoming/` and how many jobs were committed. `foreignStaleMs`: a
 * folder of another machine's process counts as left once it is this old (its writer's liveness
 * cannot be seen from here: `lock_stale`'s reasoning, see recoverStagingNow).
 */
export function recoverStaging(
  layout: SpoolLayout,
  queue: string,
  foreignStaleMs = 3_600_000,
): { restored: number; committed: number } {
  const root = layout.folder(queue, 'staging');
  const outcome = { restored: 0, committed: 0 };
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return outcome; // a queue being made or removed
  }
  for (const entry of entries) {
    const match = /^([0-9a-f]{8})-(\d+)-(.+)$/.exec(entry);
    if (match === null) continue;
    const [, tag, pid, id = ''] = match;
    // An acceptance in progress is its writer's: one of this machine whose process lives, or of
    // another machine, whose liveness cannot be seen from here, younger than `foreignStaleMs`.
    if (tag === HOST_TAG && pidAlive(Number(pid))) continue;
    const left = path.join(root, entry);
    if (tag !== HOST_TAG && !olderThan(left, foreignStaleMs)) continue;
    // Taken over first, by renaming it to a name of this process: a writer that still runs after
    // all (a stalled machine) can then add nothing to it (its rename of the drop into it fails,
    // and the drop stays in incoming/) nor commit it, and of two dispatchers only one gets it.
    const dir = path.join(root, stagingName(id));
    try {
      renameSync(left, dir);
    } catch {
      continue; // another dispatcher took it over first
    }
    const isTask = existsSync(path.join(dir, 'jobs'));
    const manifest = path.join(dir, 'task');
    apply(STAGING_RULES, {
      layout,
      queue,
      dir,
      id,
      drop: isTask ? undefined : readdirSync(dir).find((f) => f.startsWith('drop.')),
      manifest: existsSync(manifest) ? manifest : undefined,
      isTask,
      outcome,
    });
  }
  return outcome;
}

function olderThan(dir: string, ms: number): boolean {
  try {
    return Date.now() - statSync(dir).mtimeMs > ms;
  } catch {
    return false; // gone meanwhile
  }
}

/**
 * The staging recovery of a running daemon's rescans: what a dead process of this machine left at
 * once, and another machine's leftovers (a machine that died mid-acceptance) once they are older
 * than twice `lock_stale`, the longest pause a live dispatcher may have. Logged as at a start.
 */
export function recoverStagingNow(
  deps: Pick<ClaimRecovery, 'layout' | 'config' | 'log'>,
  queue: string,
): { restored: number; committed: number } {
  const staged = recoverStaging(deps.layout, queue, 2 * deps.config.daemon.dispatcher.lock_stale);
  if (staged.restored + staged.committed > 0)
    deps.log.warn({ queue, ...staged }, 'finished interrupted acceptances');
  return staged;
}

function claimedAtAcceptance(dir: string): boolean {
  try {
    return readJobState(dir).state === 'running';
  } catch {
    return false;
  }
}

// 3. `tasks/`: a task is committed as its manifest, and its job folders are made as the dispatcher
//    needs them (spool/task-manifest.ts).

interface TaskLeft {
  queue: string;
  name: string;
  resume: ((queue: string, name: string) => void) | undefined;
}

export const TASK_RULES: readonly Rule<TaskLeft>[] = [
  {
    // tasksLeftUnmade finds them: the made mark short of the count, its maker gone.
    state: 'a committed task whose job folders are not all made, its maker gone',
    when: always,
    repair: (t) => t.resume?.(t.queue, t.name),
  },
];

// 4. `running/`: claims whose dispatcher died (spool/recover.ts finds them and holds their lock).

export interface ClaimRecovery extends StaleClaimScan {
  transitions: Transitions;
  config: ConfigStore;
  /** A job queued again by recovery, for the dispatcher's index. */
  requeued: (state: JobState) => void;
  /** A running job whose work goes on without its dispatcher (a cluster job). */
  adoptable?: (dir: string, state: JobState) => boolean;
  /** Take such a job over; its lock is handed on and released once its end is recorded. */
  adopt?: (state: JobState, release: () => Promise<void>) => void;
  /** Go on making the job folders of a committed task (tasks/materialise.ts). */
  resumeTask?: (queue: string, name: string) => void;
}

type Claim = StaleClaim & { deps: ClaimRecovery };

/** True: the job's lock was handed on. */
export const CLAIM_RULES: readonly Rule<Claim, boolean>[] = [
  {
    state: 'a cluster job whose dispatcher stopped, its work going on elsewhere',
    when: (c) => c.deps.adoptable?.(c.dir, c.state) === true && c.deps.adopt !== undefined,
    repair: (c) => {
      c.deps.adopt?.(c.state, c.release);
      return true;
    },
  },
  {
    state: 'a job whose end was recorded but not moved',
    when: (c) => c.state.state === 'queued' || isFinished(c.state.state),
    repair: (c) => {
      killAll(c.processes());
      const next = c.deps.transitions.move(c, 'running', c.state.state, {
        known: c.state,
        reason: 'move completed after a restart',
      });
      if (next.state === 'queued') c.deps.requeued(next);
      return false;
    },
  },
  {
    state: 'a job whose dispatcher stopped while it ran',
    when: always,
    repair: (c) => {
      killAll(c.processes());
      interrupted(c);
      return false;
    },
  },
];

/**
 * Back to `queued/` with the interruption counted apart from its retries (on_fail is about the
 * job's own failures), to `failed/` past dispatcher.max_interruptions (jobs/outcome.ts), or
 * to `cancelled/` if its cancel had been asked for.
 */
function interrupted(c: Claim): void {
  const { state, deps } = c;
  const onFail = deps.config.jobType(state.type)?.on_fail ?? 'continue';
  const error = 'the dispatcher running it stopped';
  const interruptions = (state.interruptions ?? 0) + 1;
  const step = state.cancel_requested
    ? { to: 'cancelled' as const, toBack: false, reason: 'cancelled (its dispatcher had stopped)' }
    : nextStep('interrupted', error, onFail, state.retries, {
        count: interruptions,
        max: deps.config.daemon.dispatcher.max_interruptions,
      });
  const now = new Date().toISOString();
  const next = deps.transitions.move(c, 'running', step.to, {
    known: state,
    reason: `recovered: ${step.reason}`,
    update: (s) => {
      const result = {
        attempt: s.attempts,
        outcome: 'interrupted' as const,
        error,
        host: s.running?.host,
        started_at: s.running?.started_at,
        ended_at: now,
      };
      s.running = undefined;
      s.last = result;
      s.results.push(result);
      // Counted apart from the retries: an interruption is not the job's own failure.
      if (!state.cancel_requested) s.interruptions = interruptions;
    },
  });
  deps.log.warn(
    { jobId: c.id, queue: c.queue, to: step.to, attempts: next.attempts, interruptions: next.interruptions },
    'recovered an interrupted job',
  );
  if (next.state === 'queued') deps.requeued(next);
}

/** Repair the stale claims of a queue's `running/`. Returns how many jobs were recovered. */
export function recoverRunning(deps: ClaimRecovery, queue: string): Promise<number> {
  return forEachStaleClaim(deps, queue, (claim) => apply(CLAIM_RULES, { ...claim, deps }));
}

export interface RecoveryReport {
  journal: ReplayOutcome;
  staging: { restored: number; committed: number };
  running: number;
}

/**
 * At start, before anything reads a job: the journal first (it may write again jobs whose folders
 * a power loss took, staging included), then each queue's staging, its tasks, its stale claims.
 */
export async function recoverSpool(deps: ClaimRecovery, queues: readonly string[]): Promise<RecoveryReport> {
  const report: RecoveryReport = {
    journal: replayJournal(deps.layout, queues, deps.log),
    staging: { restored: 0, committed: 0 },
    running: 0,
  };
  if (report.journal.segments > 0) deps.log.info(report.journal, 'acceptance journal replayed');
  for (const queue of queues) {
    const staged = recoverStagingNow(deps, queue);
    report.staging.restored += staged.restored;
    report.staging.committed += staged.committed;
    for (const name of tasksLeftUnmade(deps.layout, queue, true))
      apply(TASK_RULES, { queue, name, resume: deps.resumeTask });
  }
  for (const queue of queues) report.running += await recoverRunning(deps, queue);
  return report;
}
