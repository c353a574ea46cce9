import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { newJobId } from '../../daemon/jobs/id.ts';
import { locateJob } from '../../daemon/spool/find.ts';
import { SpoolLayout } from '../../daemon/spool/layout.ts';
import { ParsedFileCache } from '../../daemon/views/file-cache.ts';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'batchd-read-caches-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Replace a file as the spool does: a new file renamed over the old one. */
function replace(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/**
 * The read side keeps parsed job files and job locations between requests. Neither may ever
 * return something the spool no longer says.
 */
describe('parsed job files kept between reads', () => {
  const counting = (quietNs?: bigint): { cache: ParsedFileCache<string>; reads: () => number } => {
    let reads = 0;
    const cache = new ParsedFileCache(
      3,
      (file) => {
        reads++;
        return `parsed:${readFileSync(file, 'utf8')}`;
      },
      quietNs,
    );
    return { cache, reads: () => reads };
  };

  it('reads an unchanged quiet file once, and a replaced one again at once', () => {
    const file = path.join(root, 'state.yaml');
    replace(file, 'a');
    const { cache, reads } = counting(0n);
    expect(cache.get(file)).toBe('parsed:a');
    expect(cache.get(file)).toBe('parsed:a');
    expect(reads()).toBe(1);
    replace(file, 'b');
    expect(cache.get(file)).toBe('parsed:b');
    // Same size, replaced again right away: still seen.
    replace(file, 'c');
    expect(cache.get(file)).toBe('parsed:c');
    expect(reads()).toBe(3);
  });

  it('does not keep a file that changed within the quiet time', () => {
    const file = path.join(root, 'state.yaml');
    replace(file, 'a');
    const { cache, reads } = counting();
    cache.get(file);
    cache.get(file);
    expect(reads()).toBe(2);
  });

  it('throws ENOENT for a file that is gone, and keeps no more files than its limit', () => {
    const { cache, reads } = counting(0n);
    const files = ['a', 'b', 'c', 'd'].map((name) => path.join(root, name));
    for (const file of files) replace(file, path.basename(file));
    for (const file of files) cache.get(file);
    // The first was dropped to stay at 3.
    cache.get(files[0] ?? '');
    expect(reads()).toBe(5);
    rmSync(files[1] ?? '');
    expect(() => cache.get(files[1] ?? '')).toThrow(/ENOENT/);
  });

  it("takes the caller's stats of the file as its check when given them", () => {
    const file = path.join(root, 'state.yaml');
    replace(file, 'a');
    const { cache, reads } = counting(0n);
    const before = statSync(file, { bigint: true });
    expect(cache.get(file, before)).toBe('parsed:a');
    replace(file, 'b');
    // Stats taken before the change: the value they vouch for is the one kept for them.
    expect(cache.get(file, before)).toBe('parsed:a');
    expect(reads()).toBe(1);
    expect(cache.get(file, statSync(file, { bigint: true }))).toBe('parsed:b');
    expect(reads()).toBe(2);
  });
});

describe('a job found again where it was last seen', () => {
  it('follows the job to its new folder, and forgets it when it is gone or its queue is', () => {
    const layout = new SpoolLayout(root);
    const id = newJobId('moving');
    const queued = layout.jobDir('default', 'queued', id);
    const running = layout.jobDir('default', 'running', id);
    mkdirSync(queued, { recursive: true });
    mkdirSync(path.dirname(running), { recursive: true });
    expect(locateJob(layout, ['default'], id)).toEqual({ queue: 'default', state: 'queued', dir: queued });
    renameSync(queued, running);
    expect(locateJob(layout, ['default'], id)).toEqual({ queue: 'default', state: 'running', dir: running });
    expect(locateJob(layout, ['other'], id)).toBeUndefined();
    const elsewhere = layout.jobDir('other', 'queued', id);
    mkdirSync(path.dirname(elsewhere), { recursive: true });
    renameSync(running, elsewhere);
    expect(locateJob(layout, ['default', 'other'], id)).toEqual({
      queue: 'other',
      state: 'queued',
      dir: elsewhere,
    });
    rmSync(elsewhere, { recursive: true });
    expect(locateJob(layout, ['default', 'other'], id)).toBeUndefined();
  });

  it("checks a remembered place by its state.yaml, and hands on that file's stats", () => {
    const layout = new SpoolLayout(root);
    const id = newJobId('checked');
    const queued = layout.jobDir('default', 'queued', id);
    mkdirSync(queued, { recursive: true });
    replace(path.join(queued, 'state.yaml'), '{}');
    expect(locateJob(layout, ['default'], id)?.checked).toBeUndefined(); // found by looking
    replace(path.join(queued, 'state.yaml'), '{"a":1}');
    const again = locateJob(layout, ['default'], id);
    expect(again?.dir).toBe(queued);
    expect(again?.checked?.ino).toBe(statSync(path.join(queued, 'state.yaml'), { bigint: true }).ino);
    // A folder left without its state.yaml is not taken on trust: it is looked for again.
    rmSync(path.join(queued, 'state.yaml'));
    const bare = locateJob(layout, ['default'], id);
    expect(bare).toEqual({ queue: 'default', state: 'queued', dir: queued });
  });
});
