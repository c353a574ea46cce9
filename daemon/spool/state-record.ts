import { z } from 'zod';

import { JOB_STATES, OUTCOMES } from '../jobs/status.ts';

/**
 * The schema of a job's runtime record (`state.yaml`), checked every time the file is read: a
 * corrupt or hand-edited record is a JOB_INVALID error naming the file and the field, never a
 * record of the wrong shape handed on. Unknown fields are kept as they are (a newer daemon's, or
 * a note), so a read and a write lose nothing. What each state must carry:
 *
 * - every state: id, queue, type, attempts, retries, results, history; nothing more can be
 *   required of one state. A `running` record without its attempt (`running`) is what a crash
 *   between a claim's rename and its write leaves, and the stale-claim recovery
 *   (spool/recovery.ts) requeues it: refusing it here would strand the job. A finished record
 *   without `last` is what a move with no update writes (spool/transition.ts allows it).
 * - `state` is one of the five (jobs/status.ts); the variants are kept apart so that a field
 *   belonging to one state can be required of it once every writer sets it.
 * - only a `running` record may hold an attempt under way (`running`): every move out of
 *   `running/` has cleared it, in every version, in the same write that changed `state`. A
 *   queued or finished record that holds one was edited by hand (its state changed, its attempt
 *   left), and reading it as it is would give a job that is two things at once.
 *
 * Fields the dispatcher indexes (priority, order, after, submitted_at) may be left out on disk, as
 * records written by hand and by older versions do, but must have their type when present. Left
 * out, they read as 0, 0, none, and the time the job's id was made (ids start with it).
 */

const text = z.string();
const count = z.int().min(0);

const owner = z.looseObject({ hostname: text, boot_id: text, pid: z.int() });

const batch = z.looseObject({
  controller: text,
  id: text.optional(),
  array: z.looseObject({ key: text, index: z.int() }).optional(),
  submitted_at: text.optional(),
  state: text.optional(),
  reason: text.optional(),
});

const attempt = z.looseObject({
  attempt: count,
  started_at: text,
  host: text,
  owner,
  pid: z.int().optional(),
  batch: batch.optional(),
});

const attemptResult = z.looseObject({
  attempt: count,
  outcome: z.enum(OUTCOMES),
  exit_code: z.int().nullable().optional(),
  signal: text.nullable().optional(),
  error: text.optional(),
  host: text.optional(),
  started_at: text.optional(),
  ended_at: text,
  // An attempt whose start was not known is written with a NaN duration, which JSON makes null.
  duration_ms: z
    .number()
    .nullable()
    .optional()
    .transform((ms) => ms ?? undefined),
  batch: batch.optional(),
  limit_hit: z.array(text).optional(),
});

const historyEntry = z.looseObject({
  at: text,
  from: z.enum(JOB_STATES).nullable(),
  to: z.enum(JOB_STATES),
  queue: text.optional(),
  reason: text,
});

const common = {
  id: text.min(1),
  queue: text.min(1),
  type: text,
  host: text.optional(),
  priority: z.number().default(0),
  order: z.number().default(0),
  not_before: text.optional(),
  after: z.array(text).default(() => []),
  task: text.optional(),
  timeout_ms: z.number().min(0).optional(),
  submitted_at: text.optional(),
  attempts: count,
  retries: count,
  interruptions: count.optional(),
  running: attempt.optional(),
  last: attemptResult.optional(),
  results: z.array(attemptResult),
  cancel_requested: text.optional(),
  paused_at: text.optional(),
  paused_seconds: z.number().min(0).optional(),
  history: z.array(historyEntry),
};

/** Outside `running`: no attempt under way. */
const noAttempt = z
  .custom<undefined>((value) => value === undefined, {
    error: 'only a running job has an attempt under way: remove `running`, or set `state: running`',
  })
  .optional();

const queuedRecord = z.looseObject({ ...common, running: noAttempt, state: z.literal('queued') });
const runningRecord = z.looseObject({ ...common, state: z.literal('running') });
const finishedRecord = z.looseObject({
  ...common,
  running: noAttempt,
  state: z.enum(['done', 'failed', 'cancelled']),
});

/** `20261121T093000.123Z-k3f9qa` -> `2026-11-21T09:30:00.123Z`; a name that is no id gives ''. */
function idTime(id: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\.\d{3})Z-/.exec(id);
  return m === null ? '' : `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[7]}Z`;
}

/** Built once at load: zod compiles each object's check the first time it runs. */
export const jobRecordSchema = z
  .discriminatedUnion('state', [queuedRecord, runningRecord, finishedRecord])
  .transform((r) => {
    r.submitted_at ??= idTime(r.id);
    return r as typeof r & { submitted_at: string };
  });

/** A job's record as read from disk, narrowed by its state (`if (r.state === 'done') r.last…`). */
export type JobRecord = z.output<typeof jobRecordSchema>;
export type QueuedRecord = z.output<typeof queuedRecord>;
export type RunningRecord = z.output<typeof runningRecord>;
export type FinishedRecord = z.output<typeof finishedRecord>;
