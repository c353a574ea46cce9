import { describe, expect, it } from 'vitest';

import { before, type Entry, ReadyList } from '../../daemon/dispatch/ready-list.ts';

let order = 0;
const entry = (id: string, priority = 0, type = 't'): Entry => ({
  id,
  queue: 'q',
  type,
  priority,
  order: ++order,
  pending: new Set(),
});

describe('ReadyList', () => {
  it('orders by priority, higher first, then by submission order', () => {
    const list = new ReadyList();
    for (const e of [entry('a'), entry('b', 5), entry('c'), entry('d', -1), entry('e', 5), entry('f', 10)])
      list.insert(e);
    expect([...list].map((e) => e.id)).toEqual(['f', 'b', 'e', 'a', 'c', 'd']);
    expect(list.size).toBe(6);
  });

  it('places an older job before newer ones of equal priority even when inserted last (a requeue)', () => {
    const list = new ReadyList();
    const old = entry('old');
    const [x, y] = [entry('x'), entry('y')];
    list.insert(x);
    list.insert(y);
    list.insert(old);
    expect([...list].map((e) => e.id)).toEqual(['old', 'x', 'y']);
  });

  it('stays sorted under many random inserts and removes', () => {
    const list = new ReadyList();
    const all: Entry[] = [];
    for (let i = 0; i < 500; i++) {
      const e = entry(`j${i}`, Math.floor(Math.random() * 5));
      e.order = Math.floor(Math.random() * 1e6);
      all.push(e);
      list.insert(e);
      if (i % 7 === 0) {
        const victim = all.splice(Math.floor(Math.random() * all.length), 1)[0];
        if (victim !== undefined) expect(list.remove(victim)).toBe(true);
      }
    }
    const items = [...list];
    expect(items.length).toBe(all.length);
    for (let i = 1; i < items.length; i++)
      expect(before(items[i] as Entry, items[i - 1] as Entry)).toBe(false);
  });

  it('finds the first entry that may start, skipping the others', () => {
    const list = new ReadyList();
    for (const e of [entry('gpu1', 9, 'gpu'), entry('gpu2', 8, 'gpu'), entry('cpu1', 1, 'cpu')])
      list.insert(e);
    expect(list.find((e) => e.type !== 'gpu')?.id).toBe('cpu1');
    expect(list.find(() => false)).toBeUndefined();
    expect(list.remove(entry('unknown'))).toBe(false);
  });

  it('finds a startable entry behind any number of refused ones, asking once per kind', () => {
    const list = new ReadyList();
    for (let i = 0; i < 5000; i++) list.insert(entry(`gpu${i}`, 1, 'gpu'));
    list.insert(entry('cpu', 0, 'cpu'));
    const asked: string[] = [];
    const found = list.find(
      (e) => {
        asked.push(e.id);
        return e.type !== 'gpu';
      },
      (e) => e.type,
    );
    expect(found?.id).toBe('cpu');
    expect(asked).toEqual(['gpu0', 'cpu']);
    // Without a kind, every entry is asked about.
    let calls = 0;
    expect(list.find((e) => (calls++, e.type === 'cpu'))?.id).toBe('cpu');
    expect(calls).toBe(5001);
  });
});
