import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';

import { loadText } from '../config/parse.ts';
import { BatchdError } from '../errors.ts';
import { isJobId } from '../jobs/id.ts';
import type { JobSpec } from '../jobs/spec.ts';
import type { JobStateName, Outcome } from '../jobs/status.ts';
import { writeFileRecycled } from './atomic.ts';
import type { SparePool } from './spares.ts';

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
 * needs to index a queued job is here, so start-up reads one file per job.
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
  /** Attempts made since the last manual retry: what on_fail's count limits. */
  retries: number;
  running?: Attempt | undefined;
  last?: AttemptResult | undefined;
  results: AttemptResult[];
  cancel_requested?: string | undefined;
  history: HistoryEntry[];
}

/** How often a state file that does not parse is read again before its error stands. */
const REREADS = 3;

export function readJobState(dir: string): JobState {
  const file = `${dir}/${STATE_FILE}`;
  const id = path.basename(dir);
  let text = readSmallFile(file);
  for (let again = 0; ; again++) {
    try {
      const state = loadText(text, file) as JobState;
      if (state.id === id || !isJobId(id)) return state;
      throw new BatchdError('JOB_INVALID', `${file} is the record of job ${String(state.id)}, not ${id}`, {
        file,
      });
    } catch (error) {
      // A reader in another process can catch an inode of a state file being overwritten as the
      // next write's temp (atomic.ts, writeFileRecycled): half of it, or another job's record (a
      // pooled spare). A second read sees a whole version.
      const reread = readSmallFile(file);
      if (again >= REREADS || reread === text) throw error;
      text = reread;
    }
  }
}

/** One buffer for every small read: job files are read synchronously, one at a time. */
const smallReads = Buffer.allocUnsafe(64 * 1024);

/**
 * A job file's text in three system calls (open, read, close) into a reused buffer: start-up reads
 * one state.yaml per queued job, 100,000 of them in a deep queue. A larger file is read whole.
 */
function readSmallFile(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const n = readSync(fd, smallReads, 0, smallReads.length, 0);
    if (n < smallReads.length) return smallReads.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
  return readFileSync(file, 'utf8');
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
