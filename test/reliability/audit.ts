import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import { jobDir, jobsIn } from '../helpers/env.ts';
import type { LedgerLine, OnFailMode } from './harness.ts';

/**
 * Reads a whole spool back and checks it against what a test submitted and what its jobs wrote to
 * the ledger. Every violation becomes one line of text, so a failing run lists all of them.
 */

const STATES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;

interface Result {
  attempt: number;
  outcome: string;
}

export interface FoundJob {
  id: string;
  queue: string;
  folder: string;
  /** `name` of the job file, plus `#index` for a task's jobs. */
  key: string | undefined;
  state:
    | {
        state: string;
        attempts: number;
        interruptions?: number;
        results: Result[];
        last?: Result;
        history?: { at: string; from: string | null; to: string; reason: string }[];
      }
    | undefined;
  unreadable?: string;
}

export interface SpoolSnapshot {
  jobs: FoundJob[];
  /** `queue/folder/name` of everything in incoming/, .staging/ and rejected/. */
  leftovers: string[];
}

export function queuesOf(spool: string): string[] {
  return readdirSync(spool).filter((q) => !q.startsWith('.') && statSync(path.join(spool, q)).isDirectory());
}

export function snapshot(spool: string): SpoolSnapshot {
  const jobs: FoundJob[] = [];
  const leftovers: string[] = [];
  for (const queue of queuesOf(spool)) {
    for (const folder of STATES) {
      for (const id of jobsIn(spool, queue, folder)) {
        const dir = jobDir(spool, queue, folder, id);
        try {
          const spec = JSON.parse(readFileSync(path.join(dir, 'job.yaml'), 'utf8')) as {
            name?: string;
            task?: { index: number };
          };
          const state = JSON.parse(readFileSync(path.join(dir, 'state.yaml'), 'utf8')) as FoundJob['state'];
          const key =
            spec.name === undefined
              ? undefined
              : spec.task === undefined
                ? spec.name
                : `${spec.name}#${spec.task.index}`;
          jobs.push({ id, queue, folder, key, state });
        } catch (error) {
          jobs.push({
            id,
            queue,
            folder,
            key: undefined,
            state: undefined,
            unreadable: (error as Error).message,
          });
        }
      }
    }
    for (const folder of ['incoming', '.staging', 'rejected']) {
      let names: string[] = [];
      try {
        names = readdirSync(path.join(spool, queue, folder));
      } catch {
        // no such folder
      }
      for (const name of names)
        if (!(folder === 'incoming' && name.startsWith('.'))) leftovers.push(`${queue}/${folder}/${name}`);
    }
  }
  return { jobs, leftovers };
}

export interface AuditOptions {
  /** key → how many jobs it stands for, and whether it was a task. */
  submitted: ReadonlyMap<string, { jobs: number; task: boolean }>;
  ledger: ReadonlyMap<string, LedgerLine[]>;
  onFail: OnFailMode;
}

export interface AuditStats {
  jobs: number;
  done: number;
  failed: number;
  /** Jobs that ran more than once (each re-run recorded as an interrupted attempt). */
  reran: number;
  /** Attempts recorded as interrupted. */
  interrupted: number;
  /** Runs started, from the ledger. */
  runs: number;
  /** The story of a few jobs that were interrupted, for the log. */
  examples: string[];
}

export interface Audit {
  problems: string[];
  stats: AuditStats;
}

/** Check a finished spool: call it once nothing is queued or running any more. */
export function audit(snap: SpoolSnapshot, options: AuditOptions): Audit {
  const problems: string[] = [];
  const stats: AuditStats = {
    jobs: snap.jobs.length,
    done: 0,
    failed: 0,
    reran: 0,
    interrupted: 0,
    runs: 0,
    examples: [],
  };

  for (const leftover of snap.leftovers) problems.push(`left over: ${leftover}`);

  const folders = new Map<string, string[]>();
  for (const job of snap.jobs)
    folders.set(job.id, [...(folders.get(job.id) ?? []), `${job.queue}/${job.folder}`]);
  for (const [id, where] of folders)
    if (where.length > 1) problems.push(`job ${id} is in ${where.length} state folders: ${where.join(', ')}`);

  const byKey = new Map<string, string[]>();
  for (const job of snap.jobs) {
    if (job.unreadable !== undefined) {
      problems.push(`job ${job.id} in ${job.queue}/${job.folder} is unreadable: ${job.unreadable}`);
      continue;
    }
    if (job.key === undefined) {
      problems.push(`job ${job.id} was never submitted (no name)`);
      continue;
    }
    byKey.set(job.key, [...(byKey.get(job.key) ?? []), job.id]);
  }
  for (const [key, { jobs, task }] of options.submitted) {
    const wanted = task ? Array.from({ length: jobs }, (_, i) => `${key}#${i}`) : [key];
    for (const k of wanted) {
      const ids = byKey.get(k) ?? [];
      if (ids.length === 0) problems.push(`lost: submission ${k} is in no state folder`);
      if (ids.length > 1)
        problems.push(`submission ${k} was accepted ${ids.length} times: ${ids.join(', ')}`);
      byKey.delete(k);
    }
  }
  for (const [key, ids] of byKey) problems.push(`unexpected jobs for ${key}: ${ids.join(', ')}`);

  const seen = new Set<string>();
  for (const job of snap.jobs) {
    if (job.state === undefined || seen.has(job.id)) continue;
    seen.add(job.id);
    const lines = options.ledger.get(job.id) ?? [];
    stats.runs += lines.filter((l) => l.event === 'start').length;
    problems.push(...checkJob(job, lines, options.onFail, stats));
  }
  for (const id of options.ledger.keys())
    if (!folders.has(id)) problems.push(`the ledger has runs of ${id}, which is in no state folder`);
  return { problems, stats };
}

