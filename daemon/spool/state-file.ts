import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';

import { loadText, parseText } from '../config/parse.ts';
import { BatchdError } from '../errors.ts';
import type { BatchRecord } from '../config/cluster.ts';
import { isJobId } from '../jobs/id.ts';
import type { JobSpec } from '../jobs/spec.ts';
import type { JobStateName, Outcome } from '../jobs/status.ts';
import { writeFileRecycled } from './atomic.ts';
import type { SparePool } from './spares.ts';
import { type JobRecord, jobRecordSchema } from './state-record.ts';

export const JOB_FILE = 'job.yaml';
export const STATE_FILE = 'state.yaml';
export const STDOUT_FILE = 'stdout.log';
export const STDERR_FILE = 'stderr.log';
export const RESULT_FILE = 'result.json';

export interface Owner {
  hostname: string;
  boot_id: string;
  pid: number;
}

export interface Attempt {
  attempt: number;
  started_at: string;
  host: string;
  owner: Owner;
  /** Process group of the job (local jobs). */
  pid?: number | undefined;
  /** A job handed to a batch system (Slurm): its id there, written as soon as it was submitted. */
  batch?: BatchRecord | undefined;
}

export interface AttemptResult {
  attempt: number;
  outcome: Outcome;
  exit_code?: number | null | undefined;
  signal?: string | null | undefined;
  error?: string | undefined;
  host?: string | undefined;
  started_at?: string | undefined;
  ended_at: string;
  duration_ms?: number | undefined;
  batch?: BatchRecord | undefined;
  /** The resource limits the attempt ran into, whatever its outcome (executors/limit-outcome.ts). */
  limit_hit?: string[] | undefined;
}

export interface HistoryEntry {
  at: string;
  from: JobStateName | null;
  to: JobStateName;
  queue?: string | undefined;
  reason: string;
}

/**
 * The runtime record of a job (`state.yaml`). It is written as JSON, which is valid YAML and a
 * hundred times faster to read back; hand edits in YAML are read too. Everything the dispatcher
 * needs to index a queued job is here, so start-up reads one file per job. This is the shape the
 * daemon changes in place as a job moves; what is read from disk is checked first against
 * `jobRecordSchema` (state-record.ts), whose `JobRecord` is the same record narrowed by state.
 */
export interface JobState {
  id: string;
  queue: string;
  state: JobStateName;
  type: string;
  host?: string | undefined;
  priority: number;
  /** Submission order within equal priority. */
  order: number;
  not_before?: string | undefined;
  after: string[];
  task?: string | undefined;
  timeout_ms?: number | undefined;
  submitted_at: string;
  attempts: number;
  /** Re-runs after a failure (on_fail) since the last manual retry: what on_fail's count limits. */
  retries: number;
  /** Attempts interrupted by the daemon, the machine or a host (not the job's failures). */
  interruptions?: number | undefined;
  running?: Attempt | undefined;
  last?: AttemptResult | undefined;
  results: AttemptResult[];
  cancel_requested?: string | undefined;
  /** While the running attempt is paused (dispatch/pause.ts): since when. A pause ends with its attempt. */
  paused_at?: string | undefined;
  /** Seconds the job spent paused, over all its attempts. */
  paused_seconds?: number | undefined;
  history: HistoryEntry[];
}

/** How often a state file that does not parse is read again before its error stands. */
const REREADS = 3;

export interface StateReadOptions {
  /** The caller holds the job's lock, so no write of this file can overlap the read. */
  locked?: boolean;
}

/**
 * A job's record, checked against its schema (state-record.ts): a record that is not valid YAML,
 * lacks a field its state needs, has one of the wrong type, names an unknown state or is larger
 * than MAX_STATE_BYTES is a JOB_INVALID error whose message names the file, the field and the
 * problem. Without the job's lock a write may overlap the read: the inode being read can
 * be overwritten in place as a later write's temp file (atomic.ts, writeFileRecycled), so such a
 * read is checked (`readWhole`); what still does not parse, or names another job, is read again.
 */
export function readJobState(dir: string, options: StateReadOptions = {}): JobState {
  return readJobRecord(dir, options);
}

/** The same record typed by its state, for readers that narrow on it (`r.state === 'done'`: `r.last`). */
export function readJobRecord(dir: string, options: StateReadOptions = {}): JobRecord {
  const file = `${dir}/${STATE_FILE}`;
  const id = path.basename(dir);
  const read = options.locked === true ? readStateFile : readWhole;
  let text = read(file);
  for (let again = 0; ; again++) {
    try {
      const state = parseText(text, jobRecordSchema, file, 'JOB_INVALID');
      if (state.id === id || !isJobId(id)) return state;
      throw new BatchdError('JOB_INVALID', `${file} is the record of job ${String(state.id)}, not ${id}`, {
        file,
      });
    } catch (error) {
      const reread = read(file);
      if (again >= REREADS || reread === text) throw error;
      text = reread;
    }
  }
}

