import { mkdirSync, mkdtempSync, renameSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { newJobId } from '../../daemon/jobs/id.ts';
import { SpoolLayout } from '../../daemon/spool/layout.ts';
import { idsIn, listJobs } from '../../daemon/views/jobs.ts';

/**
 * Listings of a state folder are kept between reads while the folder's mtime is unchanged. The
 * cache must never hide a change: every add, removal or move in the folder shows on the next read,
 * also when the folder had been quiet (and was therefore cached) before.
 */
describe('a page of a queue listing', () => {
  let root: string | undefined;
  afterEach(() => {
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  const setUp = (n: number): { layout: SpoolLayout; queued: string; ids: string[] } => {
    root = mkdtempSync(path.join(tmpdir(), 'batchd-listing-'));
    const layout = new SpoolLayout(root);
    const queued = layout.stateDir('default', 'queued');
    mkdirSync(queued, { recursive: true });
    const base = Date.parse('2026-01-01T00:00:00Z');
    const ids = Array.from({ length: n }, (_, i) => newJobId(`j${i}`, new Date(base + i)));
    for (const id of ids) mkdirSync(path.join(queued, id));
    return { layout, queued, ids: [...ids].sort() };
  };

  /** Make the folder look quiet for a while, so its listing is kept. */
  const quiet = (dir: string): void => {
    const past = new Date(Date.now() - 10_000);
    utimesSync(dir, past, past);
  };

  it('pages through the folder in id order with a cursor, each id once', () => {
    const { layout, queued, ids } = setUp(250);
    quiet(queued);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = listJobs(layout, ['default'], ['queued'], 40, cursor);
      seen.push(...page.jobs.map((j) => j.id));
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(ids);
  });

  it('shows a job added to a quiet (cached) folder on the very next read', () => {
    const { layout, queued, ids } = setUp(30);
    quiet(queued);
    expect(idsIn(layout, 'default', 'queued', 1000)).toEqual(ids);
    expect(idsIn(layout, 'default', 'queued', 1000)).toEqual(ids);
    const added = newJobId('late', new Date(Date.parse('2027-01-01T00:00:00Z')));
    mkdirSync(path.join(queued, added));
    expect(idsIn(layout, 'default', 'queued', 1000)).toEqual([...ids, added]);
  });

  it('drops a job moved out of a quiet (cached) folder on the very next read', () => {
    const { layout, queued, ids } = setUp(30);
    quiet(queued);
    expect(idsIn(layout, 'default', 'queued', 1000)).toHaveLength(30);
    const running = layout.stateDir('default', 'running');
    mkdirSync(running, { recursive: true });
    renameSync(path.join(queued, ids[5] as string), path.join(running, ids[5] as string));
    expect(idsIn(layout, 'default', 'queued', 1000)).toEqual(ids.filter((_, i) => i !== 5));
    expect(idsIn(layout, 'default', 'running', 1000)).toEqual([ids[5]]);
  });

  it('does not keep a listing of a folder that changed just before it was read (same-tick changes)', () => {
    const { layout, queued, ids } = setUp(10);
    // A recent mtime, whole milliseconds so it can be put back exactly.
    const tick = new Date(Math.floor(Date.now() / 1000) * 1000);
    utimesSync(queued, tick, tick);
    expect(idsIn(layout, 'default', 'queued', 1000)).toEqual(ids);
    // A change within the same tick of a coarse clock leaves the mtime as it was.
    const added = newJobId('same-tick', new Date(Date.parse('2027-01-01T00:00:00Z')));
    mkdirSync(path.join(queued, added));
    utimesSync(queued, tick, tick);
    expect(idsIn(layout, 'default', 'queued', 1000)).toEqual([...ids, added]);
  });
});
