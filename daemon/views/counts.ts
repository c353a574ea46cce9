import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

import { errnoCode } from '../errors.ts';
import { isFinished, JOB_STATES } from '../jobs/status.ts';
import type { Counts } from '../protocol/common.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import { unmadeJobs } from '../spool/task-manifest.ts';
import { QUIET_NS } from './file-cache.ts';

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
        // A task's jobs whose folders are not made yet are queued too (spool/task-manifest.ts).
        counts[state] = countJobs(dir) + (state === 'queued' ? unmadeJobs(this.#layout, queue) : 0);
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

/**
 * A folder's count, kept while its mtime stays the same: counting a queue of 100,000 jobs then
 * costs a `stat` per folder, not a readdir of 100,000 names (the web page asks on every visit).
 * The racy-git rule of views/jobs.ts applies: a count is kept only if the folder had been quiet
 * for QUIET_NS before it was read.
 */
const counted = new Map<string, { mtimeNs: bigint; n: number }>();
const COUNTED_FOLDERS = 10_000;

function countJobs(dir: string): number {
  let mtimeNs: bigint;
  try {
    mtimeNs = statSync(dir, { bigint: true }).mtimeNs;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return 0;
    throw error;
  }
  const cached = counted.get(dir);
  if (cached?.mtimeNs === mtimeNs) return cached.n;
  const readAt = BigInt(Date.now()) * 1_000_000n;
  let n = 0;
  for (const name of names(dir)) if (!name.startsWith('.')) n += 1;
  counted.delete(dir);
  if (readAt - mtimeNs > QUIET_NS) {
    if (counted.size >= COUNTED_FOLDERS) counted.delete(counted.keys().next().value as string);
    counted.set(dir, { mtimeNs, n });
  }
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
