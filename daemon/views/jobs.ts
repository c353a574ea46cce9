import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

import { BatchdError, errnoCode } from '../errors.ts';
import { isJobId, shardOf } from '../jobs/id.ts';
import type { JobSpec } from '../jobs/spec.ts';
import { isFinished, type JobStateName } from '../jobs/status.ts';
import type { JobInfo } from '../protocol/jobs.ts';
import { type JobLocation, locateJob } from '../spool/find.ts';
import type { SpoolLayout } from '../spool/layout.ts';
import { type JobState, readJobSpec, readJobState, STATE_FILE } from '../spool/state-file.ts';
import { ParsedFileCache, QUIET_NS } from './file-cache.ts';

/**
 * Read-only views of jobs, straight from the spool: the folder a job is in is its state; job.yaml
 * and state.yaml say the rest. A job can move while it is read; readers look it up again.
 */
/** How many job.yaml and state.yaml files the read side keeps parsed (a few MB at most). */
const KEPT_FILES = 5_000;
const states = new ParsedFileCache(KEPT_FILES, (file) => readJobState(path.dirname(file)));
/**
 * `job.yaml` is written once, in the staging folder, before its job appears in any state folder
 * (spool/accept.ts): a spec read once is kept by the folder it was read in, without a `stat`.
 */
const specs = new Map<string, JobSpec>();

function specIn(dir: string): JobSpec {
  let spec = specs.get(dir);
  if (spec === undefined) {
    spec = readJobSpec(dir);
    specs.set(dir, spec);
    if (specs.size > KEPT_FILES) specs.delete(specs.keys().next().value as string);
  }
  return spec;
}

export function jobInfo(location: JobLocation, withHistory: boolean): JobInfo {
  const spec = specIn(location.dir);
  const state = states.get(`${location.dir}/${STATE_FILE}`, location.checked);
  return toJobInfo(spec, state, location.state, location.queue, withHistory);
}

export function toJobInfo(
  spec: JobSpec,
  state: JobState & { notes?: string | null },
  status: JobStateName,
  queue: string,
  withHistory: boolean,
): JobInfo {
  const last = state.last;
  const finished = isFinished(status);
  const notes = state.notes === undefined ? spec.notes : state.notes;
  return {
    id: spec.id,
    queue,
    type: spec.type,
    status,
    priority: state.priority,
    params: spec.params,
    // state.yaml holds the current host and not_before (a queued job's may change); job.yaml the submitted ones.
    host: state.running?.host ?? state.host ?? null,
    notes: notes ?? null,
    name: spec.name ?? null,
    task: state.task ?? spec.task?.name ?? null,
    task_index: spec.task?.index ?? null,
    attempts: state.attempts,
    submitted_at: spec.submitted_at,
    started_at: state.running?.started_at ?? last?.started_at ?? null,
    ended_at: finished ? (last?.ended_at ?? null) : null,
    exit_code: last?.exit_code ?? null,
    signal: last?.signal ?? null,
    error: last?.error ?? null,
    ...(last?.limit_hit === undefined ? {} : { limit_hit: last.limit_hit }),
    user: spec.submitted_by ?? null,
    after: spec.after,
    not_before: state.not_before ?? null,
    ...(status === 'running' && state.paused_at !== undefined ? { paused_at: state.paused_at } : {}),
    ...(state.paused_seconds === undefined ? {} : { paused_seconds: state.paused_seconds }),
    ...(withHistory ? { history: state.history } : {}),
  };
}

