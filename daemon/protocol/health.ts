import { z } from 'zod';

/** `GET /health`: whether the daemon is up or stopping, and how many dispatchers share its spool. */
export const healthSchema = z.object({
  status: z.enum(['running', 'stopping']),
  /** A graceful stop has begun: reads are answered, writes get 503 STOPPING with Retry-After. */
  stopping: z.boolean(),
  /** Dispatchers using this spool now (this one included), on this machine or others. */
  dispatchers: z.int().min(1),
  /** Jobs this dispatcher runs now. */
  running: z.int().min(0),
  /** How local jobs are contained: their own cgroups, or their process group only (older daemons: none). */
  containment: z
    .object({ kind: z.enum(['cgroup-v2', 'cgroup-v1', 'group']), description: z.string() })
    .optional(),
});
export type Health = z.infer<typeof healthSchema>;
