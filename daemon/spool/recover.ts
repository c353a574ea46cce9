import { readdirSync } from 'node:fs';

import type { ConfigStore } from '../config/store.ts';
import { countInterruption, nextStep } from '../dispatch/outcome.ts';
import { coerceError } from '../errors.ts';
import { isJobId } from '../jobs/id.ts';
import { isFinished } from '../jobs/status.ts';
import type { Logger } from '../log.ts';
import type { SpoolLayout } from './layout.ts';
import type { JobLocks } from './lock.ts';
import { findJobProcesses, killAll } from './orphans.ts';
import { ownerMayBeAlive } from './owner.ts';
import { type JobState, readJobState } from './state-file.ts';
import type { Transitions } from './transition.ts';

export interface RecoveryDeps {
  layout: SpoolLayout;
  locks: JobLocks;
  transitions: Transitions;
  config: ConfigStore;
  log: Logger;
  isRunningHere: (id: string) => boolean;
  requeued: (state: JobState) => void;
  /**
   * A running job whose work goes on without its dispatcher (a cluster job): true when this
   * dispatcher took it over, its lock handed on with it. Called under the lock, before any kill.
   */
  adopt?: (dir: string, state: JobState, release: () => Promise<void>) => boolean;
}

/**
 * Jobs in `running/` whose claim went stale were interrupted: their dispatcher died. Each goes back
 * to `queued/` with the interruption counted apart from its retries (on_fail is about the job's own
 * failures), or to `failed/` past dispatcher.max_interruptions (outcome.ts); a job whose
 * end was written but not yet moved is moved; leftover processes of the job are killed first.
 */
export async function recoverRunning(deps: RecoveryDeps, queue: string): Promise<number> {
  let ids: string[];
  try {
    ids = readdirSync(deps.layout.stateDir(queue, 'running')).filter(
      (id) => isJobId(id) && !deps.isRunningHere(id),
    );
  } catch {
    return 0;
  }
  if (ids.length === 0) return 0;
  let recovered = 0;
  let processes: Map<string, number[]> | undefined;
  for (const id of ids) {
    const dir = deps.layout.jobDir(queue, 'running', id);
    const seen = tryReadState(dir);
    if (seen === undefined) continue; // moved meanwhile, or not yet written by its claimer
    if (!ownerMayBeAlive(seen.running?.owner)) {
      // Look again right before breaking the lock: since `seen` was read (other jobs' locks were
      // awaited in between), a live dispatcher may have requeued and claimed the job afresh.
      const now = tryReadState(dir);
      if (now === undefined || !sameClaim(now, seen)) continue;
      deps.locks.breakDead(id, seen.running?.owner);
    }
    const release = await deps.locks.acquire(id);
    if (release === undefined) continue; // a live dispatcher runs it
    let adopted = false;
    try {
      if (deps.isRunningHere(id)) continue;
      // Under the lock, the record is the truth; a claim other than the one judged dead is left alone.
      const state = tryReadState(dir);
      if (state === undefined || !sameClaim(state, seen)) continue;
      if (deps.adopt?.(dir, state, release) === true) {
        adopted = true;
        recovered += 1;
        continue;
      }
      processes ??= findJobProcesses(new Set(ids));
      killAll(processes.get(id) ?? []);
      const job = { id, queue };
      if (state.state !== 'running' && (isFinished(state.state) || state.state === 'queued')) {
        // The end was recorded, the move was not: finish it.
        const next = deps.transitions.move(job, 'running', state.state, {
          known: state,
          reason: 'move completed after a restart',
        });
        if (next.state === 'queued') deps.requeued(next);
        recovered += 1;
        continue;
      }
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
      const next = deps.transitions.move(job, 'running', step.to, {
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
          if (!state.cancel_requested) countInterruption(s, interruptions);
        },
      });
      deps.log.warn(
        { jobId: id, queue, to: step.to, attempts: next.attempts, interruptions: next.interruptions },
        'recovered an interrupted job',
      );
      if (next.state === 'queued') deps.requeued(next);
      recovered += 1;
    } catch (error) {
      deps.log.error({ jobId: id, err: coerceError(error) }, 'could not recover job');
    } finally {
      if (!adopted) await release().catch(() => undefined);
    }
  }
  return recovered;
}

function tryReadState(dir: string): JobState | undefined {
  try {
    return readJobState(dir);
  } catch {
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