/** Find a job and read it, looking again if it moved between the two. */
export function readJob(
  layout: SpoolLayout,
  queues: readonly string[],
  id: string,
  withHistory = true,
): { location: JobLocation; info: JobInfo } {
  for (let tries = 0; tries < 5; tries++) {
    const location = isJobId(id) ? locateJob(layout, queues, id) : undefined;
    if (location === undefined) break;
    try {
      return { location, info: jobInfo(location, withHistory) };
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
  }
  throw new BatchdError('UNKNOWN_JOB', `No job ${id} in any queue`, { jobId: id });
}

export function readJobStateAt(
  layout: SpoolLayout,
  queues: readonly string[],
  id: string,
): { location: JobLocation; state: JobState } {
  for (let tries = 0; tries < 5; tries++) {
    const location = isJobId(id) ? locateJob(layout, queues, id) : undefined;
    if (location === undefined) break;
    try {
      return { location, state: readJobState(location.dir) };
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
  }
  throw new BatchdError('UNKNOWN_JOB', `No job ${id} in any queue`, { jobId: id });
}

/**
 * Job ids in one state folder of a queue, sorted (ids sort by submission time), after `cursor`, at
 * most `limit`; with `desc`, newest first and before `cursor`.
 */
export function idsIn(
  layout: SpoolLayout,
  queue: string,
  state: JobStateName,
  limit: number,
  cursor?: string,
  desc = false,
): string[] {
  const base = layout.stateDir(queue, state);
  const page = desc ? lastBefore : firstAfter;
  if (!isFinished(state)) return page(listIds(base), limit, cursor);
  const out: string[] = [];
  const shards = listNames(base)
    .filter(
      (s) =>
        /^\d{8}$/.test(s) && (cursor === undefined || (desc ? s <= shardOf(cursor) : s >= shardOf(cursor))),
    )
    .sort();
  if (desc) shards.reverse();
  for (const shard of shards) {
    out.push(...page(listIds(`${base}/${shard}`), limit - out.length, cursor));
    if (out.length >= limit) break;
  }
  return out;
}

export interface JobListing {
  jobs: { id: string; queue: string; state: JobStateName }[];
  nextCursor: string | null;
}

/** One page of jobs over some queues and states, in submission order (`desc`: newest first). */
export function listJobs(
  layout: SpoolLayout,
  queues: readonly string[],
  states: readonly JobStateName[],
  limit: number,
  cursor?: string,
  desc = false,
): JobListing {
  const found: { id: string; queue: string; state: JobStateName }[] = [];
  for (const queue of queues) {
    for (const state of states) {
      for (const id of idsIn(layout, queue, state, limit + 1, cursor, desc)) found.push({ id, queue, state });
    }
  }
  const sign = desc ? -1 : 1;
  found.sort((a, b) => (a.id < b.id ? -sign : a.id > b.id ? sign : 0));
  const page = found.slice(0, limit);
  return { jobs: page, nextCursor: found.length > limit ? (page.at(-1)?.id ?? null) : null };
}

/** Read a page's jobs; one that moved meanwhile is looked up again (or left out if it is gone). */
export function readListing(
  layout: SpoolLayout,
  allQueues: readonly string[],
  listing: JobListing,
): JobInfo[] {
  const out: JobInfo[] = [];
  for (const entry of listing.jobs) {
    try {
      out.push(jobInfo({ ...entry, dir: layout.jobDir(entry.queue, entry.state, entry.id) }, false));
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
      const moved = locateJob(layout, allQueues, entry.id);
      if (moved === undefined) continue;
      try {
        out.push(jobInfo(moved, false));
      } catch {
        // moved twice while listing: it shows on the next read
      }
    }
  }
  return out;
}

/** `ids` sorted; the first `limit` after `cursor`. */
function firstAfter(ids: readonly string[], limit: number, cursor: string | undefined): string[] {
  if (limit <= 0) return [];
  let start = 0;
  if (cursor !== undefined) {
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((ids[mid] as string) <= cursor) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  return ids.slice(start, start + limit);
}

/** `ids` sorted; the last `limit` before `cursor` (all when there is none), newest first. */
function lastBefore(ids: readonly string[], limit: number, cursor: string | undefined): string[] {
  if (limit <= 0) return [];
  let end = ids.length;
  if (cursor !== undefined) {
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((ids[mid] as string) < cursor) lo = mid + 1;
      else hi = mid;
    }
    end = lo;
  }
  return ids.slice(Math.max(0, end - limit), end).reverse();
}

/**
 * Sorted job ids of one folder, kept between reads while the folder's mtime stays the same: a page
 * of a 100,000-job queue then costs one stat, not a readdir and a sort. The racy-git rule applies:
 * a listing is trusted only if the folder had been quiet for QUIET_NS before it was read, so a
 * change within the same timestamp tick (coarse clocks, NFS) can never hide behind an equal mtime.
 */
const sortedCache = new Map<string, { mtimeNs: bigint; ids: string[] }>();
const CACHED_FOLDERS = 64;

export function listIds(dir: string): readonly string[] {
  let mtimeNs: bigint;
  try {
    mtimeNs = statSync(dir, { bigint: true }).mtimeNs;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
  const cached = sortedCache.get(dir);
  if (cached?.mtimeNs === mtimeNs) return cached.ids;
  const readAt = BigInt(Date.now()) * 1_000_000n;
  const ids = listNames(dir).filter(isJobId).sort();
  sortedCache.delete(dir);
  if (readAt - mtimeNs > QUIET_NS) {
    if (sortedCache.size >= CACHED_FOLDERS) sortedCache.delete(sortedCache.keys().next().value as string);
    sortedCache.set(dir, { mtimeNs, ids });
  }
  return ids;
}

export function listNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
}
