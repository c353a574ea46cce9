import { describeWait } from '../jobs/wait.ts';
import type { JobInfo } from '../protocol/index.ts';
import { shortTime } from './output.ts';

/**
 * A queued job's wait reason as the daemon's dispatcher works it out (GET /job/:id `waiting`,
 * daemon/dispatch/wait-reason.ts), as one line: its time in the local time of the terminal.
 */
export function describeWaiting(job: JobInfo): string {
  const wait = job.waiting;
  if (wait === undefined) return 'unknown (this daemon does not say: it is older than this batch)';
  if (wait === null) return 'unknown yet: the dispatcher has not indexed the job (it looks again shortly)';
  return describeWait(wait, shortTime);
}
