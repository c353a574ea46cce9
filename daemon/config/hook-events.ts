/** The lifecycle events a hook can subscribe to. */
export const HOOK_EVENTS = [
  'job:queued',
  'job:started',
  'job:finished',
  'job:failed',
  'job:cancelled',
  'task:finished',
  'host:starting',
  'host:ready',
  'host:stopped',
  'host:failed',
] as const;
export type HookEventName = (typeof HOOK_EVENTS)[number];

/** One event as a hook receives it (and a webhook posts it, as JSON). */
export interface HookEvent {
  event: HookEventName;
  /** Unique per event: a receiver can drop a retried delivery it has seen. */
  id: string;
  /** ISO 8601. */
  time: string;
  queue?: string | undefined;
  jobId?: string | undefined;
  task?: string | undefined;
  host?: string | undefined;
  /** Why: the transition's or the host state's reason. */
  reason?: string | undefined;
  /** job:finished/failed/cancelled: the outcome and exit code of the last attempt. */
  outcome?: string | undefined;
  exitCode?: number | null | undefined;
  /** task:finished: how many of its jobs ended in each state. */
  counts?: Record<string, number> | undefined;
}
