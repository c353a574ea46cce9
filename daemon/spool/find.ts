import { type BigIntStats, existsSync, statSync } from 'node:fs';

import { JOB_STATES, type JobStateName } from '../jobs/status.ts';
import type { SpoolLayout } from './layout.ts';
import { STATE_FILE } from './state-file.ts';

export interface JobLocation {
  queue: string;
  state: JobStateName;
  dir: string;
  /**
   * When a remembered place was checked: the stats of its `state.yaml` at that moment, which the
   * read side uses as its own check (views/file-cache.ts) instead of a second `stat`.
   */
  checked?: BigIntStats;
}

/** Where jobs were last found, per spool; a remembered place is checked before it is used. */
const lastSeen = new WeakMap<SpoolLayout, Map<string, JobLocation>>();
const REMEMBERED = 10_000;

/**
 * Find a job's folder by id, in any queue and state: where it was last found if its `state.yaml`
 * is still there (one `stat`, the usual case for a job read again and again), else by looking in
 * every state folder of every queue.
 */
export function locateJob(
  layout: SpoolLayout,
  queues: readonly string[],
  id: string,
): JobLocation | undefined {
  let seen = lastSeen.get(layout);
  if (seen === undefined) lastSeen.set(layout, (seen = new Map<string, JobLocation>()));
  const known = seen.get(id);
  if (known !== undefined && queues.includes(known.queue)) {
    const checked = statOrUndefined(`${known.dir}/${STATE_FILE}`);
    if (checked !== undefined) return { ...known, checked };
  }
  seen.delete(id);
  for (const state of JOB_STATES) {
    for (const queue of queues) {
      const dir = layout.jobDir(queue, state, id);
      if (!existsSync(dir)) continue;
      seen.set(id, { queue, state, dir });
      if (seen.size > REMEMBERED) seen.delete(seen.keys().next().value as string);
      return { queue, state, dir };
    }
  }
  return undefined;
}

function statOrUndefined(file: string): BigIntStats | undefined {
  try {
    return statSync(file, { bigint: true });
  } catch {
    return undefined;
  }
}
