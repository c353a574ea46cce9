import { z } from 'zod';

import { jobIdSchema, jobStatusSchema } from './common.ts';

/** restbatch's task status: counts by state; resolved = nothing queued or running. */
export const taskStatusSchema = z.object({
  name: z.string(),
  queue: z.string(),
  total: z.int(),
  queued: z.int(),
  running: z.int(),
  done: z.int(),
  failed: z.int(),
  cancelled: z.int(),
  /** Jobs of the task that are in no state folder any more (removed by retention or by hand). */
  missing: z.int(),
  resolved: z.boolean(),
});
export type TaskStatus = z.infer<typeof taskStatusSchema>;

/** One job's result, in the task's order. `result` is the job's parsed result.json, if any. */
export const taskResultSchema = z.object({
  index: z.int(),
  id: jobIdSchema,
  status: jobStatusSchema.or(z.literal('missing')),
  exit_code: z.int().nullable(),
  error: z.string().nullable(),
  result: z.unknown().nullable(),
});
export type TaskResult = z.infer<typeof taskResultSchema>;

export const taskResultsSchema = z.array(taskResultSchema);

export const taskResumeSchema = z.object({
  /** The failed or cancelled jobs that were queued again. */
  resumed: z.array(jobIdSchema),
});
export type TaskResume = z.infer<typeof taskResumeSchema>;

export const taskSummarySchema = z.object({
  name: z.string(),
  count: z.int(),
  submitted_at: z.string().nullable(),
});
export type TaskSummary = z.infer<typeof taskSummarySchema>;
