import { z } from 'zod';

import { OUTCOMES } from '../jobs/status.ts';
import { WAIT_REASONS } from '../jobs/wait.ts';
import { jobIdSchema, jobStatusSchema, nameSchema } from './common.ts';

export { jobFileSchema as jobSubmitSchema, type JobFile as JobSubmit } from '../jobs/spec.ts';

/** `?status=`: a state, `all`, or batchd's capitalized names (New = queued, Processing = running). */
export const STATUS_ALIASES = {
  new: 'queued',
  waiting: 'queued',
  postponed: 'queued',
  processing: 'running',
} as const;
export const statusFilterSchema = z
  .string()
  .transform((value, ctx) => {
    const lower = value.toLowerCase();
    const state = (STATUS_ALIASES as Record<string, string>)[lower] ?? lower;
    const parsed = jobStatusSchema.or(z.literal('all')).safeParse(state);
    if (!parsed.success) {
      ctx.addIssue({
        code: 'custom',
        message: `Expected a status: queued, running, done, failed, cancelled or all, got ${JSON.stringify(value)}`,
      });
      return z.NEVER;
    }
    return parsed.data;
  })
  .meta({
    description:
      "queued, running, done, failed, cancelled or all (batchd's New/Processing/Done/Failed also accepted)",
  });
export type StatusFilter = z.output<typeof statusFilterSchema>;

/** What a job list can be sorted by, over every job of the list (views/job-sort.ts). */
export const JOB_SORT_KEYS = [
  'submitted',
  'state',
  'queue',
  'type',
  'user',
  'priority',
  'started',
  'ended',
] as const;
export type JobSortKey = (typeof JOB_SORT_KEYS)[number];
export type JobSort = JobSortKey | `-${JobSortKey}`;

export const jobListQuerySchema = z.object({
  status: statusFilterSchema.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  /** The previous page's `next_cursor`: its last job's id, or (other sorts) its sort value and id. */
  cursor: z.string().min(1).max(1000).optional(),
  type: nameSchema.optional(),
  host: z.string().max(64).optional(),
  user: z.string().max(256).optional(),
  task: nameSchema.optional(),
  q: z.string().max(200).optional().meta({
    description:
      'Free text, matched (case-insensitively) in id, name, notes, type, user, host, task and params',
  }),
  sort: z
    .enum([...JOB_SORT_KEYS, ...JOB_SORT_KEYS.map((k) => `-${k}` as const)])
    .optional()
    .meta({
      description:
        'Order of the pages: submitted (oldest first, the default), state, queue, type, user, priority, started or ended; a leading - reverses it (-submitted: newest first). Jobs without the value (not started, not ended) come last either way; the cursor pages in any order',
    }),
});
export type JobListQuery = z.input<typeof jobListQuerySchema>;

export const attemptResultSchema = z.object({
  attempt: z.int(),
  outcome: z.enum(OUTCOMES),
  exit_code: z.int().nullable().optional(),
  signal: z.string().nullable().optional(),
  error: z.string().optional(),
  host: z.string().optional(),
  started_at: z.string().optional(),
  ended_at: z.string(),
  duration_ms: z.number().optional(),
  /** The resource limits the attempt ran into (memory, processes, cpu_time), even if it exited 0. */
  limit_hit: z.array(z.string()).optional(),
});
export type AttemptResult = z.infer<typeof attemptResultSchema>;

export const historyEntrySchema = z.object({
  at: z.string(),
  from: jobStatusSchema.nullable(),
  to: jobStatusSchema,
  queue: z.string().optional(),
  reason: z.string(),
});
export type HistoryEntry = z.infer<typeof historyEntrySchema>;

const paramValue = z.union([z.string(), z.number(), z.boolean()]);

/** Why a queued job has not started (jobs/wait.ts), with `until` for a reason that ends at a time. */
export const waitingSchema = z.object({
  reason: z.enum(WAIT_REASONS),
  message: z.string(),
  until: z.string().optional(),
  job: z.string().optional(),
});
export type Waiting = z.infer<typeof waitingSchema>;

