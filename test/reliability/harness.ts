import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { stringify } from 'yaml';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { jobsIn, type TestEnv, waitFor } from '../helpers/env.ts';

/**
 * The pieces the reliability tests share: a seeded random source (every run is reproducible from
 * its seed), the ledger job type, drops that carry their own identity, and daemons marked so that
 * every process they leave behind can be found.
 */

/** Set BATCHD_RELIABILITY_SEED to replay a run; each test prints the seed it used. */
export const SEED = Number(process.env.BATCHD_RELIABILITY_SEED ?? 20261121);

export interface Random {
  /** [0, 1) */
  next(): number;
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
}

/** mulberry32: small, fast, and good enough to spread kill moments and mutations. */
export function random(seed: number): Random {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: (items) => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[Math.floor(next() * items.length)] as (typeof items)[number];
    },
  };
}

export type OnFailMode = 'retry' | 'continue';

/**
 * A job type whose every run appends `start <id> <attempt> <dispatcher>` to a ledger before it
 * pauses and `end ...` after; what ran, how often and where is read back from that file.
 */
export function ledgerJobType(ledger: string, onFail: OnFailMode): Record<string, unknown> {
  const line = '$BATCHD_JOB_ID $BATCHD_ATTEMPT ${DISPATCHER:-d}';
  return {
    title: 'Append to the reliability ledger',
    template: [
      `echo "start ${line}" >> "$LEDGER"`,
      'if [ "$pause" != 0 ]; then sleep "$pause"; fi',
      `echo "end ${line}" >> "$LEDGER"`,
    ],
    params: [{ name: 'pause', type: 'Float', default: 0, min: 0 }],
    on_fail: onFail === 'retry' ? { retry: { when: 'now', count: 1000 } } : 'continue',
    environment: { LEDGER: ledger },
  };
}

export interface LedgerLine {
  event: 'start' | 'end';
  attempt: number;
  dispatcher: string;
}

export function readLedger(file: string): Map<string, LedgerLine[]> {
  const byJob = new Map<string, LedgerLine[]>();
  if (!existsSync(file)) return byJob;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [event, id, attempt, dispatcher] = line.split(' ');
    if ((event !== 'start' && event !== 'end') || id === undefined) continue;
    const list = byJob.get(id) ?? [];
    list.push({ event, attempt: Number(attempt), dispatcher: dispatcher ?? '?' });
    byJob.set(id, list);
  }
  return byJob;
}

/**
 * The jobs a test submitted, by key: a single drop is one job, a task drop `count` jobs. The key
 * travels in the job file's `name:` field, so it survives renames of the drop (a task whose
 * acceptance was interrupted comes back as `recovered-...`).
 */
export class Submissions {
  readonly expected = new Map<string, { jobs: number; task: boolean }>();
  #n = 0;

  get jobs(): number {
    let total = 0;
    for (const { jobs } of this.expected.values()) total += jobs;
    return total;
  }

  /** Drop one ledger job (or a task of `pauses.length` jobs) the Maildir way; returns its key. */
  drop(spool: string, queue: string, pauses: number | number[]): string {
    const key = `${Array.isArray(pauses) ? 't' : 's'}${String(++this.#n).padStart(5, '0')}`;
    const incoming = path.join(spool, queue, 'incoming');
    mkdirSync(incoming, { recursive: true });
    const tmp = path.join(incoming, `.${key}.tmp`);
    writeFileSync(tmp, stringify({ type: 'ledger', name: key, params: { pause: pauses } }));
    renameSync(tmp, path.join(incoming, `${key}.yaml`));
    this.expected.set(
      key,
      Array.isArray(pauses) ? { jobs: pauses.length, task: true } : { jobs: 1, task: false },
    );
    return key;
  }
}

/** A random pause: most jobs are instant, some run long enough to be caught by a kill. */
export function pauseOf(rng: Random): number {
  return rng.chance(0.8) ? 0 : rng.int(10, 200) / 1000;
}

/** Start a daemon whose every process (itself, its launcher, its jobs) carries the test's mark. */
export function startMarked(
  env: TestEnv,
  options: { dispatcher?: string; waitReady?: boolean; spool?: string } = {},
): Promise<DaemonProcess> {
  return startDaemon(env.etc, options.spool ?? env.spool, {
    waitReady: options.waitReady,
    env: { BATCHD_TEST_MARK: env.root, DISPATCHER: options.dispatcher ?? 'd' },
  });
}

/** Live processes carrying the mark: daemons, launchers and jobs started for this test. */
export function markedProcesses(mark: string): number[] {
  const needle = `BATCHD_TEST_MARK=${mark}\0`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').includes(needle) && isAlive(Number(entry)))
        pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** Kill what a test left behind (by PID: only processes carrying its own mark). */
export function killMarked(mark: string): void {
  for (const pid of markedProcesses(mark)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/** How many jobs are in each state folder of some queues (cheap: directory listings only). */
export function countStates(spool: string, queues: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {
    incoming: 0,
    staging: 0,
    queued: 0,
    running: 0,
    done: 0,
    failed: 0,
    cancelled: 0,
  };
  for (const queue of queues) {
    for (const state of ['queued', 'running', 'done', 'failed', 'cancelled'])
      counts[state] = (counts[state] ?? 0) + jobsIn(spool, queue, state).length;
    counts.incoming = (counts.incoming ?? 0) + jobsIn(spool, queue, 'incoming').length;
    counts.staging = (counts.staging ?? 0) + listAll(path.join(spool, queue, '.staging')).length;
  }
  return counts;
}

/**
 * Wait until every submitted job has finished and nothing is left to take; on a timeout, say so
 * instead of throwing, so the audit still runs and lists what went wrong.
 */
export async function waitUntilFinished(
  spool: string,
  queues: readonly string[],
  jobs: number,
  timeoutMs: number,
): Promise<string | undefined> {
  let last: Record<string, number> = {};
  try {
    await waitFor(
      () => {
        last = countStates(spool, queues);
        return (
          last.incoming === 0 &&
          last.staging === 0 &&
          last.queued === 0 &&
          last.running === 0 &&
          (last.done ?? 0) + (last.failed ?? 0) + (last.cancelled ?? 0) >= jobs
        );
      },
      timeoutMs,
      'every job to finish',
    );
    return undefined;
  } catch {
    return `not all ${jobs} jobs finished within ${timeoutMs / 1000} s: ${JSON.stringify(last)}`;
  }
}

export function listAll(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
