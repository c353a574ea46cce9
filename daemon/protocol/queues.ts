import { z } from 'zod';

import { countsSchema, jobStatusSchema, nameSchema } from './common.ts';

export const queueInfoSchema = z.object({
  name: z.string(),
  title: z.string(),
  enabled: z.boolean(),
  schedule_name: z.string(),
  host_name: z.string().nullable(),
  type: z.string().nullable(),
  priority: z.int(),
  parallel: z.int().nullable(),
  autostart_job_count: z.int().nullable(),
  counts: countsSchema,
  /** Whether the queue's schedule lets it start jobs now (enabled or not). */
  schedule_open: z.boolean(),
  /** When a closed schedule next opens (ISO 8601), null if open or not within a week. */
  opens_at: z.string().nullable(),
});
export type QueueInfo = z.infer<typeof queueInfoSchema>;

/** The fields of `queue.yaml` a client may set. `host_name: "*"` clears it, as in batchd. */
export const queueSettingsInputSchema = z
  .object({
    title: z.string().max(200).optional(),
    enabled: z.boolean().optional(),
    schedule_name: nameSchema.optional(),
    host_name: nameSchema.or(z.literal('*')).nullable().optional(),
    type: nameSchema.nullable().optional(),
    priority: z.int().min(-1_000_000).max(1_000_000).optional(),
    parallel: z.int().min(1).nullable().optional(),
    autostart_job_count: z.int().min(1).nullable().optional(),
  })
  .strict();
export type QueueSettingsInput = z.infer<typeof queueSettingsInputSchema>;

export const queueCreateSchema = queueSettingsInputSchema.extend({ name: nameSchema }).strict();
export type QueueCreate = z.infer<typeof queueCreateSchema>;

export const queueUpdateSchema = queueSettingsInputSchema;
export type QueueUpdate = z.infer<typeof queueUpdateSchema>;

/** `GET /stats`: counts per queue. */
export const statsSchema = z.record(z.string(), countsSchema);
export type Stats = z.infer<typeof statsSchema>;

/**
 * `DELETE /queue/:q?status=S` (batchd: delete the queue's jobs in state S). Finished jobs' folders
 * are deleted; queued jobs are cancelled (they stay, in cancelled/); running ones are refused.
 */
export const queuePurgeSchema = z.object({
  queue: z.string(),
  status: jobStatusSchema,
  /** Finished jobs whose folders were deleted. */
  deleted: z.int(),
  /** Queued jobs cancelled. */
  cancelled: z.int(),
  /** Jobs left alone: they changed state meanwhile, or a dispatcher held them. */
  skipped: z.array(z.object({ id: z.string(), reason: z.string() })),
});
export type QueuePurge = z.infer<typeof queuePurgeSchema>;

/** `?running=` of `POST /queue/:q/pause`: keep its running jobs running (default), or freeze them. */
export const queuePauseQuerySchema = z
  .object({
    running: z.enum(['keep', 'freeze']).optional().meta({
      description:
        'keep (default): running jobs go on; freeze: pause them too (they are thawed when the queue is enabled again)',
    }),
  })
  .strict();

/** `POST /queue/:q/pause` and `/resume`: the queue's new state and what became of its running jobs. */
export const queuePauseSchema = z.object({
  queue: z.string(),
  enabled: z.boolean(),
  jobs: z.array(
    z.object({
      id: z.string(),
      /** requested: another dispatcher on the spool runs it; a `<id>.freeze` request was left for it. */
      result: z.enum(['paused', 'resumed', 'refused', 'requested']),
      error: z.string().optional(),
    }),
  ),
});
export type QueuePause = z.infer<typeof queuePauseSchema>;
