import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { SpoolLayout } from '../../daemon/spool/layout.ts';
import { sweepFinished } from '../../daemon/spool/retention.ts';

const NOW = Date.parse('2026-12-06T12:00:00Z');

/** Finished jobs are deleted by whole daily shards once older than storage.done_jobs days. */
describe('retention of finished jobs', () => {
  let root: string | undefined;
  afterEach(() => {
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  const spoolWith = (shards: string[]): SpoolLayout => {
    root = mkdtempSync(path.join(tmpdir(), 'batchd-retention-'));
    const layout = new SpoolLayout(root);
    for (const state of ['done', 'failed', 'cancelled', 'queued']) {
      for (const shard of shards) {
        const job = path.join(layout.stateDir('q', state as 'done'), shard, `${shard}T000000.000Z-abcdef`);
        mkdirSync(job, { recursive: true });
        writeFileSync(path.join(job, 'state.yaml'), '{}\n');
      }
    }
    return layout;
  };
  const left = (layout: SpoolLayout, state: string): string[] =>
    readdirSync(layout.stateDir('q', state as 'done')).sort();

  it('deletes the shards older than the retention in every finished state, keeps the rest', () => {
    const layout = spoolWith(['20261001', '20261105', '20261106', '20261206', 'notes']);
    expect(sweepFinished(layout, 'q', 30, NOW)).toBe(6);
    for (const state of ['done', 'failed', 'cancelled'])
      expect(left(layout, state)).toEqual(['20261106', '20261206', 'notes']);
    // Only finished states are swept.
    expect(left(layout, 'queued')).toHaveLength(5);
  });

  it('keeps everything with a retention of 0 days', () => {
    const layout = spoolWith(['20200101', '20261206']);
    expect(sweepFinished(layout, 'q', 0, NOW)).toBe(0);
    expect(left(layout, 'done')).toEqual(['20200101', '20261206']);
  });

  it('removes a symlinked shard without following it', () => {
    const layout = spoolWith(['20261206']);
    const outside = path.join(root ?? '', 'outside');
    mkdirSync(outside);
    writeFileSync(path.join(outside, 'keep.txt'), 'mine\n');
    symlinkSync(outside, path.join(layout.stateDir('q', 'done'), '20200101'));
    expect(sweepFinished(layout, 'q', 30, NOW)).toBe(1);
    expect(readdirSync(outside)).toEqual(['keep.txt']);
    expect(left(layout, 'done')).toEqual(['20261206']);
  });
});
