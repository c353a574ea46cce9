import { statSync } from 'node:fs';

import { errnoCode } from '../errors.ts';
import type { JobSpec } from '../jobs/spec.ts';
import { isFinished, JOB_STATES, type JobStateName } from '../jobs/status.ts';
import type { JobSortKey } from '../protocol/jobs.ts';
import { type JobState, readJobSpec, readJobState, STATE_FILE } from '../spool/state-file.ts';
import { QUIET_NS } from './file-cache.ts';

export type SortValue = string | number | null;

/** What `job.yaml` says for the sorts: written once, at acceptance, so it never changes. */
interface SpecFacts {
  type: string;
  /** Unknown until job.yaml is read (state.yaml has the type, not the owner). */
  user?: string | null;
}

/** What `state.yaml` says for the sorts, true while the job stays in the folder it was read in. */
interface StateFacts {
  queue: string;
  state: JobStateName;
  priority: number;
  started: string | null;
  ended: string | null;
  /** When the record was read (ms): a later change of the file shows as a later ctime. */
  readAt: number;
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
  readonly #specs = new Map<string, SpecFacts>();
  readonly #states = new Map<string, StateFacts>();
  /** Types and owners repeat: one string each, not one per job. */
  readonly #strings = new Map<string, string>();
  /** Job files read because a value was not in memory, by who needed it. */
  readonly reads: Record<ReadFor, number> = { request: 0, background: 0 };

  /** Jobs whose owner and record are both known. */
  get size(): number {
    let n = 0;
    for (const [id, spec] of this.#specs) if (spec.user !== undefined && this.#states.has(id)) n += 1;
    return n;
  }

  /** A job's spec, read or written by the daemon. */
  noteSpec(spec: JobSpec): void {
    this.#specs.set(spec.id, { type: this.#intern(spec.type), user: this.#user(spec.submitted_by) });
  }

  /** A job's record as read from (or just written to) its folder, `readAt` ms before. */
  noteState(state: JobState, readAt = Date.now()): void {
    const spec = this.#specs.get(state.id);
    if (spec === undefined) this.#specs.set(state.id, { type: this.#intern(state.type) });
    this.#states.set(state.id, {
      queue: state.queue,
      state: state.state,
      priority: state.priority,
      started: state.running?.started_at ?? state.last?.started_at ?? null,
      ended: isFinished(state.state) ? (state.last?.ended_at ?? null) : null,
      readAt,
    });
  }

  /** The daemon changed the job's record: read it again when it is needed. */
  forget(id: string): void {
    this.#states.delete(id);
  }

  /**
   * Drop what is kept of jobs no longer in the spool (purged, swept by retention): those not in
   * `ids`, a listing begun at `since` (ms), unless the daemon noted them after that.
   */
  keepOnly(ids: ReadonlySet<string>, since: number): void {
    for (const [id, record] of this.#states)
      if (!ids.has(id) && record.readAt < since) this.#states.delete(id);
    for (const id of this.#specs.keys()) if (!ids.has(id) && !this.#states.has(id)) this.#specs.delete(id);
  }

  /** Whether a job's values for every sort are in memory for the folder it is in. */
  knows(id: string, queue: string, state: JobStateName): boolean {
    const record = this.#states.get(id);
    return this.#specs.get(id)?.user !== undefined && record?.queue === queue && record.state === state;
  }

  /** Read what is missing of a job in folder `dir` (a job gone meanwhile throws ENOENT). */
  learn(dir: string, id: string, queue: string, state: JobStateName, by: ReadFor): void {
    if (this.#specs.get(id)?.user === undefined) this.#readSpec(dir, id, by);
    const record = this.#states.get(id);
    if (record?.queue !== queue || record.state !== state) this.#readState(dir, queue, state, by);
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
        return (this.#specs.get(id) ?? this.#readSpec(dir, id, by)).type;
      case 'user': {
        const spec = this.#specs.get(id);
        return spec?.user !== undefined ? spec.user : (this.#readSpec(dir, id, by).user ?? null);
      }
      case 'priority':
      case 'started':
      case 'ended': {
        let record = this.#states.get(id);
        if (record?.queue !== queue || record.state !== state)
          record = this.#readState(dir, queue, state, by);
        return record[key];
      }
    }
  }

  /**
   * Whether the job's `state.yaml` may have changed since its record was read: it was replaced
   * (a new ctime) after, or less than QUIET_NS before, the read (the file system's timestamps are
   * coarse, so a change within the same tick must not hide behind an equal time). One `stat`.
   */
  changedSince(dir: string, id: string): boolean {
    const record = this.#states.get(id);
    if (record === undefined) return true;
    try {
      const { ctimeNs } = statSync(`${dir}/${STATE_FILE}`, { bigint: true });
      return ctimeNs + QUIET_NS >= BigInt(record.readAt) * 1_000_000n;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return true;
      throw error;
    }
  }

  #readSpec(dir: string, id: string, by: ReadFor): Required<SpecFacts> {
    this.reads[by] += 1;
    const spec = readJobSpec(dir);
    const facts = { type: this.#intern(spec.type), user: this.#user(spec.submitted_by) };
    if (spec.id === id) this.#specs.set(id, facts);
    return facts;
  }

  #readState(dir: string, queue: string, state: JobStateName, by: ReadFor): StateFacts {
    this.reads[by] += 1;
    const readAt = Date.now();
    const record = readJobState(dir);
    // The folder is the truth for where the job is.
    this.noteState({ ...record, queue, state }, readAt);
    return this.#states.get(record.id) as StateFacts;
  }

  #user(user: string | undefined): string | null {
    return user === undefined ? null : this.#intern(user);
  }

  #intern(s: string): string {
    const kept = this.#strings.get(s);
    if (kept !== undefined) return kept;
    if (this.#strings.size < 10_000) this.#strings.set(s, s);
    return s;
  }
}
