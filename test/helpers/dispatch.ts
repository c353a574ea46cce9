import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

import { pino } from 'pino';

import { Daemon } from '../../daemon/daemon.ts';
import { drop, findJob, jobsIn, makeEnv, type EnvOptions, type TestEnv, waitFor } from './env.ts';

/** Test settings for in-process daemons: short grace so stop() does not wait on long jobs. */
export function makeDispatchEnv(options: EnvOptions = {}): TestEnv {
  const dispatcher = {
    grace_time: 0.3,
    ...(options.config?.dispatcher as Record<string, unknown> | undefined),
  };
  return makeEnv({ ...options, config: { ...options.config, dispatcher } });
}

/** Run the daemon in this process (much faster than a process per test); its jobs are real processes. */
export function startInProcess(env: TestEnv): Promise<Daemon> {
  return Daemon.start({
    configDir: env.etc,
    spool: env.spool,
    logger: pino({ level: process.env.BATCHD_TEST_LOG ?? 'silent' }),
  });
}

/** Drop a job file and wait until it has been accepted; returns its id. */
export async function dropJob(env: TestEnv, queue: string, content: unknown, name: string): Promise<string> {
  drop(env.spool, queue, content, `${name}.yaml`);
  return waitFor(
    () => {
      for (const state of ['queued', 'running', 'done', 'failed', 'cancelled']) {
        const id = jobsIn(env.spool, queue, state).find((entry) => entry.endsWith(`-${name}`));
        if (id !== undefined) return id;
      }
      return undefined;
    },
    10_000,
    `job ${name} accepted`,
  );
}

/** Wait until a job is in `state` (in any queue). */
export function waitForState(
  env: TestEnv,
  id: string,
  state: string,
  timeoutMs = 15_000,
): Promise<{ queue: string; state: string }> {
  return waitFor(
    () => findJob(env.spool, id).find((w) => w.state === state),
    timeoutMs,
    `job ${id} ${state}`,
  );
}

/** Where a job is now (one place, or it throws). */
export function stateOf(env: TestEnv, id: string): string {
  const found = findJob(env.spool, id);
  if (found.length !== 1) throw new Error(`job ${id} is in ${found.length} places: ${JSON.stringify(found)}`);
  return found[0]?.state ?? '';
}

/** A plain-file request, written the Maildir way (a dotfile renamed into place). */
export function request(env: TestEnv, queue: string, id: string, verb: string, content = ''): string {
  const dir = path.join(env.spool, queue, 'requests');
  mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${id}.${verb}.tmp`);
  writeFileSync(tmp, content);
  const file = path.join(dir, `${id}.${verb}`);
  renameSync(tmp, file);
  return file;
}

/** A folder the test owns for marker files its jobs write. */
export function workDir(env: TestEnv): string {
  const dir = path.join(env.root, 'work');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Shell code that waits until `file` exists: a job that runs until the test lets it go. */
export function blockUntil(file: string): string {
  return `while [ ! -e '${file}' ]; do sleep 0.05; done`;
}

/** Shell code appending `label` to a ledger file, so the order jobs ran in can be read back. */
export function record(ledger: string, label: string): string {
  return `echo ${label} >> '${ledger}'`;
}

export function ledger(file: string): string[] {
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
    : [];
}

/** Shell code recording when a job starts and ends (nanoseconds), around `sleep seconds`. */
export function timed(ledgerFile: string, label: string, seconds: number): string {
  return `echo "${label} start $(date +%s%N)" >> '${ledgerFile}'; sleep ${seconds}; echo "${label} end $(date +%s%N)" >> '${ledgerFile}'`;
}

/** The most jobs of the ledger that ran at the same time (optionally only labels matching). */
export function maxConcurrency(ledgerFile: string, match: (label: string) => boolean = () => true): number {
  const events = ledger(ledgerFile)
    .map((line) => line.split(' '))
    .filter(([label]) => match(label ?? ''))
    .map(([, what, ns]) => ({ at: BigInt(ns ?? '0'), delta: what === 'start' ? 1 : -1 }))
    // Ends before starts at the same instant: touching intervals do not overlap.
    .sort((a, b) => (a.at === b.at ? a.delta - b.delta : a.at < b.at ? -1 : 1));
  let now = 0;
  let max = 0;
  for (const e of events) {
    now += e.delta;
    max = Math.max(max, now);
  }
  return max;
}

/** Whether a process exists and has not exited (a zombie waiting for its reaper counts as gone). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // "<pid> (<comm>) <state> ...": the state follows the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function touch(file: string): void {
  appendFileSync(file, '');
}

export function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

export function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}
