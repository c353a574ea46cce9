import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

import { FINISHED_STATES } from '../jobs/status.ts';
import type { SpoolLayout } from './layout.ts';

/**
 * Delete finished jobs older than `days` (by submission date, whole daily shards at a time).
 * Returns the number of shards removed.
 */
export function sweepFinished(layout: SpoolLayout, queue: string, days: number, now = Date.now()): number {
  if (days <= 0) return 0;
  const cutoff = new Date(now - days * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '');
  let removed = 0;
  for (const state of FINISHED_STATES) {
    const dir = layout.stateDir(queue, state);
    let shards: string[];
    try {
      shards = readdirSync(dir);
    } catch {
      continue;
    }
    for (const shard of shards) {
      if (/^\d{8}$/.test(shard) && shard < cutoff) {
        rmSync(path.join(dir, shard), { recursive: true, force: true });
        removed += 1;
      }
    }
  }
  return removed;
}
