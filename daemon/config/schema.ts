import { z } from 'zod';

import { clusterSchema } from './cluster.ts';
import { DEFAULTS } from './defaults.ts';
import { HOOK_EVENTS } from './hook-events.ts';
import { durationMs } from './duration.ts';
import { limitsSchema } from './limits.ts';
import { managerSchema } from './manager.ts';
import { identifier, name, NAME_PATTERN, WEEKDAYS, type Weekday } from './names.ts';

export { identifier, name, NAME_PATTERN, WEEKDAYS, type Weekday };

export const PARAM_TYPES = [
  'String',
  'Integer',
  'Float',
  'Boolean',
  'Choice',
  'InputFile',
  'OutputFile',
  /** The value is shell code, inserted as code: only for types whose submitters may run anything. */
  'Script',
] as const;
export type ParamType = (typeof PARAM_TYPES)[number];

const scalar = z.union([z.string(), z.number(), z.boolean()]);

export const paramSpecSchema = z
  .object({
    name: identifier,
    type: z.enum(PARAM_TYPES).default(DEFAULTS.jobType.param_type),
    title: z.string().optional(),
    default: scalar.optional(),
    choices: z.array(scalar.transform(String)).min(1).optional(),
    min: z.number().optional(),
    max: z.number().optional(),
  })
  .strict()
  .superRefine((param, ctx) => {
    if (param.type === 'Choice' && param.choices === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['choices'],
        message: 'A Choice parameter needs a `choices` list',
      });
    }
  });
export type ParamSpec = z.infer<typeof paramSpecSchema>;

export const onFailSchema = z
  .union([
    z.literal('continue'),
    z.literal('retry').transform(() => ({ retry: { when: 'now' as const, count: 1 } })),
    z
      .object({
        retry: z
          .object({
            when: z.enum(['now', 'later']).default(DEFAULTS.jobType.retry.when),
            count: z.int().min(1).max(1000).default(DEFAULTS.jobType.retry.count),
          })
          .strict(),
      })
      .strict(),
  ])
  .default(DEFAULTS.jobType.on_fail);
export type OnFail = z.infer<typeof onFailSchema>;

export const jobTypeSchema = z
  .object({
    name,
    title: z.string().optional(),
    template: z.union([z.string().min(1), z.array(z.string()).min(1)]),
    syntax: z.literal('Shell').default(DEFAULTS.jobType.syntax),
    params: z.array(paramSpecSchema).default([]),
    on_fail: onFailSchema,
    host_name: name.optional(),
    max_jobs: z.int().min(1).optional(),
    timeout: durationMs.optional(),
    /** Resource limits of its jobs (a queue's and a job's own win). */
    limits: limitsSchema.optional(),
    environment: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String))
      .default({}),
    workdir: z.string().optional(),
    /** What a job of this type asks of a cluster scheduler (a host whose controller is Slurm). */
    cluster: clusterSchema.optional(),
  })
  .strict()
  .superRefine((type, ctx) => {
    const seen = new Set<string>();
    type.params.forEach((p, i) => {
      if (seen.has(p.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['params', i, 'name'],
          message: `Duplicate parameter "${p.name}"`,
        });
      }
      seen.add(p.name);
    });
  });
export type JobType = z.infer<typeof jobTypeSchema>;

