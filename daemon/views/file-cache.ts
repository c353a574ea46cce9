import { type BigIntStats, statSync } from 'node:fs';

/**
 * A file or folder changed this recently may change again within the file system's timestamp
 * granularity (the kernel's coarse clock, NFS) keeping the same stamps; what the read side keeps
 * between reads must have been quiet this long (git's "racy" rule).
 */
export const QUIET_NS = 2_000_000_000n;

interface Entry<T> {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  value: T;
}

function same(entry: Entry<unknown>, stats: BigIntStats): boolean {
  return (
    entry.ino === stats.ino &&
    entry.size === stats.size &&
    entry.mtimeNs === stats.mtimeNs &&
    entry.ctimeNs === stats.ctimeNs
  );
}

/**
 * Parsed job files for the read side (the API's job views), reused while a file is unchanged: one
 * `stat` instead of open, read, close and a parse. Job files are replaced by rename, never written
 * in place, so a change always shows as a new inode and new times. Values are shared between
 * callers and must not be modified.
 */
export class ParsedFileCache<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #limit: number;
  readonly #read: (file: string) => T;

  readonly #quietNs: bigint;

  /** `quietNs`: how long ago a file must have last changed (its ctime) to be kept. */
  constructor(limit: number, read: (file: string) => T, quietNs = QUIET_NS) {
    this.#limit = limit;
    this.#read = read;
    this.#quietNs = quietNs;
  }

  /**
   * The file's parsed content; throws as reading it would (ENOENT when it is gone). `checked`: the
   * file's stats, taken by the caller a moment ago (then this makes no `stat` of its own).
   */
  get(file: string, checked?: BigIntStats): T {
    const stats = checked ?? statSync(file, { bigint: true });
    const known = this.#entries.get(file);
    if (known !== undefined && same(known, stats)) return known.value;
    // If the file is replaced between the stat and the read, the value is newer than the stats
    // it is kept under: the next stat differs and reads it again.
    const value = this.#read(file);
    this.#entries.delete(file);
    const now = BigInt(Date.now()) * 1_000_000n;
    // Any change to the file moves its ctime, a rename included.
    if (now - stats.ctimeNs > this.#quietNs) {
      this.#entries.set(file, {
        ino: stats.ino,
        size: stats.size,
        mtimeNs: stats.mtimeNs,
        ctimeNs: stats.ctimeNs,
        value,
      });
      if (this.#entries.size > this.#limit) this.#entries.delete(this.#entries.keys().next().value as string);
    }
    return value;
  }
}
