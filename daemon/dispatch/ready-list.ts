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
  /** Dependencies not yet done; none: undefined (most jobs: no empty Set each). */
  pending?: Set<string> | undefined;
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

  /**
   * The first entry that passes `ok`. Entries with the same `sameAs` key as one refused are skipped
   * without asking again, so a long run of jobs held back by a limit costs one cheap scan and never
   * hides the jobs queued behind it.
   */
  find(
    ok: (entry: Entry) => boolean,
    sameAs: (entry: Entry) => string = (entry) => entry.id,
  ): Entry | undefined {
    const refused = new Set<string>();
    for (const entry of this.#items) {
      const key = sameAs(entry);
      if (refused.has(key)) continue;
      if (ok(entry)) return entry;
      refused.add(key);
    }
    return undefined;
  }

  *[Symbol.iterator](): IterableIterator<Entry> {
    yield* this.#items;
  }
}
