/**
 * Why a queued job has not started: the first thing in the dispatcher's way, checked in the order
 * the dispatcher meets them (dispatch/wait-reason.ts works it out; the API and the CLI show it).
 */
export const WAIT_REASONS = [
  /** Its queue is switched off. */
  'queue_disabled',
  /** Its start time (not_before) is ahead: `until`. */
  'not_before',
  /** A job it runs after is not done yet: `job`. */
  'dependency',
  /** Its queue's schedule is closed: `until` it opens (absent if it opens in no day of the next week). */
  'schedule_closed',
  /** Every worker of the dispatcher is busy (dispatcher.workers). */
  'workers',
  /** Its queue's `parallel` is reached. */
  'queue_limit',
  /** Its job type's `max_jobs` is reached. */
  'type_limit',
  /** Its host takes no more jobs now: its max_jobs is reached, or it is down or backing off. */
  'host_limit',
  /** Nothing holds it back but jobs ahead of it: it starts when its turn comes. */
  'turn',
] as const;
export type WaitReasonCode = (typeof WAIT_REASONS)[number];

export interface WaitReason {
  reason: WaitReasonCode;
  /** For people: what holds the job back (without the time, which `until` gives). */
  message: string;
  /** ISO 8601: when a time-bound reason ends. */
  until?: string | undefined;
  /** The dependency waited for. */
  job?: string | undefined;
}

/** A reason as one line, its time as `time` writes it (the log: ISO 8601; the CLI: local time). */
export function describeWait(wait: WaitReason, time: (iso: string) => string = (iso) => iso): string {
  if (wait.until === undefined) return wait.message;
  return wait.reason === 'not_before'
    ? `${wait.message}: not before ${time(wait.until)}`
    : `${wait.message} until ${time(wait.until)}`;
}
