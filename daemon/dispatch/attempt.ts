import path from 'node:path';

import { mergeLimits } from '../config/limits.ts';
import type { JobType } from '../config/schema.ts';
import type { ConfigStore } from '../config/store.ts';
import { coerceError } from '../errors.ts';
import type { Executor, RunOutcome } from '../jobs/executor.ts';
import { mergeCluster } from '../hosts/batch-system.ts';
import { assertInputFiles, runsHere } from '../jobs/input-files.ts';
import { planCommand } from '../jobs/template.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import type { QueueRegistry } from '../spool/queues.ts';
import { type JobState, readJobSpec, RESULT_FILE } from '../spool/state-file.ts';
import type { Running } from './run-slots.ts';

export interface AttemptDeps {
  config: ConfigStore;
  queues: QueueRegistry;
  layout: SpoolLayout;
  /** The executor for a job's host (undefined host: this machine). */
  executorFor: (host: string | undefined) => Executor;
}

/**
 * One attempt of a claimed job in `running/`: its command, environment and limits handed to its
 * host's executor. Never throws: whatever stops the attempt is its outcome.
 */
export async function runAttempt(
  d: AttemptDeps,
  run: Running,
  state: JobState,
  type: JobType | undefined,
  host: string | undefined,
): Promise<RunOutcome> {
  const now = new Date().toISOString();
  if (run.controller.signal.aborted) {
    const outcome = run.controller.signal.reason === 'shutdown' ? 'interrupted' : 'cancelled';
    return { outcome, error: outcome, startedAt: now, endedAt: now };
  }
  if (type === undefined) {
    return {
      outcome: 'error',
      error: `job type "${state.type}" no longer exists`,
      startedAt: now,
      endedAt: now,
    };
  }
  const dir = d.layout.jobDir(state.queue, 'running', state.id);
  try {
    const spec = run.spec ?? readJobSpec(dir);
    const daemon = d.config.daemon;
    const plan = planCommand(type, spec.params, daemon.variables);
    const env: Record<string, string> = {
      ...type.environment,
      ...plan.env,
      BATCHD_JOB_ID: state.id,
      BATCHD_QUEUE: state.queue,
      BATCHD_TASK: state.task ?? '',
      BATCHD_ATTEMPT: String(state.attempts),
      BATCHD_JOB_DIR: dir,
      BATCHD_RESULT: path.join(dir, RESULT_FILE),
    };
    const cwd = type.workdir === undefined ? dir : d.config.resolve(type.workdir);
    // A job that waited (for jobs or a time) was accepted before its input had to exist.
    if (runsHere(host)) assertInputFiles(type, spec.params, cwd);
    const executor = d.executorFor(host);
    return await executor.run(
      {
        jobId: state.id,
        queue: state.queue,
        attempt: state.attempts,
        dir,
        plan,
        env,
        cwd,
        timeoutMs: state.timeout_ms ?? type.timeout,
        killGraceMs: daemon.dispatcher.kill_grace,
        limits: mergeLimits(type.limits, d.queues.settings(state.queue).limits, spec.limits),
        cluster: mergeCluster(type.cluster, d.queues.settings(state.queue).cluster, spec.cluster),
        job: { type, params: spec.params, variables: daemon.variables },
      },
      run.controller.signal,
    );
  } catch (error) {
    return {
      outcome: 'error',
      error: coerceError(error).message,
      startedAt: now,
      endedAt: new Date().toISOString(),
    };
  }
}
