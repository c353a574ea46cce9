import { z } from 'zod';

import { durationMs } from './duration.ts';

/**
 * The settings and records of the batch-system seam (hosts/batch-system.ts) that configuration,
 * job files and `state.yaml` hold: here, below all three.
 */

/** A value that ends up in one argument or one line: a newline or NUL there is always a mistake. */
const oneLine = z.string().regex(/^[^\n\r\0]*$/, 'Expected one line (no newline or NUL)');

/**
 * What a job asks of the cluster: the `cluster:` block of a job type, a queue or a job file (the
 * job's fields win over the queue's, which win over the type's; `extra` adds up).
 */
export const clusterSchema = z
  .object({
    partition: oneLine.min(1).optional(),
    /** Seconds or a duration (`2h`); Slurm counts in minutes and rounds up. */
    time_limit: durationMs.optional(),
    cpus: z.int().min(1).optional(),
    memory_mb: z.int().min(1).optional(),
    /** A count, or the scheduler's `type:count`. */
    gpus: z.union([z.int().min(1), oneLine.min(1)]).optional(),
    /** More submission options, one argument each (`--qos=high`, `--constraint=avx2`). */
    extra: z.array(oneLine.min(1)).optional(),
  })
  .strict();
export type ClusterSettings = z.output<typeof clusterSchema>;

/** Where a job that went to a batch system is, in `state.yaml` (`running.batch`, `results[].batch`). */
export interface BatchRecord {
  /** The controller's name. */
  controller: string;
  /** The batch system's id (`12`, or an array element's `5_3`); absent while being submitted. */
  id?: string | undefined;
  /** An array submission's key and this job's element (recovery finds it by them). */
  array?: { key: string; index: number } | undefined;
  submitted_at?: string | undefined;
  /** How the batch system saw its end (Slurm: COMPLETED, FAILED, TIMEOUT…) and why. */
  state?: string | undefined;
  reason?: string | undefined;
}
