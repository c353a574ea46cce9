import { z } from 'zod';

import { WEEKDAYS } from '../config/names.ts';
import { nameSchema } from './common.ts';

const timeOfDay = z
  .string()
  .regex(/^([01]\d|2[0-4]):[0-5]\d(:[0-5]\d)?$/, 'Expected a time of day HH:MM or HH:MM:SS');

/** A schedule as the API shows it; `null` means "any" (as in batchd). */
export const scheduleInfoSchema = z.object({
  name: z.string(),
  weekdays: z.array(z.enum(WEEKDAYS)).nullable(),
  time: z.array(z.object({ begin: z.string(), end: z.string() })).nullable(),
  timezone: z.string().nullable(),
  builtin: z.boolean(),
});
export type ScheduleInfo = z.infer<typeof scheduleInfoSchema>;

/** `POST /schedule`: written to etc/schedules/<name>.yaml; checked again by the config schema. */
export const scheduleCreateSchema = z
  .object({
    name: nameSchema,
    weekdays: z.array(z.string()).nullable().optional(),
    time: z
      .array(z.object({ begin: timeOfDay, end: timeOfDay }).strict())
      .nullable()
      .optional(),
    timezone: z.string().optional(),
  })
  .strict();
export type ScheduleCreate = z.infer<typeof scheduleCreateSchema>;

export const paramInfoSchema = z.object({
  name: z.string(),
  type: z.string(),
  title: z.string(),
  default: z.union([z.string(), z.number(), z.boolean()]).nullable(),
  choices: z.array(z.string()).nullable(),
  min: z.number().nullable(),
  max: z.number().nullable(),
});
export type ParamInfo = z.infer<typeof paramInfoSchema>;

/** A job type in batchd's JSON shape (template as a list of lines). */
export const jobTypeInfoSchema = z.object({
  name: z.string(),
  title: z.string(),
  syntax: z.string(),
  template: z.array(z.string()),
  on_fail: z.union([
    z.literal('continue'),
    z.object({ retry: z.object({ when: z.enum(['now', 'later']), count: z.int() }) }),
  ]),
  host_name: z.string().nullable(),
  max_jobs: z.int().nullable(),
  timeout_ms: z.number().nullable(),
  params: z.array(paramInfoSchema),
});
export type JobTypeInfo = z.infer<typeof jobTypeInfoSchema>;

/** A host; `state` is its last reported state (host:state events), null if none yet. */
export const hostInfoSchema = z.object({
  name: z.string(),
  /** stopped, starting, ready, busy, stopping or failed; null until this daemon has used the host. */
  state: z.string().nullable(),
  /** Why it is in that state (a failure's message, "idle for 300 s"…). */
  reason: z.string().optional(),
  /** The controller (etc/controllers/) that starts and stops it; `local`: always on. */
  controller: z.string().optional(),
  /** Jobs this daemon runs on it now. */
  jobs: z.number().int().optional(),
  /** When it entered its state (ISO 8601). */
  since: z.string().optional(),
  /** Its last failures seen by this daemon (at most 5), oldest first; controllers' and providers' too. */
  errors: z.array(z.object({ at: z.string(), reason: z.string() })).optional(),
});
export type HostInfo = z.infer<typeof hostInfoSchema>;

/** `__default__` stands for the queue's (or job type's) default host, as in batchd. */
export const DEFAULT_HOST = '__default__';