/** One job as the API shows it: its spec (job.yaml) merged with its runtime record (state.yaml). */
export const jobInfoSchema = z.object({
  id: jobIdSchema,
  queue: z.string(),
  type: z.string(),
  status: jobStatusSchema,
  priority: z.int(),
  params: z.record(z.string(), paramValue),
  host: z.string().nullable(),
  notes: z.string().nullable(),
  name: z.string().nullable(),
  task: z.string().nullable(),
  task_index: z.int().nullable(),
  attempts: z.int(),
  submitted_at: z.string(),
  started_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  exit_code: z.int().nullable(),
  signal: z.string().nullable(),
  error: z.string().nullable(),
  /** Only when the last attempt ran into resource limits: which (memory, processes, cpu_time). */
  limit_hit: z.array(z.string()).optional(),
  user: z.string().nullable(),
  after: z.array(z.string()),
  not_before: z.string().nullable(),
  /** Only while a running job is paused: since when. */
  paused_at: z.string().optional(),
  /** Only once the job has been paused: the seconds it spent paused, over all its attempts. */
  paused_seconds: z.number().optional(),
  history: z.array(historyEntrySchema).optional(),
  /** GET /job/:id of a queued job: why it has not started (null: not known to this dispatcher yet). */
  waiting: waitingSchema.nullable().optional(),
});
export type JobInfo = z.infer<typeof jobInfoSchema>;

export const jobPageSchema = z.object({
  jobs: z.array(jobInfoSchema),
  /** Pass as `?cursor=` for the next page; null on the last page. */
  next_cursor: z.string().nullable(),
});
export type JobPage = z.infer<typeof jobPageSchema>;

export { submitResponseSchema, type SubmitResponse } from './submit.ts';

export const PRIORITY_MOVES = ['first', 'more', 'less', 'last'] as const;

/** A time as JSON carries it: ISO 8601 (with a zone, else local time of the daemon). */
export const timeInputSchema = z
  .string()
  .refine((v) => !Number.isNaN(Date.parse(v)), 'Expected a date and time such as 2026-11-22T01:00:00+01:00')
  .meta({ description: 'ISO 8601 date and time, e.g. 2026-11-22T01:00:00+01:00' });

/** The fields of a queued job that a partial update may change (batchd's `PUT /job/:id` field update). */
export const JOB_FIELDS = ['notes', 'not_before', 'start_time', 'host', 'host_name'] as const;

/**
 * `PUT /job/:id`: one of a priority change, a move, or a field update (any of notes, not_before
 * (batchd: start_time; null clears) and host (batchd: host_name; null or "*" clears)), as batchd does.
 */
export const jobUpdateSchema = z
  .object({
    priority: z.union([z.int().min(-1_000_000).max(1_000_000), z.enum(PRIORITY_MOVES)]).optional(),
    move: nameSchema.optional(),
    notes: z.string().max(65_536).nullable().optional(),
    not_before: timeInputSchema.nullable().optional(),
    start_time: timeInputSchema.nullable().optional(),
    host: nameSchema.or(z.literal('*')).nullable().optional(),
    host_name: nameSchema.or(z.literal('*')).nullable().optional(),
  })
  .strict()
  .refine(
    (u) =>
      [u.priority, u.move, JOB_FIELDS.some((f) => u[f] !== undefined) || undefined].filter(
        (v) => v !== undefined,
      ).length === 1,
    { message: 'Give exactly one of priority, move, or fields to change (notes, not_before, host)' },
  )
  .refine((u) => u.not_before === undefined || u.start_time === undefined, {
    message: 'Give not_before or start_time (its batchd name), not both',
    path: ['start_time'],
  })
  .refine((u) => u.host === undefined || u.host_name === undefined, {
    message: 'Give host or host_name (its batchd name), not both',
    path: ['host_name'],
  });
export type JobUpdate = z.infer<typeof jobUpdateSchema>;

/** What a cancel, retry, pause or resume did. `requested`: another dispatcher runs the job; a request file was left for it. */
export const controlResponseSchema = z.object({
  id: jobIdSchema,
  result: z.enum(['cancelled', 'stopping', 'requested', 'queued', 'paused', 'resumed']),
});
export type ControlResponse = z.infer<typeof controlResponseSchema>;

export const LOG_STREAMS = ['stdout', 'stderr'] as const;
export const logQuerySchema = z.object({
  stream: z.enum(LOG_STREAMS).optional(),
  follow: z.enum(['1', 'true', '0', 'false']).optional(),
});
