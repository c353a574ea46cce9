import { DEFAULTS } from '../config/defaults.ts';
import type { OnFail } from '../config/schema.ts';
import type { JobStateName, Outcome } from './status.ts';

export interface NextStep {
  to: Extract<JobStateName, 'done' | 'failed' | 'cancelled' | 'queued'>;
  /** A retry `later` goes to the back of its queue. */
  toBack: boolean;
  reason: string;
  /** A re-run after the job's own failure (on_fail): it counts in the job's `retries`. */
  retry?: true;
}

/**
 * Where a job goes after an attempt, by its outcome and the job type's on_fail. `retries` counts
 * the re-runs after a failure made since the job was last queued by hand (0 for a first attempt).
 *
 * An interruption (the daemon crashed or stopped past its grace time, the host was lost) is not
 * the job's own failure: on_fail does not apply, the job runs again. `interruptions.count` (this
 * one included) is kept apart from the retries, and past `interruptions.max` the job fails, so a
 * job that crashes the daemon cannot loop for ever.
 */
export function nextStep(
  outcome: Outcome,
  error: string | undefined,
  onFail: OnFail,
  retries: number,
  interruptions: { count: number; max: number } = { count: 1, max: DEFAULTS.dispatcher.max_interruptions },
): NextStep {
  if (outcome === 'success') return { to: 'done', toBack: false, reason: 'finished' };
  if (outcome === 'cancelled') return { to: 'cancelled', toBack: false, reason: 'cancelled while running' };
  if (outcome === 'interrupted') {
    const { count, max } = interruptions;
    const why = error ?? 'daemon stopped';
    return count <= max
      ? { to: 'queued', toBack: false, reason: `interrupted (${count} of at most ${max}): ${why}` }
      : {
          to: 'failed',
          toBack: false,
          reason: `interrupted ${count} times, more than max_interruptions (${max}): ${why}`,
        };
  }
  const why = error ?? outcome;
  if (onFail !== 'continue' && retries < onFail.retry.count) {
    return {
      to: 'queued',
      toBack: onFail.retry.when === 'later',
      reason: `${why}; retry ${retries + 1} of ${onFail.retry.count} (${onFail.retry.when})`,
      retry: true,
    };
  }
  return { to: 'failed', toBack: false, reason: why };
}
