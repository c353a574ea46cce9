import { readdirSync } from 'node:fs';
import path from 'node:path';

import { errnoCode } from '../errors.ts';
import { isFinished, JOB_STATES } from '../jobs/status.ts';
import type { Counts } from '../protocol/common.ts';
import type { SpoolLayout } from '../spool/layout.ts';

/** Counting finished jobs reads every daily shard: a count is reused for this long. */
const FRESH_MS = 1000;

/** Job counts per queue and state, from the state folders (the folder is the truth). */
export class JobCounts {
  readonly #layout: SpoolLayout;
  readonly #cache = new Map<string, { at: number; counts: Counts }>();

  constructor(layout: SpoolLayout) {
    this.#layout = layout;
  }

  of(queue: string): Counts {
    const cached = this.#cache.get(queue);
    if (cached !== undefined && Date.now() - cached.at < FRESH_MS) return cached.counts;
    const counts: Counts = { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0 };
    for (const state of JOB_STATES) {
      const dir = this.#layout.stateDir(queue, state);
      if (!isFinished(state)) {
        counts[state] = countJobs(dir);
        continue;
      }
      for (const shard of names(dir))
        if (/^\d{8}$/.test(shard)) counts[state] += countJobs(path.join(dir, shard));
    }
    this.#cache.set(queue, { at: Date.now(), counts });
    return counts;
  }

  /** Forget cached counts (after a change made through the API, so its answer is current). */
  invalidate(queue?: string): void {
    if (queue === undefined) this.#cache.clear();
    else this.#cache.delete(queue);
  }
}

function countJobs(dir: string): number {
  let n = 0;
  for (const name of names(dir)) if (!name.startsWith('.')) n += 1;
  return n;
}

function names(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
}
