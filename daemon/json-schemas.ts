import { z } from 'zod';

import { daemonConfigSchema, jobTypeSchema, queueSettingsSchema, scheduleSchema } from './config/schema.ts';
import { hostSchema } from './hosts/schema.ts';
import { jobFileSchema } from './jobs/spec.ts';

/**
 * JSON Schemas of every file users write, made from the same zod schemas that validate them, so an
 * editor (e.g. with the YAML language server) checks a job file as it is typed.
 */
export function jsonSchemas(): Record<string, object> {
  const make = (schema: z.ZodType, id: string, title: string): object => ({
    $id: `https://batchd.invalid/schemas/${id}`,
    title,
    ...z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }),
  });
  return {
    'job.schema.json': make(
      jobFileSchema,
      'job.schema.json',
      'batchd job file (a drop in <queue>/incoming/)',
    ),
    'jobtype.schema.json': make(
      jobTypeSchema,
      'jobtype.schema.json',
      'batchd job type (etc/jobtypes/<name>.yaml)',
    ),
    'schedule.schema.json': make(
      scheduleSchema,
      'schedule.schema.json',
      'batchd schedule (etc/schedules/<name>.yaml)',
    ),
    'queue.schema.json': make(
      queueSettingsSchema,
      'queue.schema.json',
      'batchd queue settings (<spool>/<queue>/queue.yaml)',
    ),
    'host.schema.json': make(hostSchema, 'host.schema.json', 'batchd remote host (etc/hosts/<name>.yaml)'),
    'batchd.schema.json': make(
      daemonConfigSchema,
      'batchd.schema.json',
      'batchd daemon configuration (batchd.yaml)',
    ),
  };
}
