import { describe, expect, it } from 'vitest';

import { GroupCommit, type Settled } from '../../daemon/spool/group-commit.ts';

/** A flush the test finishes by hand, recording every batch it was given. */
function manualFlush<T>(): {
  batches: T[][];
  flush: (batch: T[]) => Promise<Settled<string>[]>;
  /** Finish the oldest unfinished flush (each item's value: `done:<item>`). */
  finish: () => void;
  fail: (error: Error) => void;
} {
  const batches: T[][] = [];
  const waiting: { batch: T[]; resolve: (v: Settled<string>[]) => void; reject: (e: Error) => void }[] = [];
  return {
    batches,
    flush: (batch) =>
      new Promise((resolve, reject) => {
        batches.push(batch);
        waiting.push({ batch, resolve, reject });
      }),
    finish: () => {
      const w = waiting.shift();
      if (w === undefined) throw new Error('no flush is running');
      w.resolve(w.batch.map((item) => ({ ok: true, value: `done:${String(item)}` })));
    },
    fail: (error) => {
      const w = waiting.shift();
      if (w === undefined) throw new Error('no flush is running');
      w.reject(error);
    },
  };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('GroupCommit', () => {
  it('flushes everything added in one turn of the event loop as one batch', async () => {
    const f = manualFlush<number>();
    const commits = new GroupCommit({ flush: f.flush });
    const results = [1, 2, 3, 4, 5].map((n) => commits.add(n));
    expect(f.batches).toEqual([]); // nothing flushes before the turn ends
    await turn();
    expect(f.batches).toEqual([[1, 2, 3, 4, 5]]);
    f.finish();
    expect(await Promise.all(results)).toEqual(['done:1', 'done:2', 'done:3', 'done:4', 'done:5']);
  });

  it('collects what arrives during a flush into the next batch, flushed only after the first ends', async () => {
    const f = manualFlush<string>();
    const commits = new GroupCommit({ flush: f.flush });
    const settled: string[] = [];
    const track = (p: Promise<string>): Promise<void> => p.then((v) => void settled.push(v));
    const first = track(commits.add('a'));
    await turn();
    expect(f.batches).toEqual([['a']]);
    const later = ['b', 'c', 'd'].map((x) => track(commits.add(x)));
    await turn();
    await turn();
    expect(f.batches).toEqual([['a']]); // one flush at a time
    expect(commits.pending).toBe(4);
    expect(settled).toEqual([]);
    f.finish();
    await first;
    expect(settled).toEqual(['done:a']); // b, c, d are not answered by a's flush
    await turn();
    expect(f.batches).toEqual([['a'], ['b', 'c', 'd']]);
    f.finish();
    await Promise.all(later);
    expect(settled).toEqual(['done:a', 'done:b', 'done:c', 'done:d']);
    expect(commits.pending).toBe(0);
  });

  it('waits windowMs for company when idle, then flushes what joined', async () => {
    const f = manualFlush<number>();
    const commits = new GroupCommit({ flush: f.flush, windowMs: 40 });
    const results = [commits.add(1)];
    await sleep(10);
    results.push(commits.add(2));
    expect(f.batches).toEqual([]);
    await sleep(60);
    expect(f.batches).toEqual([[1, 2]]);
    f.finish();
    expect(await Promise.all(results)).toEqual(['done:1', 'done:2']);
  });

  it('starts a batch at once when maxBatch items wait, and splits larger arrivals', async () => {
    const f = manualFlush<number>();
    const commits = new GroupCommit({ flush: f.flush, windowMs: 10_000, maxBatch: 4 });
    const results = Array.from({ length: 10 }, (_, i) => commits.add(i));
    // The fourth item filled a batch: no waiting for the (long) window.
    expect(f.batches).toEqual([[0, 1, 2, 3]]);
    f.finish();
    await turn();
    await turn();
    expect(f.batches[1]).toEqual([4, 5, 6, 7]);
    f.finish();
    await turn();
    await turn();
    expect(f.batches[2]).toEqual([8, 9]);
    f.finish();
    expect(await Promise.all(results)).toHaveLength(10);
  });

  it('rejects only the items whose outcome failed', async () => {
    const commits = new GroupCommit<number, number>({
      flush: (batch) =>
        Promise.resolve(
          batch.map((n): Settled<number> =>
            n % 2 === 0 ? { ok: true, value: n * 10 } : { ok: false, error: new Error(`odd ${n}`) },
          ),
        ),
    });
    const results = await Promise.allSettled([1, 2, 3, 4].map((n) => commits.add(n)));
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([
      'odd 1',
      20,
      'odd 3',
      40,
    ]);
  });

  it('fails every item of a batch whose flush throws, and goes on with the next batch', async () => {
    const f = manualFlush<number>();
    const commits = new GroupCommit({ flush: f.flush });
    const doomed = [commits.add(1), commits.add(2)];
    await turn();
    const next = commits.add(3);
    f.fail(new Error('EIO'));
    await expect(doomed[0]).rejects.toThrow('EIO');
    await expect(doomed[1]).rejects.toThrow('EIO');
    await turn();
    expect(f.batches).toEqual([[1, 2], [3]]);
    f.finish();
    await expect(next).resolves.toBe('done:3');
  });

  it('fails a batch whose flush answers for the wrong number of items', async () => {
    const commits = new GroupCommit<number, number>({
      flush: () => Promise.resolve([{ ok: true, value: 1 }]),
    });
    const results = await Promise.allSettled([commits.add(1), commits.add(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });

  it('idle() resolves once every item added so far is settled, without waiting for the window', async () => {
    const f = manualFlush<number>();
    const commits = new GroupCommit({ flush: f.flush, windowMs: 10_000 });
    const a = commits.add(1);
    let idle = false;
    const done = commits.idle().then(() => (idle = true));
    await turn();
    expect(f.batches).toEqual([[1]]); // idle() started the batch at once
    const b = commits.add(2); // arrives during the flush: idle() waits for it too
    f.finish();
    await a;
    await turn();
    expect(idle).toBe(false);
    f.finish();
    await b;
    await done;
    expect(idle).toBe(true);
    expect(commits.pending).toBe(0);
  });

  it('refuses options it cannot honour', () => {
    const flush = (): Promise<Settled<void>[]> => Promise.resolve([]);
    expect(() => new GroupCommit({ flush, windowMs: -1 })).toThrow(
      'Expected `windowMs` to be a number ≥ 0, got `-1`',
    );
    expect(() => new GroupCommit({ flush, maxBatch: 0 })).toThrow(
      'Expected `maxBatch` to be an integer ≥ 1, got `0`',
    );
  });
});
