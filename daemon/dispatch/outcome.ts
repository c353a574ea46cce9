import type { OnFail } from '../config/schema.ts';
import type { RunOutcome } from '../executors/types.ts';
import type { JobStateName } from '../jobs/status.ts';

export interface NextStep {
  to: Extract<JobStateName, 'done' | 'failed' | 'cancelled' | 'queued'>;
  /** A retry `later` goes to the back of its queue. */
  toBack: boolean;
  reason: string;
}

/**
 * Where a job goes after an attempt, by its outcome and the job type's on_fail. `retries` counts
 * the attempts made since the job was last queued by hand.
 */
export function nextStep(
  outcome: RunOutcome['outcome'],
  error: string | undefined,
  onFail: OnFail,
  retries: number,
  /** An orderly shutdown requeues what it stopped; a crash found later is a failure for on_fail. */
  requeueInterrupted = true,
): NextStep {
  if (outcome === 'success') return { to: 'done', toBack: false, reason: 'finished' };
  if (outcome === 'cancelled') return { to: 'cancelled', toBack: false, reason: 'cancelled while running' };
  if (outcome === 'interrupted' && requeueInterrupted) {
    return { to: 'queued', toBack: false, reason: `interrupted: ${error ?? 'daemon stopped'}` };
  }
  const why = error ?? outcome;
  if (onFail !== 'continue' && retries <= onFail.retry.count) {
    return {
      to: 'queued',
      toBack: onFail.retry.when === 'later',
      reason: `${why}; retry ${retries} of ${onFail.retry.count} (${onFail.retry.when})`,
    };
  }
  return { to: 'failed', toBack: false, reason: why };
}
