import path from 'node:path';

import type { BatchResources, BatchScript } from '../hosts/batch-system.ts';
import type { CommandPlan } from '../jobs/template.ts';
import { readJobState, STDERR_FILE, STDOUT_FILE, writeJobState } from '../spool/state-file.ts';
import type { BatchRecord } from '../hosts/batch-system.ts';
import { shellQuote } from '../hosts/shell-quote.ts';
import type { RunRequest } from '../jobs/executor.ts';

/** Written by the batch script when the job's command ends (the scheduler forgets finished jobs). */
export const BATCH_EXIT_FILE = 'batch.exit';

/**
 * The batch script's body for a planned command, run as local jobs run it: a plain command's
 * words single-quoted, shell code and scripts without a `#!` line under `/bin/sh`. Parameters were
 * substituted by `planCommand` (values referenced through the environment, never pasted in).
 */
export function bodyOf(plan: CommandPlan): string {
  switch (plan.kind) {
    case 'argv':
      return `#!/bin/sh\nexec ${plan.argv.map(shellQuote).join(' ')}\n`;
    case 'shell':
      return `#!/bin/sh\n${plan.script}\n`;
    case 'script':
      return plan.interpreter === undefined ? `#!/bin/sh\n${plan.script}` : plan.script;
  }
}

/** The body, and a plain command's words beside it. */
export function scriptBody(plan: CommandPlan): Pick<BatchScript, 'body' | 'command'> {
  return plan.kind === 'argv' ? { body: bodyOf(plan), command: plan.argv } : { body: bodyOf(plan) };
}

/** The job's script with its environment (as for local jobs) and its files in its own folder. */
export function scriptOf(request: RunRequest): BatchScript {
  return {
    ...scriptBody(request.plan),
    env: request.env,
    stdout: path.join(request.dir, STDOUT_FILE),
    stderr: path.join(request.dir, STDERR_FILE),
    exitFile: path.join(request.dir, BATCH_EXIT_FILE),
  };
}

/**
 * The job's `cluster:` settings as the batch system takes them. Without a time limit of its own,
 * the job's timeout plus its kill grace (rounded up by the scheduler), so the cluster's limit
 * backs batchd's. Logs are appended to, as every attempt of a local job appends to them.
 */
export function resourcesOf(request: RunRequest): BatchResources {
  const cluster = request.cluster ?? {};
  const limitMs =
    cluster.time_limit ??
    (request.timeoutMs === undefined ? undefined : request.timeoutMs + request.killGraceMs);
  return {
    ...(cluster.partition === undefined ? {} : { partition: cluster.partition }),
    ...(limitMs === undefined ? {} : { time_limit: Math.ceil(limitMs / 1000) }),
    ...(cluster.cpus === undefined ? {} : { cpus: cluster.cpus }),
    ...(cluster.memory_mb === undefined ? {} : { memory_mb: cluster.memory_mb }),
    ...(cluster.gpus === undefined ? {} : { gpus: cluster.gpus }),
    extra: ['--open-mode=append', ...(cluster.extra ?? [])],
  };
}

/** What `state.yaml` says of the attempt's batch job now (set by a submission or by recovery). */
export function readBatchRecord(dir: string): BatchRecord | undefined {
  return readJobState(dir, { locked: true }).running?.batch;
}

/**
 * Write the attempt's batch record into `state.yaml`: after a crash, recovery finds the job in the
 * batch system by it instead of submitting it again. `durable: false` for a record recovery can
 * do without (an id it finds again by the job's tag in the batch system, or by its exit file):
 * an fsync per job blocks the daemon for milliseconds, a thousand times per thousand jobs. The
 * dispatcher holds the job's lock.
 */
export function writeBatchRecord(dir: string, record: BatchRecord, durable = true): void {
  const state = readJobState(dir, { locked: true });
  if (state.running === undefined) return;
  state.running.batch = record;
  writeJobState(dir, state, durable);
}
