import { statSync } from 'node:fs';

import { errnoCode } from '../errors.ts';
import type { JobSpec } from '../jobs/spec.ts';
import { isFinished, JOB_STATES, type JobStateName } from '../jobs/status.ts';
import type { JobSortKey } from '../protocol/jobs.ts';
import { type JobState, readJobSpec, readJobState, STATE_FILE } from '../spool/state-file.ts';
import { QUIET_NS } from './file-cache.ts';

export type SortValue = string | number | null;

/** Types and owners repeat: one string each, not one per job (a handful of names are kept). */
const names = new Map<string, string>();

function interned(name: string): string {
  const kept = names.get(name);
  if (kept !== undefined) return kept;
  if (names.size < 10_000) names.set(name, name);
  return name;
}

/**
 * One job's values, in one object of one shape (a deep queue holds 100,000). What `job.yaml`
 * says never changes (it is written once, at acceptance); what `state.yaml` says holds while the
 * job stays in the folder it was read in, and is unknown while `queue` is undefined.
 */
class Facts {
  type: string;
  /** Unknown until job.yaml is read (state.yaml has the type, not the owner). */
  user: string | null | undefined = undefined;
  queue: string | undefined = undefined;
  state: JobStateName = 'queued';
  priority = 0;
  started: string | null = null;
  ended: string | null = null;
  /** When the record was read (ms): a later change of the file shows as a later ctime. */
  readAt = 0;

  constructor(type: string) {
    this.type = type;
  }

  /** Whether the record's values are those of the job in this folder. */
  holds(queue: string, state: JobStateName): boolean {
    return this.queue === queue && this.state === state;
  }
}

/** Who read a job's file: a sorted page's request, or the background pass (`warm`). */
export type ReadFor = 'request' | 'background';

/**
 * The values the job list sorts by, per job, in memory. They come from what the daemon reads or
 * writes anyway: the start-up scan and the rescans (each queued job's `state.yaml`), acceptance
 * (the spec and the first record), and the requeues. The owner is only in `job.yaml`, and jobs
 * that finished before this daemon started were never scanned: a pass in the background reads
 * those once (job-sort.ts `warm`). A value missing when a page needs it is read from the job's
 * file then, and counted (`reads`), so a test can see that a sort was answered from memory.
 *
 * A job changes in place only while queued (its priority; other values change with a move to
 * another folder, which makes the record stale). This daemon's own changes come as events
 * (`forget`); a change made by another dispatcher sharing the spool is found by `changedSince`.
 */
export class SortFacts {
  readonly #facts = new Map<string, Facts>();
  /** Job files read because a value was not in memory, by who needed it. */
  readonly reads: Record<ReadFor, number> = { request: 0, background: 0 };

  /** Jobs whose owner and record are both known. */
  get size(): number {
    let n = 0;
    for (const facts of this.#facts.values())
      if (facts.user !== undefined && facts.queue !== undefined) n += 1;
    return n;
  }

  /** A job's spec, read or written by the daemon. */
  noteSpec(spec: JobSpec): void {
    const facts = this.#factsOf(spec.id, spec.type);
    facts.type = interned(spec.type);
    facts.user = this.#user(spec.submitted_by);
  }

  /** A job's record as read from (or just written to) its folder, `readAt` ms before. */
  noteState(state: JobState, readAt = Date.now()): void {
    const facts = this.#factsOf(state.id, state.type);
    facts.queue = state.queue;
    facts.state = state.state;
    facts.priority = state.priority;
    facts.started = state.running?.started_at ?? state.last?.started_at ?? null;
    facts.ended = isFinished(state.state) ? (state.last?.ended_at ?? null) : null;
    facts.readAt = readAt;
  }

  /** The daemon changed the job's record: read it again when it is needed. */
  forget(id: string): void {
    const facts = this.#facts.get(id);
    if (facts !== undefined) facts.queue = undefined;
  }

  /**
   * Drop what is kept of jobs no longer in the spool (purged, swept by retention): those not in
   * `ids`, a listing begun at `since` (ms), unless the daemon noted them after that.
   */
  keepOnly(ids: ReadonlySet<string>, since: number): void {
    for (const [id, facts] of this.#facts)
      if (!ids.has(id) && (facts.queue === undefined || facts.readAt < since)) this.#facts.delete(id);
  }

  /** Whether a job's values for every sort are in memory for the folder it is in. */
  knows(id: string, queue: string, state: JobStateName): boolean {
    const facts = this.#facts.get(id);
    return facts?.user !== undefined && facts.holds(queue, state);
  }

  /** Read what is missing of a job in folder `dir` (a job gone meanwhile throws ENOENT). */
  learn(dir: string, id: string, queue: string, state: JobStateName, by: ReadFor): void {
    if (this.#facts.get(id)?.user === undefined) this.#readSpec(dir, id, by);
    if (this.#facts.get(id)?.holds(queue, state) !== true) this.#readState(dir, queue, state, by);
  }

  /** A job's value for `key` in folder `dir` of `queue`, as GET /job shows it (views/jobs.ts toJobInfo). */
  value(
    key: JobSortKey,
    dir: string,
    id: string,
    queue: string,
    state: JobStateName,
    by: ReadFor,
  ): SortValue {
    switch (key) {
      case 'state':
        return JOB_STATES.indexOf(state);
      case 'queue':
        return queue;
      case 'submitted':
        return null; // paged by id (views/jobs.ts listJobs), never indexed
      case 'type':
        return (this.#facts.get(id) ?? this.#readSpec(dir, id, by)).type;
      case 'user': {
        const facts = this.#facts.get(id);
        return facts?.user !== undefined ? facts.user : (this.#readSpec(dir, id, by).user ?? null);
      }
      case 'priority':
      case 'started':
      case 'ended': {
        let facts = this.#facts.get(id);
        if (facts?.holds(queue, state) !== true) facts = this.#readState(dir, queue, state, by);
        return facts[key];
      }
    }
  }

  /**
   * Whether the job's `state.yaml` may have changed since its record was read: it was replaced
   * (a new ctime) after, or less than QUIET_NS before, the read (the file system's timestamps are
   * coarse, so a change within the same tick must not hide behind an equal time). One `stat`.
   */
  changedSince(dir: string, id: string): boolean {
    const record = this.#facts.get(id);
    if (record?.queue === undefined) return true;
    try {
      const { ctimeNs } = statSync(`${dir}/${STATE_FILE}`, { bigint: true });
      return ctimeNs + QUIET_NS >= BigInt(record.readAt) * 1_000_000n;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return true;
      throw error;
    }
  }

  #readSpec(dir: string, id: string, by: ReadFor): { type: string; user: string | null } {
    this.reads[by] += 1;
    const spec = readJobSpec(dir);
    if (spec.id === id) this.noteSpec(spec);
    return { type: interned(spec.type), user: this.#user(spec.submitted_by) };
  }

  #readState(dir: string, queue: string, state: JobStateName, by: ReadFor): Facts {
    this.reads[by] += 1;
    const readAt = Date.now();
    const record = readJobState(dir);
    // The folder is the truth for where the job is.
    this.noteState({ ...record, queue, state }, readAt);
    return this.#factsOf(record.id, record.type);
  }

  #factsOf(id: string, type: string): Facts {
    let facts = this.#facts.get(id);
    if (facts === undefined) this.#facts.set(id, (facts = new Facts(interned(type))));
    return facts;
  }

  #user(user: string | undefined): string | null {
    return user === undefined ? null : interned(user);
  }
}
