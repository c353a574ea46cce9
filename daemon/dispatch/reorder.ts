import { readdirSync } from 'node:fs';
import path from 'node:path';

import { BatchdError } from '../errors.ts';
import { isJobId } from '../jobs/id.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import { readJobState } from '../spool/state-file.ts';

/** batchd's relative priorities: to the front, one place up, one place down, to the back. */
export const PRIORITY_MOVES = ['first', 'more', 'less', 'last'] as const;
export type PriorityMove = (typeof PRIORITY_MOVES)[number];

/** Where a queued job stands: jobs start by higher priority, then lower order (ready-list.ts `before`). */
export interface Place {
  id: string;
  priority: number;
  order: number;
}

export type ReorderPlan =
  | { kind: 'none' }
  | { kind: 'priority'; priority: number }
  /** Exchange priority and order with the neighbour: the two trade places, no other job moves. */
  | { kind: 'swap'; with: string };

/** The queued jobs of a queue in the order the dispatcher starts them, read from their state.yaml. */
export function queuedInOrder(layout: SpoolLayout, queue: string): Place[] {
  const dir = layout.stateDir(queue, 'queued');
  let ids: string[];
  try {
    ids = readdirSync(dir);
  } catch {
    return [];
  }
  const places: Place[] = [];
  for (const id of ids) {
    if (!isJobId(id)) continue;
    try {
      const state = readJobState(path.join(dir, id));
      places.push({ id, priority: state.priority, order: state.order });
    } catch {
      // started or moved meanwhile: no longer queued here
    }
  }
  return places.sort((a, b) => (a.priority !== b.priority ? b.priority - a.priority : a.order - b.order));
}

/**
 * What `move` means for job `id` among `places` (in start order). `first`/`last` give it a
 * priority one above the front job's / one below the back job's. `more`/`less` swap it with the
 * job just ahead / just behind, as batchd swapped `seq` numbers: with (priority, order) pairs a
 * swap is exact (no gap in the order numbers is needed) and touches only the two jobs.
 */
export function planReorder(places: readonly Place[], id: string, move: PriorityMove): ReorderPlan {
  const i = places.findIndex((p) => p.id === id);
  if (i < 0) throw new BatchdError('JOB_GONE', `Job ${id} is no longer queued`, { jobId: id });
  const last = places.length - 1;
  switch (move) {
    case 'first':
      return i === 0 ? { kind: 'none' } : { kind: 'priority', priority: (places[0] as Place).priority + 1 };
    case 'last':
      return i === last
        ? { kind: 'none' }
        : { kind: 'priority', priority: (places[last] as Place).priority - 1 };
    case 'more':
      return i === 0 ? { kind: 'none' } : { kind: 'swap', with: (places[i - 1] as Place).id };
    case 'less':
      return i === last ? { kind: 'none' } : { kind: 'swap', with: (places[i + 1] as Place).id };
  }
}
