/**
 * The job state table. A job's state is the folder it is in; this table lists the only moves
 * between states the transition module (spool/transition.ts) will make (FOLDER_MOVES below adds
 * the way in and the way out).
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

/**
 * A job folder outside the five states: `staging` while it is being accepted (not visible yet), or
 * `trash` while it is being deleted (gone from its queue).
 */
export type JobPlace = JobStateName | 'staging' | 'trash';

/**
 * Every rename of a job folder, spool/transition.ts's table: the state table, plus the commit of an
 * acceptance (staging -> queued, or running for a job claimed at its acceptance) and the deletion of
 * a finished job (-> trash). A move not listed here is refused and nothing moves.
 */
export const FOLDER_MOVES = {
  staging: ['queued', 'running'],
  ...TRANSITIONS,
  done: ['trash'],
  failed: [...TRANSITIONS.failed, 'trash'],
  cancelled: [...TRANSITIONS.cancelled, 'trash'],
  trash: [],
} as const satisfies Record<JobPlace, readonly JobPlace[]>;

export function isLegalMove(from: JobPlace, to: JobPlace): boolean {
  return (FOLDER_MOVES[from] as readonly JobPlace[]).includes(to);
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
