import { z } from 'zod';

import { durationMs } from '../config/duration.ts';
import { limitsSchema, type ResourceLimits } from '../config/limits.ts';
import { identifier, name } from '../config/names.ts';
import { clusterSchema, type ClusterSettings } from '../config/cluster.ts';
import { isJobId } from './id.ts';

const scalar = z.union([z.string(), z.number(), z.boolean()]);

/** `{range: "1..100"}`, `{range: [1, 100, 5]}`: inclusive. */
const rangeSchema = z
  .object({
    range: z.union([
      z
        .string()
        .regex(/^-?\d+\s*\.\.\s*-?\d+(\s*\.\.\s*\d+)?$/, 'Expected a range such as "1..100" or "0..100..10"')
        // A step of 0 would never reach the end of the range.
        .refine((range) => Number(range.split('..')[2] ?? 1) >= 1, 'Expected a range step of at least 1'),
      z.tuple([z.int(), z.int()]).or(z.tuple([z.int(), z.int(), z.int().min(1)])),
    ]),
  })
  .strict();

export const paramInputSchema = z.union([
  scalar,
  z.array(scalar).min(1),
  rangeSchema,
  z.object({ each: z.array(scalar).min(1) }).strict(),
]);
export type ParamInput = z.infer<typeof paramInputSchema>;

const timestamp = z.union([z.string(), z.date()]).transform((value, ctx) => {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) {
    ctx.addIssue({
      code: 'custom',
      message: `Expected a date and time such as 2026-11-22T01:00:00+01:00, got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return date.toISOString();
});

const jobRef = z.string().refine(isJobId, 'Expected a job id such as 20261121T093000.123Z-k3f9qa');

/** What users drop into `incoming/` (or POST): checked against its job type afterwards. */
export const jobFileSchema = z
  .object({
    type: name.optional(),
    command: z.string().min(1).optional(),
    params: z.record(identifier, paramInputSchema).default({}),
    /**
     * Values for the type's parameters in their declared order, as `batch enqueue` takes them on its
     * command line (jobs/positional.ts); a parameter also given in `params` (or `command:`) takes that.
     */
    args: z.array(scalar.transform(String)).optional().meta({
      description:
        "Values for the job type's parameters in their declared order (a trailing Script parameter takes the rest, joined with spaces); a parameter also named in params takes that value",
    }),
    host: name.optional(),
    host_name: name.optional(),
    priority: z.int().min(-1_000_000).max(1_000_000).optional(),
    not_before: timestamp.optional(),
    start_time: timestamp.optional(),
    after: z
      .union([jobRef, z.array(jobRef)])
      .transform((v) => (Array.isArray(v) ? v : [v]))
      .optional(),
    notes: z.string().max(65_536).optional(),
    name: z.string().max(200).optional(),
    task: name.optional(),
    timeout: durationMs.optional(),
    limits: limitsSchema.optional(),
    /** What this job asks of a cluster scheduler; over its queue's and type's. */
    cluster: clusterSchema.optional(),
  })
  .strict()
  .superRefine((job, ctx) => {
    if (job.command !== undefined && job.type !== undefined && job.type !== 'command') {
      ctx.addIssue({
        code: 'custom',
        path: ['command'],
        message: '`command:` is the built-in command type; leave out `type:` or set it to "command"',
      });
    }
    if (job.command !== undefined && job.params.command !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['command'],
        message: 'Give the command once: `command:` or `params.command`',
      });
    }
  });
export type JobFile = z.output<typeof jobFileSchema>;

export type ParamValue = string | number | boolean;

/** The normalized spec, written once as `job.yaml`. */
export interface JobSpec {
  id: string;
  queue: string;
  type: string;
  params: Record<string, ParamValue>;
  host?: string | undefined;
  priority: number;
  not_before?: string | undefined;
  after: string[];
  notes?: string | undefined;
  name?: string | undefined;
  task?: { name: string; index: number; count: number } | undefined;
  timeout_ms?: number | undefined;
  limits?: ResourceLimits | undefined;
  cluster?: ClusterSettings | undefined;
  submitted_at: string;
  submitted_by?: string | undefined;
  source: { via: 'drop' | 'api'; file?: string | undefined };
}
