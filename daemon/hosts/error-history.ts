import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { z } from 'zod';

import { coerceError, errnoCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import { writeFileAtomic } from '../spool/atomic.ts';

/** Where the spool keeps its hosts' last errors, under its hidden daemon folder. */
export const HOST_ERRORS_FILE = path.join('.batchd', 'host-errors.json');
/** Hosts kept in the file: one removed from the configuration long ago drops out. */
const HOSTS_KEPT = 500;

export interface HostError {
  at: string;
  reason: string;
}

const fileSchema = z.record(
  z.string().max(256),
  z.array(z.object({ at: z.string().max(64), reason: z.string().max(64 * 1024) })),
);

/**
 * The last few errors of each host, kept in one small JSON file so a restart does not forget why a
 * host failed. Written whole by write-then-rename after each failure (failures are rare: a host
 * backs off). Dispatchers sharing a spool share the file: each merges what is there with its own,
 * newest `kept` per host, so one does not erase another's. A missing or unreadable file is an
 * empty history, never a reason not to start; a failed write is logged and the daemon goes on.
 */
export class HostErrorHistory {
  readonly #file: string;
  readonly #kept: number;
  readonly #log: Logger;

  constructor(file: string, kept: number, log: Logger) {
    this.#file = file;
    this.#kept = kept;
    this.#log = log;
  }

  load(): Map<string, HostError[]> {
    let text: string;
    try {
      text = readFileSync(this.#file, 'utf8');
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT')
        this.#log.warn({ file: this.#file, err: coerceError(error) }, 'cannot read the hosts’ last errors');
      return new Map();
    }
    try {
      const parsed = fileSchema.parse(JSON.parse(text));
      return new Map(Object.entries(parsed).map(([host, list]) => [host, list.slice(-this.#kept)]));
    } catch (error) {
      this.#log.warn({ file: this.#file, err: coerceError(error) }, 'the hosts’ last errors file is damaged');
      return new Map();
    }
  }

  /** Store `errors` (this daemon's, per host) merged with the file's; `forgotten` hosts are dropped. */
  save(errors: ReadonlyMap<string, readonly HostError[]>, forgotten: readonly string[] = []): void {
    const merged = this.load();
    for (const host of forgotten) merged.delete(host);
    for (const [host, mine] of errors) {
      const seen = new Set<string>();
      const all = [...(merged.get(host) ?? []), ...mine]
        .filter((e) => {
          const key = `${e.at}\0${e.reason}`;
          if (seen.has(key)) return false;
          seen.add(key);
          return true;
        })
        .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
      merged.delete(host); // re-inserted last: the most recently failed host is kept longest
      merged.set(host, all.slice(-this.#kept));
    }
    while (merged.size > HOSTS_KEPT) merged.delete(merged.keys().next().value as string);
    try {
      mkdirSync(path.dirname(this.#file), { recursive: true });
      writeFileAtomic(this.#file, `${JSON.stringify(Object.fromEntries(merged), null, 1)}\n`, false);
    } catch (error) {
      this.#log.warn({ file: this.#file, err: coerceError(error) }, 'cannot save the hosts’ last errors');
    }
  }
}
