import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Job files read in one go above which the garbage they left is worth a full collection. */
export const COMPACT_AFTER_RECORDS = 10_000;

/**
 * One full garbage collection, now (a pause of some 100 ms with 100,000 jobs kept). The start-up
 * scan, and the first background pass of the job list's sort values, parse a file per job and
 * keep a few values of each: with 100,000 queued they leave some 50 MiB of the heap committed but
 * free, which V8 would keep for as long as the daemon runs. Collected once, the pages go back to
 * the system within a second.
 */
export function compactHeap(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as unknown;
  if (typeof gc === 'function') (gc as () => void)();
}
