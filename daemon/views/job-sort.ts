import { BatchdError, errnoCode } from '../errors.ts';
import type { EventBus } from '../events.ts';
import { isJobId } from '../jobs/id.ts';
import { isFinished, JOB_STATES, type JobStateName } from '../jobs/status.ts';
import type { JobSort, JobSortKey } from '../protocol/jobs.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import { readJobSpec, readJobState } from '../spool/state-file.ts';
import { listIds, listJobs, listNames } from './jobs.ts';

export type { JobSort } from '../protocol/jobs.ts';

/**
 * Job lists sorted by a column other than submission time, paged by a cursor that holds the sort
 * value and the id of the page's last job.
 *
 * Each state folder (a finished state's daily shard) gets, per sort, an index: its jobs' values,
 * sorted. It is built the first time that sort is asked for (reading each job's job.yaml or
 * state.yaml once) and then kept: a page is a binary search per folder. It stays right because
 * (1) a folder's listing is taken from `listIds`, which is re-read when the folder changes (a job
 * arrives or leaves), and only the new jobs are read; (2) a change to a job in place (priority,
 * host, pause) emits an event (`job:updated`, `job:transition`, `job:paused`, `job:resumed`), on
 * which the job's value is dropped and read again at the next page.
 */

type Value = string | number | null;
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

/** Built indexes, least recently used first; each is at most one folder's jobs. */
const indexes = new Map<string, FolderIndex>();
const KEPT_INDEXES = 256;
const watched = new WeakSet<EventBus>();

export interface SortedListing {
  jobs: { id: string; queue: string; state: JobStateName; cursor: string }[];
  nextCursor: string | null;
}

/** One page of jobs over some queues and states in the order `sort`, after `cursor`. */
export function listJobsSorted(
  layout: SpoolLayout,
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
    const listing = listJobs(layout, queues, states, limit, cursor, desc);
    return { jobs: listing.jobs.map((j) => ({ ...j, cursor: j.id })), nextCursor: listing.nextCursor };
  }
  const sign = desc ? -1 : 1;
  const after = cursor === undefined ? undefined : decodeCursor(cursor, sort);
  const found: (Item & { queue: string; state: JobStateName })[] = [];
  for (const queue of queues) {
    for (const state of states) {
      for (const dir of foldersOf(layout, queue, state)) {
        const sorted = folderIndex(dir, queue, state, key, sign).sorted;
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

/** Drop a changed job's values from the indexes when the daemon changes it (once per event bus). */
export function watchJobChanges(events: EventBus): void {
  if (watched.has(events)) return;
  watched.add(events);
  const stale = ({ jobId }: { jobId: string }): void => {
    for (const index of indexes.values()) if (index.values.delete(jobId)) index.dirty = true;
  };
  events.on('job:updated', stale);
  events.on('job:transition', stale);
  events.on('job:paused', stale);
  events.on('job:resumed', stale);
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

function folderIndex(
  dir: string,
  queue: string,
  state: JobStateName,
  key: JobSortKey,
  sign: number,
): FolderIndex {
  const name = `${key}:${sign}:${dir}`;
  const ids = listIds(dir);
  const kept = indexes.get(name);
  if (kept !== undefined) {
    indexes.delete(name);
    indexes.set(name, kept); // most recently used last
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
        v = valueOf(key, `${dir}/${id}`, queue, state);
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
  indexes.set(name, index);
  if (indexes.size > KEPT_INDEXES) indexes.delete(indexes.keys().next().value as string);
  return index;
}

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A job's value for `key`, as GET /job shows it (views/jobs.ts toJobInfo). */
function valueOf(key: JobSortKey, dir: string, queue: string, state: JobStateName): Value {
  switch (key) {
    case 'state':
      return JOB_STATES.indexOf(state);
    case 'queue':
      return queue;
    case 'type':
      return readJobSpec(dir).type;
    case 'user':
      return readJobSpec(dir).submitted_by ?? null;
    case 'priority':
      return readJobState(dir).priority;
    case 'started': {
      const s = readJobState(dir);
      return s.running?.started_at ?? s.last?.started_at ?? null;
    }
    case 'ended':
      return isFinished(state) ? (readJobState(dir).last?.ended_at ?? null) : null;
    case 'submitted':
      return null; // paged by id (listJobs), never indexed
  }
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
