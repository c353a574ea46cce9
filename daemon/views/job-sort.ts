import { statSync } from 'node:fs';
import path from 'node:path';

import { BatchdError, errnoCode } from '../errors.ts';
import type { EventBus } from '../events.ts';
import { isJobId } from '../jobs/id.ts';
import { isFinished, JOB_STATES, type JobStateName } from '../jobs/status.ts';
import type { JobSort, JobSortKey } from '../protocol/jobs.ts';
import { DISPATCHERS_FOLDER } from '../spool/dispatchers.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import { listIds, listJobs, listNames } from './jobs.ts';
import { SortFacts, type SortValue } from './sort-facts.ts';

export type { JobSort } from '../protocol/jobs.ts';

/**
 * Job lists sorted by a column other than submission time, paged by a cursor that holds the sort
 * value and the id of the page's last job.
 *
 * Each state folder (a finished state's daily shard) gets, per sort, an index: its jobs' values,
 * sorted, taken from the values the daemon keeps in memory (sort-facts.ts), so a first sort reads
 * no job file once they are known; a page is then a binary search per folder. It stays right
 * because (1) a folder's listing is taken from `listIds`, which is re-read when the folder changes
 * (a job arrives or leaves), and only the new jobs' values are looked up; (2) a change to a job in
 * place by this daemon (priority, host, pause) emits an event (`job:updated`, `job:transition`,
 * `job:paused`, `job:resumed`), on which the job's value is dropped and read again at the next
 * page; (3) while another dispatcher shares the spool, a queued job's priority can change without
 * an event here: a priority sort of `queued/` then checks each job's `state.yaml` stamp (one
 * `stat` each) and reads again the few that changed.
 */

type Value = SortValue;
interface Item {
  v: Value;
  id: string;
}
interface FolderIndex {
  ids: readonly string[];
  values: Map<string, Value>;
  sorted: Item[];
  dirty: boolean;
}

/** Built indexes kept, least recently used first; each is at most one folder's jobs. */
const KEPT_INDEXES = 256;
/** Jobs looked at by the background pass between two turns of the event loop. */
const WARM_STEP = 200;

export interface SortedListing {
  jobs: { id: string; queue: string; state: JobStateName; cursor: string }[];
  nextCursor: string | null;
}

/** The sorted job lists of one spool, for one daemon. */
export class JobSortIndex {
  /** The values sorts order by, per job (what the daemon has seen, and the background pass read). */
  readonly facts = new SortFacts();
  readonly #layout: SpoolLayout;
  readonly #indexes = new Map<string, FolderIndex>();
  /** Whether another dispatcher shares the spool now or did since this one started. */
  readonly #shared: () => boolean;
  /** Listings the background pass has gone through (listIds keeps one array while a folder is unchanged). */
  readonly #warmed = new Map<string, readonly string[]>();

  /** `dispatchers`: how many dispatchers use the spool now (spool/dispatchers.ts). */
  constructor(layout: SpoolLayout, events: EventBus, dispatchers: () => number) {
    this.#layout = layout;
    this.#shared = sharingSeen(path.join(layout.root, DISPATCHERS_FOLDER), dispatchers);
    const stale = ({ jobId }: { jobId: string }): void => this.#stale(jobId);
    events.on('job:updated', stale);
    events.on('job:transition', stale);
    events.on('job:paused', stale);
    events.on('job:resumed', stale);
  }

