import type { BatchStatus } from '../../daemon/plugins/api.ts';

/**
 * What `squeue` says about a job, as batchd needs it. A job Slurm has forgotten (finished longer
 * than its `MinJobAge` ago; without slurmdbd there is no `sacct`) is `gone`: its exit file tells.
 */
export type SlurmStatus = BatchStatus;

/** One row of the status query (`-O` fields, in this order). */
export const SQUEUE_FIELDS = ['JobArrayID', 'JobID', 'State', 'Reason', 'exit_code', 'Name', 'Comment'];
export const SQUEUE_FORMAT = SQUEUE_FIELDS.map((f) => `${f}:|`).join(',');

export interface SqueueRow {
  /** `12`, or an array element's `5_3` (an array's pending elements come as `5_[2-4%2]`). */
  id: string;
  state: string;
  reason: string;
  /** The wait status Slurm reports: exit code × 256 + signal. */
  waitStatus: number;
  name: string;
  comment: string;
}

const PENDING = new Set(['PENDING', 'CONFIGURING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED']);
const ENDED = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'NODE_FAIL',
  'OUT_OF_MEMORY',
  'PREEMPTED',
  'BOOT_FAIL',
  'DEADLINE',
  'SPECIAL_EXIT',
]);

export function parseSqueue(stdout: string): SqueueRow[] {
  const rows: SqueueRow[] = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const [id, , state, reason, status, name, ...comment] = line.split('|');
    if (id === undefined || state === undefined) continue;
    rows.push({
      id: id.trim(),
      state: state.trim(),
      reason: reason?.trim() ?? '',
      waitStatus: Number.parseInt(status ?? '0', 10) || 0,
      name: name?.trim() ?? '',
      // The field list ends with a separator: drop what follows the last one.
      comment: comment.slice(0, -1).join('|').trim(),
    });
  }
  return rows;
}

export function statusOf(row: SqueueRow): SlurmStatus {
  // COMPLETING: the script ended but Slurm still cleans up; its files may not be complete yet.
  if (PENDING.has(row.state)) return { phase: 'pending', state: row.state, reason: row.reason };
  if (!ENDED.has(row.state)) return { phase: 'running', state: row.state, reason: row.reason };
  const signal = row.waitStatus & 0x7f;
  return {
    phase: 'ended',
    state: row.state,
    reason: row.reason,
    exitCode: signal === 0 ? (row.waitStatus >> 8) & 0xff : null,
    signal: signal === 0 ? null : signal,
  };
}

/** `5_[0-3,7%2]` → `5_0 … 5_3, 5_7`; any other id → itself. */
export function expandArrayId(id: string): string[] {
  const match = /^(\d+)_\[([^\]%]+)(?:%\d+)?\]$/.exec(id);
  if (match === null) return [id];
  const [, base, ranges] = match;
  const ids: string[] = [];
  for (const range of (ranges ?? '').split(',')) {
    const [from, to] = range.split('-').map((n) => Number.parseInt(n, 10));
    if (from === undefined || Number.isNaN(from)) continue;
    const last = to === undefined || Number.isNaN(to) ? from : to;
    for (let n = from; n <= last; n++) ids.push(`${base}_${n}`);
  }
  return ids;
}

/** The id squeue and scancel take for a job or all of an array (`5_3` → `5`). */
export function baseId(id: string): string {
  const underscore = id.indexOf('_');
  return underscore === -1 ? id : id.slice(0, underscore);
}
