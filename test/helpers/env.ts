import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { stringify } from 'yaml';

/** A throw-away config folder and spool for one test. */
export interface TestEnv {
  root: string;
  etc: string;
  spool: string;
  /** Write etc/jobtypes/<name>.yaml (or schedules/, hosts/...). */
  writeConfig(relative: string, content: unknown): void;
  cleanup(): void;
}

export interface EnvOptions {
  /** Deep-merged over the test defaults of batchd.yaml. */
  config?: Record<string, unknown>;
  jobTypes?: Record<string, unknown>;
  schedules?: Record<string, unknown>;
  /** queue name → queue.yaml content (the queue folder is created). */
  queues?: Record<string, unknown>;
  /** Where the throw-away root is made (default: the OS temp folder), e.g. a tmpfs. */
  parent?: string;
}

export const TEST_DEFAULTS = {
  default_queue: 'default',
  manager: { enabled: false },
  dispatcher: { workers: 2, poll_timeout: 1, stable_time: 0.2, grace_time: 5, kill_grace: 1, lock_stale: 4 },
  logging: { level: 'info', format: 'json', target: 'stderr' },
};

export function makeEnv(options: EnvOptions = {}): TestEnv {
  const root = mkdtempSync(path.join(options.parent ?? tmpdir(), 'batchd-test-'));
  const etc = path.join(root, 'etc');
  const spool = path.join(root, 'spool');
  mkdirSync(etc);
  mkdirSync(spool);
  const writeConfig = (relative: string, content: unknown): void => {
    const file = path.join(etc, relative);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, typeof content === 'string' ? content : stringify(content));
  };
  writeConfig('batchd.yaml', merge(TEST_DEFAULTS, options.config ?? {}));
  for (const [name, type] of Object.entries(options.jobTypes ?? {}))
    writeConfig(`jobtypes/${name}.yaml`, type);
  for (const [name, schedule] of Object.entries(options.schedules ?? {}))
    writeConfig(`schedules/${name}.yaml`, schedule);
  for (const [name, settings] of Object.entries(options.queues ?? {})) {
    mkdirSync(path.join(spool, name), { recursive: true });
    if (settings !== undefined && settings !== null)
      writeFileSync(path.join(spool, name, 'queue.yaml'), stringify(settings));
  }
  return { root, etc, spool, writeConfig, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      b !== null &&
      typeof b === 'object' &&
      !Array.isArray(b) &&
      v !== null &&
      typeof v === 'object' &&
      !Array.isArray(v)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

let dropCounter = 0;

/** Drop a job file the Maildir way: write a dotfile, rename it into incoming/. Returns the final name. */
/**
 * A job's log as the daemon left it: its launcher creates stdout.log and stderr.log at the job's
 * first byte on each, so a stream the job never wrote to has no file, and reads as empty.
 */
export function readLog(dir: string, name: 'stdout.log' | 'stderr.log'): string {
  try {
    return readFileSync(path.join(dir, name), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

export function drop(spool: string, queue: string, content: unknown, name?: string): string {
  const incoming = path.join(spool, queue, 'incoming');
  mkdirSync(incoming, { recursive: true });
  const final = name ?? `job-${process.pid}-${++dropCounter}.yaml`;
  const tmp = path.join(incoming, `.${final}.tmp`);
  writeFileSync(tmp, typeof content === 'string' ? content : stringify(content));
  renameSync(tmp, path.join(incoming, final));
  return final;
}

/** Entries of a queue's folder: job ids for state folders (finished states are sharded by date), names otherwise. */
export function jobsIn(spool: string, queue: string, state: string): string[] {
  const dir = path.join(spool, queue, state);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  if (!['done', 'failed', 'cancelled'].includes(state)) return entries.filter((e) => !e.startsWith('.'));
  return entries.filter((e) => /^\d{8}$/.test(e)).flatMap((shard) => readdirSync(path.join(dir, shard)));
}

export function jobDir(spool: string, queue: string, state: string, id: string): string {
  return state === 'queued' || state === 'running'
    ? path.join(spool, queue, state, id)
    : path.join(spool, queue, state, id.slice(0, 8), id);
}

export interface BatchRecord {
  controller: string;
  id?: string;
  state?: string;
  reason?: string;
}

export interface StateFile {
  id: string;
  queue: string;
  state: string;
  attempts: number;
  retries: number;
  /** Attempts interrupted by the daemon, the machine or a host. */
  interruptions?: number;
  priority: number;
  task?: string;
  last?: {
    outcome: string;
    exit_code?: number | null;
    signal?: string | null;
    error?: string;
    started_at?: string;
    ended_at?: string;
    /** A job run by a batch system (Slurm): its id there and how it saw the end. */
    batch?: BatchRecord;
  };
  results: {
    attempt: number;
    outcome: string;
    exit_code?: number | null;
    error?: string;
    batch?: BatchRecord;
  }[];
  history: { from: string | null; to: string; queue?: string; reason: string }[];
}

export function readState(spool: string, queue: string, state: string, id: string): StateFile {
  return JSON.parse(
    readFileSync(path.join(jobDir(spool, queue, state, id), 'state.yaml'), 'utf8'),
  ) as StateFile;
}

/** Where a job is now: every state folder of every queue is looked at. */
export function findJob(spool: string, id: string): { queue: string; state: string }[] {
  const found: { queue: string; state: string }[] = [];
  for (const queue of readdirSync(spool)) {
    if (queue.startsWith('.')) continue;
    for (const state of ['queued', 'running', 'done', 'failed', 'cancelled']) {
      if (jobsIn(spool, queue, state).includes(id)) found.push({ queue, state });
    }
  }
  return found;
}

/** Poll until `check` returns a truthy value (or throw after `timeoutMs`). */
export async function waitFor<T>(
  check: () => T | undefined | false | null,
  timeoutMs = 15_000,
  what = 'condition',
  /** Between checks; raise it for checks that read large folders. */
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false && value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
