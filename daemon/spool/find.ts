import { existsSync } from 'node:fs';

import { JOB_STATES, type JobStateName } from '../jobs/status.ts';
import type { SpoolLayout } from './layout.ts';

export interface JobLocation {
  queue: string;
  state: JobStateName;
  dir: string;
}

/** Find a job's folder by id, in any queue and state. */
export function locateJob(
  layout: SpoolLayout,
  queues: readonly string[],
  id: string,
): JobLocation | undefined {
  for (const state of JOB_STATES) {
    for (const queue of queues) {
      const dir = layout.jobDir(queue, state, id);
      if (existsSync(dir)) return { queue, state, dir };
    }
  }
  return undefined;
}