const weekday = z.string().transform((value, ctx) => {
  const found = WEEKDAYS.find((d) => d.toLowerCase().startsWith(value.toLowerCase()) && value.length >= 2);
  if (found === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `Expected a weekday such as Monday or Mon, got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return found;
});

const timeOfDay = z
  .string()
  .regex(/^([01]\d|2[0-4]):[0-5]\d(:[0-5]\d)?$/, 'Expected a time of day HH:MM or HH:MM:SS')
  .transform((t) => {
    const [h = 0, m = 0, s = 0] = t.split(':').map(Number);
    return h * 3600 + m * 60 + s;
  })
  // The pattern lets 24:xx through for 24:00 (the end of the day); nothing later is a time of day.
  .refine((second) => second <= 86_400, 'Expected a time of day no later than 24:00');

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const scheduleSchema = z
  .object({
    name,
    weekdays: z.array(weekday).nullable().optional(),
    /** Windows [begin, end): one whose end is before its begin crosses midnight. */
    time: z
      .array(z.object({ begin: timeOfDay, end: timeOfDay }).strict())
      .nullable()
      .optional(),
    timezone: z
      .string()
      .refine(isTimeZone, 'Expected an IANA time zone such as Europe/Berlin or UTC')
      .optional(),
  })
  .strict();
export type Schedule = z.infer<typeof scheduleSchema>;

/**
 * A lifecycle hook (`hooks:` in batchd.yaml and queue.yaml). These fields are batchd's; the others
 * belong to the driver's plugin, which validates them once loaded (daemon/plugins/hook-config.ts).
 */
export const hookSchema = z.looseObject({
  driver: z.string().min(1, 'Expected a hook plugin: command, webhook, a path or a package name'),
  name: name.optional(),
  /** Default: every event. */
  events: z.array(z.enum(HOOK_EVENTS)).min(1).optional(),
  /** batchd.yaml only: job and task events of these queues (host events are not filtered). */
  queues: z.array(name).min(1).optional(),
  /** The most one delivery may take, retries included; then it is abandoned. */
  timeout: durationMs.prefault(DEFAULTS.hook.timeout),
});
export type HookConfig = z.infer<typeof hookSchema>;

export const queueSettingsSchema = z
  .object({
    title: z.string().optional(),
    enabled: z.boolean().default(DEFAULTS.queue.enabled),
    schedule_name: name.default(DEFAULTS.queue.schedule_name),
    host_name: name.nullable().optional(),
    type: name.optional(),
    /** Ordering between queues when both have work: higher first. */
    priority: z.int().default(DEFAULTS.queue.priority),
    /** At most this many of the queue's jobs run at once. */
    parallel: z.int().min(1).optional(),
    /** A disabled queue enables itself once it holds this many queued jobs. */
    autostart_job_count: z.int().min(1).nullable().optional(),
    /** Resource limits of the queue's jobs: over their type's, under a job's own. */
    limits: limitsSchema.optional(),
    /** Hooks told of this queue's job and task events. */
    hooks: z.array(hookSchema).optional(),
    /** What the queue's jobs ask of a cluster scheduler; over the job type's. */
    cluster: clusterSchema.optional(),
  })
  .strict();
export type QueueSettings = z.infer<typeof queueSettingsSchema>;

export const logLevel = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

export const daemonConfigSchema = z
  .object({
    /** Where the spool is; relative paths are relative to the config folder. */
    spool: z.string().default(DEFAULTS.daemon.spool),
    /** When the spool does not exist yet, it is created as a copy of this folder. */
    spool_seed: z.string().optional(),
    default_queue: name.default(DEFAULTS.daemon.default_queue),
    manager: managerSchema.prefault({}),
    dispatcher: z
      .object({
        /** Jobs run at once by this daemon, over all queues. */
        workers: z.int().min(1).max(10_000).default(DEFAULTS.dispatcher.workers),
        /** How often the spool is rescanned for anything the watcher missed. */
        // prefault, not default: zod 4 returns a default as the output (ms) without the transform,
        // so `.default(5)` meant 5 ms (a rescan every 5 ms); prefault parses 5 as 5 seconds.
        poll_timeout: durationMs.prefault(DEFAULTS.dispatcher.poll_timeout),
        /** An in-place write is taken once unchanged for this long. */
        stable_time: durationMs.prefault(DEFAULTS.dispatcher.stable_time),
        /** First signal: how long running jobs may finish before they are stopped and requeued. */
        grace_time: durationMs.prefault(DEFAULTS.dispatcher.grace_time),
        /** Between SIGTERM and SIGKILL when a job is cancelled or times out. */
        kill_grace: durationMs.prefault(DEFAULTS.dispatcher.kill_grace),
        /** Claim locks count as stale (their owner dead) after this long without a refresh. */
        lock_stale: durationMs.prefault(DEFAULTS.dispatcher.lock_stale),
        /** How often hosts that batchd started and nobody needs any more are looked for and stopped. */
        reap_interval: durationMs.prefault(DEFAULTS.dispatcher.reap_interval),
        /** Interruptions (crash, stop past grace_time, host lost) a job may have before it fails. */
        max_interruptions: z.int().min(0).default(DEFAULTS.dispatcher.max_interruptions),
        /**
         * How local jobs are contained: `auto` a cgroup per job where the machine allows it, else
         * the process group; `cgroup` insists (the daemon does not start without); `group` never.
         */
        containment: z.enum(['auto', 'cgroup', 'group']).default(DEFAULTS.dispatcher.containment),
      })
      .strict()
      .prefault({}),
    logging: z
      .object({
        target: z.string().default(DEFAULTS.logging.target),
        level: logLevel.default(DEFAULTS.logging.level),
        format: z.enum(['auto', 'pretty', 'json']).default(DEFAULTS.logging.format),
        /** batchd's per-module levels: accepted and ignored (a note is logged). */
        filter: z.record(z.string(), z.string()).optional(),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        /** Finished jobs older than this many days are deleted; 0 keeps them for ever. */
        done_jobs: z.number().min(0).default(DEFAULTS.storage.done_jobs),
        /** Largest job file accepted from a drop, in bytes. */
        max_job_file_size: z.int().min(64).default(DEFAULTS.storage.max_job_file_size),
        /** fsync job files and folders on acceptance and transitions (survives power loss). */
        fsync: z.boolean().default(DEFAULTS.storage.fsync),
        /**
         * With fsync: API submissions are acknowledged once in the acceptance journal, and their
         * folders put on disk together at its checkpoints (read at start; spool/journal.ts).
         */
        journal: z.boolean().default(DEFAULTS.storage.journal),
        /** How long journaled acceptances wait for the next checkpoint, at most. */
        journal_checkpoint: durationMs.prefault(DEFAULTS.storage.journal_checkpoint),
        /** The most jobs one task file may expand into. */
        max_task_jobs: z.int().min(1).default(DEFAULTS.storage.max_task_jobs),
        /** batchd's retention of its metric records, in days: /batchd/monitor keeps its samples in the spool that long. */
        metric_records: z.number().min(0).optional(),
        /**
         * Mode of the folders the daemon and its jobs create (job folders, outputs), octal: files
         * get it without the execute bits (0750 → 0640). Applied as the process umask at start.
         */
        mode: z
          .union([z.int(), z.string()])
          .transform(String)
          .pipe(z.string().regex(/^0?[0-7]{3}$/, 'Expected an octal mode such as 0750 or 0770'))
          .transform((text) => parseInt(text, 8))
          .default(DEFAULTS.storage.mode),
      })
      .strict()
      .prefault({}),
    variables: z
      .record(identifier, z.union([z.string(), z.number(), z.boolean()]).transform(String))
      .default({}),
    /** Lifecycle hooks (daemon/plugins/hooks.ts). */
    hooks: z.array(hookSchema).optional(),
  })
  .loose();
export type DaemonConfig = z.infer<typeof daemonConfigSchema>;
