import { readdirSync } from 'node:fs';

import { BatchdError, coerceError, errnoCode } from '../errors.ts';
import { isJobId } from '../jobs/id.ts';
import type { Logger } from '../log.ts';
import type { SpoolLayout } from './layout.ts';
import type { JobLocks } from './lock.ts';
import { findJobProcesses } from './orphans.ts';
import { ownerMayBeAlive } from './owner.ts';
import { type JobState, readJobState, STATE_FILE } from './state-file.ts';

export interface StaleClaimScan {
  layout: SpoolLayout;
  locks: JobLocks;
  log: Logger;
  isRunningHere: (id: string) => boolean;
}

/** A job in `running/` that no live dispatcher runs, held under its lock. */
export interface StaleClaim {
  id: string;
  queue: string;
  dir: string;
  /** Its record, read under the lock: the same claim that was judged dead. */
  state: JobState;
  release: () => Promise<void>;
  /** The processes still running for it (found once per scan, on first use). */
  processes: () => number[];
}

/**
 * The jobs in `running/` whose claim went stale (their dispatcher died): each is handed to `repair`
 * under its lock, with its record as it is under the lock. `repair` returns true when it handed the
 * lock on (released later by whoever took the job), else the lock is released after it. Returns
 * how many were repaired; what each gets is recovery's (spool/recovery.ts).
 */
export async function forEachStaleClaim(
  scan: StaleClaimScan,
  queue: string,
  repair: (claim: StaleClaim) => boolean,
): Promise<number> {
  let ids: string[];
  try {
    ids = readdirSync(scan.layout.stateDir(queue, 'running')).filter(
      (id) => isJobId(id) && !scan.isRunningHere(id),
    );
  } catch {
    return 0;
  }
  if (ids.length === 0) return 0;
  let repaired = 0;
  let processes: Map<string, number[]> | undefined;
  for (const id of ids) {
    const dir = scan.layout.jobDir(queue, 'running', id);
    const seen = tryReadState(dir, scan.log);
    if (seen === undefined) continue; // moved meanwhile, or a record that does not read (logged)
    if (!ownerMayBeAlive(seen.running?.owner)) {
      // Look again right before breaking the lock: since `seen` was read (other jobs' locks were
      // awaited in between), a live dispatcher may have requeued and claimed the job afresh.
      const now = tryReadState(dir);
      if (now === undefined || !sameClaim(now, seen)) continue;
      scan.locks.breakDead(id, seen.running?.owner);
    }
    const release = await scan.locks.acquire(id);
    if (release === undefined) continue; // a live dispatcher runs it
    let handedOn = false;
    try {
      if (scan.isRunningHere(id)) continue;
      // Under the lock, the record is the truth; a claim other than the one judged dead is left alone.
      const state = tryReadState(dir);
      if (state === undefined || !sameClaim(state, seen)) continue;
      handedOn = repair({
        id,
        queue,
        dir,
        state,
        release,
        processes: () => (processes ??= findJobProcesses(new Set(ids))).get(id) ?? [],
      });
      repaired += 1;
    } catch (error) {
      scan.log.error({ jobId: id, err: coerceError(error) }, 'could not recover job');
    } finally {
      if (!handedOn) await release().catch(() => undefined);
    }
  }
  return repaired;
}

/** The records in `running/` that did not read, by folder, with the message logged for each. */
const unreadable = new Map<string, string>();

/**
 * The job's record; undefined if it moved meanwhile or does not read. A record that does not read
 * (corrupt, or edited by hand: spool/state-record.ts) leaves the job where it is, not recovered and
 * not rewritten, until the file is put right; with `log`, the problem is logged once, not at every
 * rescan.
 */
function tryReadState(dir: string, log?: Logger): JobState | undefined {
  try {
    const state = readJobState(dir);
    unreadable.delete(dir);
    return state;
  } catch (error) {
    const problem = coerceError(error);
    if (log === undefined || errnoCode(error) === 'ENOENT' || unreadable.get(dir) === problem.message)
      return undefined;
    unreadable.set(dir, problem.message);
    log.error(
      {
        file: `${dir}/${STATE_FILE}`,
        field: error instanceof BatchdError ? error.problems[0]?.field : undefined,
        err: problem,
      },
      'unreadable state.yaml in running/; job not recovered until the file is fixed',
    );
    return undefined;
  }
}

/** The same attempt by the same owner: nobody requeued and claimed the job in between. */
function sameClaim(a: JobState, b: JobState): boolean {
  return (
    a.attempts === b.attempts &&
    a.state === b.state &&
    a.running?.owner.pid === b.running?.owner.pid &&
    a.running?.owner.hostname === b.running?.owner.hostname &&
    a.running?.started_at === b.running?.started_at
  );
}
