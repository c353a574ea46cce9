import type { JobStateName } from '../jobs/status.ts';
import type { HookEventName } from '../config/hook-events.ts';

/**
 * Which hook event a job's move is: one per move, none for a move between queues (queued ->
 * queued). Acceptance is `job:queued` too (the bus says `job:accepted`), as is a retry or a
 * recovered claim (back to queued).
 */
export function jobEventOf(from: JobStateName, to: JobStateName): HookEventName | undefined {
  switch (to) {
    case 'queued':
      return from === 'queued' ? undefined : 'job:queued';
    case 'running':
      return 'job:started';
    case 'done':
      return 'job:finished';
    case 'failed':
      return 'job:failed';
    case 'cancelled':
      return 'job:cancelled';
  }
}

/** The end events: they carry the attempt's outcome and exit code (read from the job's record). */
export const JOB_END_EVENTS: ReadonlySet<HookEventName> = new Set([
  'job:finished',
  'job:failed',
  'job:cancelled',
]);

/**
 * Which hook event a host state is. `busy` is still ready (jobs come and go on a ready host);
 * `unknown` and `stopping` are no news. The older names `up` and `down` are read as ready and
 * failed (down meant unreachable).
 */
export function hostEventOf(state: string): HookEventName | undefined {
  switch (state) {
    case 'starting':
      return 'host:starting';
    case 'ready':
    case 'busy':
    case 'up':
      return 'host:ready';
    case 'stopped':
      return 'host:stopped';
    case 'failed':
    case 'down':
      return 'host:failed';
    default:
      return undefined;
  }
}
