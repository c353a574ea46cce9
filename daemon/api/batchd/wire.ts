import { BatchdError } from '../../errors.ts';
import type { Counts } from '../../protocol/common.ts';
import type { JobTypeInfo } from '../../protocol/config.ts';
import type { AttemptResult, JobInfo } from '../../protocol/jobs.ts';
import type { JobStateName } from '../../jobs/status.ts';

/**
 * batchd's wire format (Batchd.Common.Types / Data): the JSON its clients parse. Our states map onto
 * its statuses; `cancelled` has no batchd name and shows as Failed (its clients would refuse
 * anything else), with the notes saying why.
 */
export const BATCHD_STATUSES = ['New', 'Waiting', 'Processing', 'Done', 'Failed', 'Postponed'] as const;
export type BatchdStatus = (typeof BATCHD_STATUSES)[number];

export const STATUS_OF_STATE = {
  queued: 'New',
  running: 'Processing',
  done: 'Done',
  failed: 'Failed',
  cancelled: 'Failed',
} as const satisfies Record<JobStateName, BatchdStatus>;

/** `?status=` (batchd's lowercase status or `all`) → our states; Waiting and Postponed never occur here. */
export function statesOf(filter: string | undefined): JobStateName[] | 'all' {
  switch ((filter ?? 'new').toLowerCase()) {
    case 'all':
      return 'all';
    case 'new':
      return ['queued'];
    case 'processing':
      return ['running'];
    case 'done':
      return ['done'];
    case 'failed':
      return ['failed', 'cancelled'];
    case 'waiting':
    case 'postponed':
      return [];
    default:
      throw new BatchdError(
        'REQUEST_INVALID',
        `Invalid status ${JSON.stringify(filter)}: expected new, waiting, processing, done, failed, postponed or all`,
      );
  }
}

/** batchd's JobInfo (id, seq and the last result's fields included). */
export interface BatchdJob {
  id: number;
  queue: string;
  type: string;
  seq: number;
  user_name: string;
  create_time: string;
  start_time: string | null;
  status: BatchdStatus;
  try_count: number;
  host_name: string | null;
  notes: string | null;
  result_time: string | null;
  exit_code: number | null;
  stdout: string | null;
  stderr: string | null;
  params: Record<string, string>;
}

/** `seq` is the job's place in its queue (seq.ts). */
export function toBatchdJob(job: JobInfo, number: number, seq: number): BatchdJob {
  return {
    id: number,
    queue: job.queue,
    type: job.type,
    seq,
    user_name: job.user ?? 'anonymous',
    create_time: utc(job.submitted_at) as string,
    start_time: utc(job.not_before),
    status: STATUS_OF_STATE[job.status],
    // batchd counts retries, not runs.
    try_count: Math.max(0, job.attempts - 1),
    host_name: job.host,
    notes: job.status === 'cancelled' ? withCancelNote(job.notes) : job.notes,
    result_time: utc(job.ended_at),
    exit_code: job.exit_code,
    stdout: null,
    stderr: null,
    params: Object.fromEntries(Object.entries(job.params).map(([k, v]) => [k, String(v)])),
  };
}

function withCancelNote(notes: string | null): string {
  return notes === null || notes === '' ? 'cancelled' : `cancelled; ${notes}`;
}

/** batchd's times are UTC with fractional seconds (its Python client's strptime needs the fraction). */
export function utc(time: string | null | undefined): string | null {
  if (time === null || time === undefined) return null;
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? time : date.toISOString();
}

/** A JobResult row: one per attempt (batchd wrote one per output line; its clients join them). */
export interface BatchdResult {
  job_id: number;
  time: string;
  exit_code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The attempts as rows. The logs hold every attempt's output, so they go on the newest row only (the
 * clients concatenate rows); a job running now, or one whose output has no ended attempt, gets a
 * row without an exit code.
 */
export function toResults(
  number: number,
  attempts: readonly AttemptResult[],
  logs: { stdout: string; stderr: string },
  running: boolean,
): BatchdResult[] {
  const rows: BatchdResult[] = attempts.map((a) => ({
    job_id: number,
    time: utc(a.ended_at) as string,
    exit_code: a.exit_code ?? null,
    stdout: '',
    stderr: a.error ?? '',
  }));
  const hasOutput = logs.stdout !== '' || logs.stderr !== '';
  if (running || (rows.length === 0 && hasOutput)) {
    rows.push({ job_id: number, time: new Date().toISOString(), exit_code: null, stdout: '', stderr: '' });
  }
  const last = rows.at(-1);
  if (last !== undefined) {
    last.stdout = logs.stdout;
    last.stderr =
      last.stderr === '' ? logs.stderr : `${logs.stderr}${logs.stderr === '' ? '' : '\n'}${last.stderr}`;
  }
  return rows;
}

/** batchd's ByStatus: lowercase status names, zero counts left out. */
export function toByStatus(counts: Counts): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (key: string, n: number): void => {
    if (n > 0) out[key] = (out[key] ?? 0) + n;
  };
  add('new', counts.queued);
  add('processing', counts.running);
  add('done', counts.done);
  add('failed', counts.failed);
  add('failed', counts.cancelled);
  return out;
}

/** The parameter types batchd's clients know; ours beyond them are entered as text. */
const BATCHD_PARAM_TYPES = new Set(['String', 'Integer', 'InputFile', 'OutputFile']);

/** batchd's JobType JSON. `Script` (shell code, the built-in command type's) is a String to its clients. */
export function toBatchdType(type: JobTypeInfo): Record<string, unknown> {
  return {
    name: type.name,
    title: type.title,
    syntax: type.syntax,
    template: type.template,
    on_fail: type.on_fail,
    host_name: type.host_name,
    max_jobs: type.max_jobs,
    params: type.params.map((p) => ({
      name: p.name,
      type: BATCHD_PARAM_TYPES.has(p.type) ? p.type : 'String',
      title: p.title,
      default: p.default === null ? '' : String(p.default),
    })),
  };
}
