import { z } from 'zod';

import { jobStatusSchema } from './common.ts';

/**
 * `GET /events` (Server-Sent Events): each message's `event:` is the type below and its `data:` the
 * JSON payload. A client sees the events of the queues it may view.
 */
export const EVENT_TYPES = [
  'job:accepted',
  'job:transition',
  'job:paused',
  'job:resumed',
  'job:rejected',
  'job:purged',
  'queue:changed',
  'host:state',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const jobAcceptedEventSchema = z.object({
  jobId: z.string(),
  queue: z.string(),
  task: z.string().optional(),
});
export const jobTransitionEventSchema = z.object({
  jobId: z.string(),
  queue: z.string(),
  from: jobStatusSchema,
  to: jobStatusSchema,
  toQueue: z.string().optional(),
  reason: z.string(),
});
/** A running job frozen or thawed: it stays running, its process makes no progress while paused. */
export const jobPauseEventSchema = z.object({ jobId: z.string(), queue: z.string(), reason: z.string() });
export const jobRejectedEventSchema = z.object({ queue: z.string(), file: z.string(), message: z.string() });
/** A finished job deleted (a purge, or DELETE /job/:id): its folder is gone. */
export const jobPurgedEventSchema = z.object({
  jobId: z.string(),
  queue: z.string(),
  from: jobStatusSchema,
  reason: z.string(),
});
export const queueChangedEventSchema = z.object({ queue: z.string() });
export const hostStateEventSchema = z.object({
  host: z.string(),
  state: z.string(),
  reason: z.string().optional(),
});

export const eventPayloadSchemas = {
  'job:accepted': jobAcceptedEventSchema,
  'job:transition': jobTransitionEventSchema,
  'job:paused': jobPauseEventSchema,
  'job:resumed': jobPauseEventSchema,
  'job:rejected': jobRejectedEventSchema,
  'job:purged': jobPurgedEventSchema,
  'queue:changed': queueChangedEventSchema,
  'host:state': hostStateEventSchema,
} as const satisfies Record<EventType, z.ZodType>;
