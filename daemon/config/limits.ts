import { z } from 'zod';

import { durationMs } from './duration.ts';

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** `512M`, `2G`, `64k`, `1048576` → bytes (binary units; a trailing `B`/`iB` is allowed). */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  if (match === null) return undefined;
  const bytes = Math.floor(Number(match[1]) * (SIZE_UNITS[(match[2] ?? '').toLowerCase()] ?? 1));
  return bytes > 0 && Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** A size field: bytes as a number, or text such as `512M`. Parsed to bytes. */
export const sizeBytes = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const bytes = parseSize(value);
  if (bytes === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `Expected a size such as 65536, "64k", "512M" or "2G", got ${JSON.stringify(value)}`,
    });
    return z.NEVER;
  }
  return bytes;
});

/**
 * Resource limits of one job (`limits:` of a job type, a queue or a job; wall time is `timeout`).
 * Enforced by the job's cgroup where there is one, by setrlimit otherwise (docs/containment.md).
 */
export const limitsSchema = z
  .object({
    /** Memory of all the job's processes together (cgroup); address space of each without one. */
    memory: sizeBytes.optional(),
    /** CPU time of each of the job's processes (RLIMIT_CPU): SIGXCPU, then SIGKILL. */
    cpu_time: durationMs.optional(),
    /** Open files of each process (RLIMIT_NOFILE). */
    open_files: z.int().min(1).max(1_048_576).optional(),
    /** Processes and threads of the job at once (cgroup pids.max; RLIMIT_NPROC without one). */
    processes: z.int().min(1).max(4_194_304).optional(),
  })
  .strict();
export type ResourceLimits = z.infer<typeof limitsSchema>;

/** The limits that apply to a job: the job's own win over its queue's, which win over its type's. */
export function mergeLimits(...layers: (ResourceLimits | undefined)[]): ResourceLimits | undefined {
  const merged: ResourceLimits = {};
  for (const layer of layers) {
    if (layer === undefined) continue;
    for (const [key, value] of Object.entries(layer) as [keyof ResourceLimits, number | undefined][])
      if (value !== undefined) merged[key] = value;
  }
  return Object.keys(merged).length === 0 ? undefined : merged;
}

/** `67108864` → `64M`: a limit as the user would write it, for messages. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [
    ['T', 1024 ** 4],
    ['G', 1024 ** 3],
    ['M', 1024 ** 2],
    ['k', 1024],
  ] as const)
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  return `${bytes} bytes`;
}