/**
 * A job's record that this daemon wrote itself (`written`, as `serializeState` gave it) and that
 * may still be on disk as it was: when the file holds exactly that text, the record is taken from
 * it without the parse's schema check (a task job's claim, whose record was made moments before by
 * this process; the check cost as much as the claim's rewrite). Any other text (a change by a
 * control verb, another dispatcher or a hand edit) is read and checked as `readJobState` does.
 * The caller holds the job's lock. The record returned is a new object, never `written` itself.
 */
export function readJobStateWritten(dir: string, written: JobState): JobState {
  const file = `${dir}/${STATE_FILE}`;
  const text = readStateFile(file);
  const mine = serializeState(written);
  if (text === mine) return JSON.parse(text) as JobState;
  return readJobState(dir, { locked: true });
}

/** A file whose inode changed less than this long ago may have been written during a read. */
const QUIET_NS = 1_000_000_000n;
/** Reads of a file that keeps changing, before the last one is taken as it is. */
const WHOLE_TRIES = 10;

/**
 * A file's text, read while no write changed it. A file that had been quiet for a second when it
 * was read cannot have been written during the read (one `fstat` more than a plain read). Else it
 * is read again between two `fstat`s until they agree: the first one makes the kernel give the
 * inode's next change a fine-grained ctime (multigrain timestamps, Linux 6.13 and later), so any
 * write during the read shows. On kernels and file systems with coarse timestamps a write in the
 * same clock tick can still go unseen.
 */
function readWhole(file: string): string {
  for (let tries = 1; ; tries++) {
    const fd = openSync(file, 'r');
    try {
      const before = tries === 1 ? undefined : fstatSync(fd, { bigint: true });
      const text = readOpen(fd, file, MAX_STATE_BYTES);
      const after = fstatSync(fd, { bigint: true });
      const whole =
        before === undefined
          ? BigInt(Date.now()) * 1_000_000n - after.ctimeNs > QUIET_NS
          : before.ctimeNs === after.ctimeNs && before.size === after.size;
      if (whole || tries >= WHOLE_TRIES) return text;
    } finally {
      closeSync(fd);
    }
  }
}

/** One buffer for every small read: job files are read synchronously, one at a time. */
const smallReads = Buffer.allocUnsafe(64 * 1024);

/**
 * A job file's text in three system calls (open, read, close) into a reused buffer: start-up reads
 * one state.yaml per queued job, 100,000 of them in a deep queue. A larger file is read whole.
 */
function readSmallFile(file: string, limit = Infinity): string {
  const fd = openSync(file, 'r');
  try {
    return readOpen(fd, file, limit);
  } finally {
    closeSync(fd);
  }
}

/**
 * The most a job's record may hold. The daemon's own records stay far below it (a history entry
 * per move); a larger `state.yaml` was written by something else and is refused unread.
 */
export const MAX_STATE_BYTES = 64 * 1024 * 1024;

function readStateFile(file: string): string {
  return readSmallFile(file, MAX_STATE_BYTES);
}

/** From the start of the open file (`readSync` at position 0 leaves the offset there). */
function readOpen(fd: number, file: string, limit: number): string {
  const n = readSync(fd, smallReads, 0, smallReads.length, 0);
  if (n < smallReads.length) return smallReads.toString('utf8', 0, n);
  const size = fstatSync(fd).size;
  if (size > limit)
    throw new BatchdError(
      'JOB_INVALID',
      `${file}: ${size} bytes, more than a job's record may hold (${limit})`,
      {
        file,
      },
    );
  return readFileSync(fd, 'utf8');
}

/** `spares`: the dispatcher's pool, where the first rewrite takes its temp file from (atomic.ts). */
export function writeJobState(dir: string, state: JobState, durable: boolean, spares?: SparePool): void {
  writeFileRecycled(path.join(dir, STATE_FILE), serializeState(state), durable, spares);
}

export function serializeState(state: JobState): string {
  return JSON.stringify(state, null, 1) + '\n';
}

export function readJobSpec(dir: string): JobSpec {
  const file = `${dir}/${JOB_FILE}`;
  return loadText(readSmallFile(file), file) as JobSpec;
}

export function serializeSpec(spec: JobSpec): string {
  return JSON.stringify(spec, null, 1) + '\n';
}
