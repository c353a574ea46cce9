/**
 * The job state table. A job's state is the folder it is in; this table lists the only moves the
 * transition module (spool/transition.ts) will make.
 */
export const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type JobStateName = (typeof JOB_STATES)[number];

export const FINISHED_STATES = ['done', 'failed', 'cancelled'] as const satisfies readonly JobStateName[];
export type FinishedStateName = (typeof FINISHED_STATES)[number];

export const TRANSITIONS = {
  // queued -> queued is a move to another queue; queued -> failed is a dependency that failed.
  queued: ['running', 'cancelled', 'failed', 'queued'],
  // running -> queued is a retry, or a claim recovered after its owner died.
  running: ['done', 'failed', 'cancelled', 'queued'],
  done: [],
  failed: ['queued'],
  cancelled: ['queued'],
} as const satisfies Record<JobStateName, readonly JobStateName[]>;

export function isLegalTransition(from: JobStateName, to: JobStateName): boolean {
  return (TRANSITIONS[from] as readonly JobStateName[]).includes(to);
}

export function isFinished(state: JobStateName): state is FinishedStateName {
  return (FINISHED_STATES as readonly string[]).includes(state);
}

export function isJobStateName(value: string): value is JobStateName {
  return (JOB_STATES as readonly string[]).includes(value);
}

/** How an attempt ended; kept apart from the state, which only says where the job is. */
export const OUTCOMES = [
  'success',
  'exit-code',
  'signal',
  'timeout',
  'cancelled',
  'spawn-failed',
  'interrupted',
  'dependency-failed',
  'error',
] as const;
export type Outcome = (typeof OUTCOMES)[number];