  /** One page of jobs over some queues and states in the order `sort`, after `cursor`. */
  list(
    queues: readonly string[],
    states: readonly JobStateName[],
    limit: number,
    cursor: string | undefined,
    sort: JobSort,
  ): SortedListing {
    const desc = sort.startsWith('-');
    const key = (desc ? sort.slice(1) : sort) as JobSortKey;
    if (key === 'submitted') {
      if (cursor !== undefined && !isJobId(cursor)) throw badCursor(sort);
      const listing = listJobs(this.#layout, queues, states, limit, cursor, desc);
      return { jobs: listing.jobs.map((j) => ({ ...j, cursor: j.id })), nextCursor: listing.nextCursor };
    }
    const sign = desc ? -1 : 1;
    const after = cursor === undefined ? undefined : decodeCursor(cursor, sort);
    const found: (Item & { queue: string; state: JobStateName })[] = [];
    for (const queue of queues) {
      for (const state of states) {
        for (const dir of foldersOf(this.#layout, queue, state)) {
          const sorted = this.#folderIndex(dir, queue, state, key, sign).sorted;
          const start = after === undefined ? 0 : firstAfter(sorted, after, sign);
          for (const item of sorted.slice(start, start + limit + 1)) found.push({ ...item, queue, state });
        }
      }
    }
    found.sort((a, b) => compare(a, b, sign));
    const page = found.slice(0, limit);
    const last = page.at(-1);
    return {
      jobs: page.map((j) => ({ id: j.id, queue: j.queue, state: j.state, cursor: encodeCursor(sort, j) })),
      nextCursor: found.length > limit && last !== undefined ? encodeCursor(sort, last) : null,
    };
  }

  /**
   * Read once, in the background, what the daemon has not seen of the jobs in `queues`: the owner
   * of the jobs the start-up scan found (state.yaml has no owner), and the jobs in other folders
   * (finished before this daemon started, run by another dispatcher, or finished here: a move's
   * new record is read once). Running jobs are left to the pages that need them (a few, and they
   * move again soon). A few hundred jobs per turn of the event loop; a folder unchanged since its
   * last pass costs one `stat`. When any folder changed, what is kept of jobs gone is dropped.
   */
  async warm(queues: readonly string[], signal: AbortSignal): Promise<void> {
    const since = Date.now();
    const present = new Set<string>();
    let changed = false;
    for (const queue of queues) {
      for (const state of JOB_STATES) {
        for (const dir of foldersOf(this.#layout, queue, state)) {
          const ids = listIds(dir);
          for (const id of ids) present.add(id);
          if (this.#warmed.get(dir) === ids) continue;
          changed = true;
          if (state !== 'running') await this.#learnAll(dir, ids, queue, state, signal);
          if (signal.aborted) return;
          this.#warmed.set(dir, ids);
        }
      }
    }
    if (changed) this.facts.keepOnly(present, since);
  }

  async #learnAll(
    dir: string,
    ids: readonly string[],
    queue: string,
    state: JobStateName,
    signal: AbortSignal,
  ): Promise<void> {
    let step = 0;
    for (const id of ids) {
      if (signal.aborted) return;
      if (++step % WARM_STEP === 0) await new Promise((resolve) => setImmediate(resolve));
      if (this.facts.knows(id, queue, state)) continue;
      try {
        this.facts.learn(`${dir}/${id}`, id, queue, state, 'background');
      } catch {
        // Moved since listed (its new folder's pass finds it), or a file that does not read:
        // a page that needs it reads it and says why.
      }
    }
  }

  #folderIndex(dir: string, queue: string, state: JobStateName, key: JobSortKey, sign: number): FolderIndex {
    const name = `${key}:${sign}:${dir}`;
    const ids = listIds(dir);
    const kept = this.#indexes.get(name);
    if (key === 'priority' && state === 'queued' && this.#shared()) this.#recheck(dir, ids);
    if (kept !== undefined) {
      this.#indexes.delete(name);
      this.#indexes.set(name, kept); // most recently used last
      // The same listing, or (when listIds could not keep it: a busy folder, many shards) equal to it.
      if (!kept.dirty && sameIds(kept.ids, ids)) {
        kept.ids = ids;
        return kept;
      }
    }
    const old = kept?.values ?? new Map<string, Value>();
    const values = new Map<string, Value>();
    const sorted: Item[] = [];
    for (const id of ids) {
      let v = old.get(id);
      if (v === undefined) {
        try {
          v = this.facts.value(key, `${dir}/${id}`, id, queue, state, 'request');
        } catch (error) {
          if (errnoCode(error) === 'ENOENT') continue; // moved since the folder was listed
          throw error;
        }
      }
      values.set(id, v);
      sorted.push({ v, id });
    }
    sorted.sort((a, b) => compare(a, b, sign));
    const index = { ids, values, sorted, dirty: false };
    this.#indexes.set(name, index);
    if (this.#indexes.size > KEPT_INDEXES) this.#indexes.delete(this.#indexes.keys().next().value as string);
    return index;
  }

  /** Another dispatcher may have set a queued job's priority: forget each whose state.yaml changed. */
  #recheck(dir: string, ids: readonly string[]): void {
    for (const id of ids) if (this.facts.changedSince(`${dir}/${id}`, id)) this.#stale(id);
  }

  /** A job changed: its values are read again where they are next needed, in every index. */
  #stale(id: string): void {
    this.facts.forget(id);
    for (const index of this.#indexes.values()) if (index.values.delete(id)) index.dirty = true;
  }
}

/**
 * Whether another dispatcher uses the spool, or has since the first call: sticky, since a priority
 * it set stays when it stops. One that came and went between two calls still changed the roll's
 * folder (its file made, then removed), so a new mtime of the folder counts as well.
 */
function sharingSeen(rollDir: string, dispatchers: () => number): () => boolean {
  let first: bigint | undefined;
  let seen = false;
  return () => {
    if (seen) return true;
    let mtimeNs = 0n;
    try {
      mtimeNs = statSync(rollDir, { bigint: true }).mtimeNs;
    } catch {
      // no roll (yet): only the count says
    }
    first ??= mtimeNs;
    seen = mtimeNs !== first || dispatchers() > 1;
    return seen;
  };
}

/** Jobs without a value (not started, not ended) come last in either direction; ties go by id. */
function compare(a: Item, b: Item, sign: number): number {
  if (a.v !== b.v) {
    if (a.v === null) return 1;
    if (b.v === null) return -1;
    return (a.v < b.v ? -1 : 1) * sign;
  }
  return a.id === b.id ? 0 : (a.id < b.id ? -1 : 1) * sign;
}

/** The index of the first item that comes after `after`. */
function firstAfter(sorted: readonly Item[], after: Item, sign: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compare(sorted[mid] as Item, after, sign) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function foldersOf(layout: SpoolLayout, queue: string, state: JobStateName): string[] {
  const base = layout.stateDir(queue, state);
  if (!isFinished(state)) return [base];
  return listNames(base)
    .filter((s) => /^\d{8}$/.test(s))
    .map((s) => `${base}/${s}`);
}

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A cursor names its sort, so a cursor of another order is refused rather than misread. */
function encodeCursor(sort: JobSort, item: Item): string {
  return Buffer.from(JSON.stringify([sort, item.v, item.id])).toString('base64url');
}

function decodeCursor(cursor: string, sort: JobSort): Item {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw badCursor(sort);
  }
  if (!Array.isArray(parsed) || parsed.length !== 3) throw badCursor(sort);
  const [s, v, id] = parsed as unknown[];
  if (s !== sort || typeof id !== 'string' || !isJobId(id)) throw badCursor(sort);
  if (v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) return { v, id };
  throw badCursor(sort);
}

function badCursor(sort: JobSort): BatchdError {
  return new BatchdError('REQUEST_INVALID', `Invalid query: cursor is not one of a list sorted by ${sort}`, {
    sort,
  });
}