function checkJob(job: FoundJob, lines: LedgerLine[], onFail: OnFailMode, stats: AuditStats): string[] {
  const problems: string[] = [];
  const state = job.state;
  if (state === undefined) return problems;
  const at = `job ${job.id} (${job.key ?? '?'}, ${job.folder})`;
  if (state.state !== job.folder) problems.push(`${at}: state.yaml says ${state.state}`);
  if (job.folder === 'queued' || job.folder === 'running') problems.push(`${at}: not finished`);
  if (job.folder === 'cancelled') problems.push(`${at}: cancelled, though nobody cancelled it`);
  if (job.folder === 'done') stats.done += 1;
  if (job.folder === 'failed') stats.failed += 1;

  const starts = lines.filter((l) => l.event === 'start');
  const attempts = starts.map((l) => l.attempt);
  const twice = attempts.filter((a, i) => attempts.indexOf(a) !== i);
  for (const a of new Set(twice)) {
    const by = starts.filter((l) => l.attempt === a).map((l) => l.dispatcher);
    problems.push(`${at}: attempt ${a} ran ${by.length} times (dispatchers ${by.join(', ')})`);
  }
  const recorded = new Map<number, string>();
  for (const r of state.results) {
    if (recorded.has(r.attempt)) problems.push(`${at}: attempt ${r.attempt} has two results`);
    recorded.set(r.attempt, r.outcome);
  }
  const interrupted = state.results.filter((r) => r.outcome === 'interrupted').length;
  stats.interrupted += interrupted;
  if (new Set(attempts).size > 1) stats.reran += 1;
  if (interrupted > 0 && stats.examples.length < 3) {
    const story = (state.history ?? []).map((h) => `${h.at} ${h.from ?? '-'}->${h.to} (${h.reason})`);
    const runs = starts.map((l) => `attempt ${l.attempt} by ${l.dispatcher}`);
    stats.examples.push(`${job.id}: ${story.join('; ')}; ran: ${runs.join(', ')}`);
  }
  for (const r of state.results) {
    if (r.outcome !== 'success' && r.outcome !== 'interrupted')
      problems.push(`${at}: attempt ${r.attempt} ended ${r.outcome}`);
  }
  for (const a of new Set(attempts)) {
    if (a > state.attempts)
      problems.push(`${at}: attempt ${a} ran, but state.yaml counts ${state.attempts} attempts`);
    const outcome = recorded.get(a);
    if (outcome === 'success') continue;
    // A run the state does not call interrupted is a run nobody accounts for: a double run.
    if (outcome !== 'interrupted')
      problems.push(`${at}: attempt ${a} ran, but state.yaml records ${outcome ?? 'no result'} for it`);
  }
  if (job.folder === 'done') {
    const success = state.results.filter((r) => r.outcome === 'success');
    if (success.length !== 1) problems.push(`${at}: ${success.length} successful attempts recorded`);
    else if (!attempts.includes(success[0]?.attempt ?? -1))
      problems.push(`${at}: success recorded for attempt ${success[0]?.attempt}, which never ran`);
  }
  // An interruption is not the job's failure: whatever on_fail says, an interrupted job runs
  // again (the loop allows more interruptions than it can cause), and every job ends done.
  if (job.folder !== 'done')
    problems.push(
      `${at}: ended in ${job.folder} (last: ${state.last?.outcome}); with on_fail ${onFail} every job must end done`,
    );
  if ((state.interruptions ?? 0) !== interrupted)
    problems.push(
      `${at}: ${interrupted} interrupted attempts, but state.yaml counts ${state.interruptions ?? 0}`,
    );
  return problems;
}

/** The first problems of a long list, so a failing run stays readable. */
export function clip(problems: string[], max = 25): string[] {
  return problems.length <= max
    ? problems
    : [...problems.slice(0, max), `... and ${problems.length - max} more`];
}

export function summary(stats: AuditStats): string {
  const examples = stats.examples.map((e) => `\n  e.g. ${e}`).join('');
  return `${stats.jobs} jobs: ${stats.done} done, ${stats.failed} failed; ${stats.runs} runs; ${stats.reran} re-ran after an interruption; ${stats.interrupted} interrupted attempts recorded${examples}`;
}
