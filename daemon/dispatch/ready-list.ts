/** What the dispatcher keeps in memory for a queued job: no parameters, no history. */
export interface Entry {
  id: string;
  queue: string;
  type: string;
  host?: string | undefined;
  task?: string | undefined;
  priority: number;
  order: number;
  notBefore?: number | undefined;
  /** Dependencies not yet done. */
  pending: Set<string>;
}

/** Higher priority first, then submission order. */
export function before(a: Entry, b: Entry): boolean {
  return a.priority !== b.priority ? a.priority > b.priority : a.order < b.order;
}

/**
 * A queue's runnable jobs, sorted. New jobs usually go to the end, so insertion is a binary
 * search and an append.
 */
export class ReadyList {
  readonly #items: Entry[] = [];

  get size(): number {
    return this.#items.length;
  }

  insert(entry: Entry): void {
    let lo = 0;
    let hi = this.#items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(this.#items[mid] as Entry, entry)) lo = mid + 1;
      else hi = mid;
    }
    this.#items.splice(lo, 0, entry);
  }

  remove(entry: Entry): boolean {
    const i = this.#items.indexOf(entry);
    if (i < 0) return false;
    this.#items.splice(i, 1);
    return true;
  }

  /** The first entry that passes `ok`, scanning at most `limit` entries. */
  find(ok: (entry: Entry) => boolean, limit = 1000): Entry | undefined {
    const n = Math.min(limit, this.#items.length);
    for (let i = 0; i < n; i++) {
      const entry = this.#items[i] as Entry;
      if (ok(entry)) return entry;
    }
    return undefined;
  }

  *[Symbol.iterator](): IterableIterator<Entry> {
    yield* this.#items;
  }
}
