import { z } from 'zod';

import { NAME_PATTERN } from '../config/names.ts';
import { JOB_STATES } from '../jobs/status.ts';

/**
 * The wire format shared by the daemon's API and its clients (the `batch` CLI, the web page): one
 * set of zod schemas, so the two sides cannot drift. Requests are validated with these schemas and
 * the OpenAPI document is generated from them.
 */

/** A queue, schedule, job type, host, user or task name: it becomes a folder or file name. */
export const nameSchema = z
  .string()
  .regex(
    NAME_PATTERN,
    'Expected a name of letters, digits, "_", "." or "-" (max 64), starting with a letter or digit',
  );

export { jobIdSchema } from './job-id.ts';

export const jobStatusSchema = z.enum(JOB_STATES);
export type JobStatus = z.infer<typeof jobStatusSchema>;

/** Job counts by state. */
export const countsSchema = z.object({
  queued: z.int(),
  running: z.int(),
  done: z.int(),
  failed: z.int(),
  cancelled: z.int(),
});
export type Counts = z.infer<typeof countsSchema>;

/** The stable error codes a client can switch on (daemon/errors.ts ERROR_CODES). */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z
      .array(
        z.object({
          field: z.string().optional(),
          line: z.int().optional(),
          message: z.string(),
        }),
      )
      .optional(),
  }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

export const okSchema = z.object({ ok: z.literal(true) });
export type Ok = z.infer<typeof okSchema>;

/** `OPTIONS /`: the enabled authentication methods; `[]` when authentication is disabled. */
export const AUTH_METHODS = ['basic', 'token', 'proxy'] as const;
export const authMethodsSchema = z.array(z.enum(AUTH_METHODS));
export type AuthMethod = (typeof AUTH_METHODS)[number];

/** `?forced=true` style flags: batchd sends `true`; `1`/`yes` are taken too. */
export const flagSchema = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
  .transform((v) => v === 'true' || v === '1' || v === 'yes' || v === '')
  .optional();
