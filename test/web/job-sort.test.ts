import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { newJobId, shardOf } from '../../daemon/jobs/id.ts';
import type { JobStateName } from '../../daemon/jobs/status.ts';
import { SpoolLayout } from '../../daemon/spool/layout.ts';
import { listJobs } from '../../daemon/views/jobs.ts';

/**
 * The job list's server-side order (`sort=-submitted`): newest first over every folder a list reads
 * (queued, and the daily shards of finished jobs, in two queues), and the cursor walks it page by
 * page without skipping or repeating a job, as it does oldest first.
 */
describe('a job listing sorted newest first', () => {
  let root: string | undefined;
  afterEach(() => {
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  const walk = (layout: SpoolLayout, states: JobStateName[], limit: number, desc: boolean): string[] => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 1000; pages++) {
      const page = listJobs(layout, ['a', 'b'], states, limit, cursor, desc);
      seen.push(...page.jobs.map((j) => j.id));
      if (page.nextCursor === null) return seen;
      cursor = page.nextCursor;
    }
    throw new Error('the cursor never reached the end');
  };

  it('pages through queued and finished jobs of several days and queues, each once, newest first', () => {
    root = mkdtempSync(path.join(tmpdir(), 'batchd-sort-'));
    const layout = new SpoolLayout(root);
    const ids: string[] = [];
    const stateOf = new Map<string, JobStateName>();
    // Five days, a few jobs a day, spread over two queues and three states.
    const states: JobStateName[] = ['queued', 'done', 'failed'];
    for (let day = 0; day < 5; day++) {
      for (let i = 0; i < 7; i++) {
        const id = newJobId(`d${day}-${i}`, new Date(Date.UTC(2026, 0, 1 + day, 10, i)));
        const queue = i % 2 === 0 ? 'a' : 'b';
        const state = states[(day + i) % 3] as JobStateName;
        const dir =
          state === 'queued'
            ? layout.stateDir(queue, state)
            : path.join(layout.stateDir(queue, state), shardOf(id));
        mkdirSync(path.join(dir, id), { recursive: true });
        ids.push(id);
        stateOf.set(id, state);
      }
    }
    ids.sort();
    expect(walk(layout, states, 1000, false)).toEqual(ids);
    const newest = [...ids].reverse();
    for (const limit of [1, 4, 7, 1000])
      expect(walk(layout, states, limit, true), `limit ${limit}`).toEqual(newest);
    expect(walk(layout, ['done'], 3, true)).toEqual(newest.filter((id) => stateOf.get(id) === 'done'));
  });
});
