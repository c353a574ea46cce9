import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

import { z } from 'zod';

import { NAME_PATTERN } from '../config/schema.ts';
import { errnoCode } from '../errors.ts';
import type { JobSpec } from '../jobs/spec.ts';
import { fsyncDir, writeFileAtomic } from './atomic.ts';
import { writeInChunks } from './chunked-write.ts';
import type { SpoolLayout } from './layout.ts';
import { ownerMayBeAlive, SELF } from './owner.ts';
import type { Owner } from './state-file.ts';

/**
 * A task on disk, `<queue>/tasks/<name>/`, committed by one rename of the folder:
 * - `task.yaml`: its name, queue, count and job ids in order (what readers of a task need);
 * - `specs.jsonl`: every job's spec and ordering, one line per job, in the task's order;
 * - `made.json`: how many of its jobs, from the first, have their folders (made in order, a
 *   chunk ahead of the dispatcher), and which process makes the rest; removed once all are made.
 * A job at an index below `made` that has no folder left was purged; one at or above it is queued
 * and not made yet. A task without `made.json` has all its folders made (so has every task
 * accepted before this format).
 */
export const TASK_FILE = 'task.yaml';
export const SPECS_FILE = 'specs.jsonl';
export const MADE_FILE = 'made.json';

/** One line of `specs.jsonl`. */
export interface TaskJobLine {
  order: number;
  spec: JobSpec;
}

export interface MadeMark {
  made: number;
  count: number;
  owner: Owner;
}

const madeSchema = z.object({
  made: z.int().min(0),
  count: z.int().min(0),
  owner: z.object({ hostname: z.string(), boot_id: z.string(), pid: z.int() }),
});

/**
 * Write `task.yaml`: the bytes of `JSON.stringify(listing, null, 1)` (name, queue, submitted_at,
 * count, jobs), streamed: no array of the ids and no string of the whole file is made.
 */
export function writeTaskListing(
  file: string,
  name: string,
  queue: string,
  jobs: readonly { spec: JobSpec }[],
): void {
  const listing = { name, queue, submitted_at: jobs[0]?.spec.submitted_at, count: jobs.length, jobs: [] };
  const empty = JSON.stringify(listing, null, 1); // ends with `"jobs": []\n}`
  const id = (i: number): string => JSON.stringify((jobs[i] as { spec: JobSpec }).spec.id);
  writeInChunks(file, (put) => {
    if (jobs.length === 0) {
      put(empty + '\n');
      return;
    }
    put(empty.slice(0, -'[]\n}'.length) + '[\n');
    const last = jobs.length - 1;
    for (let i = 0; i < last; i++) put(`  ${id(i)},\n`);
    put(`  ${id(last)}\n ]\n}\n`);
  });
}

/**
 * Write `specs.jsonl`: one line per job, `JSON.stringify({order, spec})`, streamed (a task's
 * 100,000 lines are 30 MB: no string of the whole file is made).
 */
export function writeTaskJobs(
  file: string,
  jobs: readonly { spec: JobSpec; state: { order: number } }[],
): void {
  writeInChunks(file, (put) => {
    for (const job of jobs) put(JSON.stringify({ order: job.state.order, spec: job.spec }) + '\n');
  });
}

export function serializeMade(made: number, count: number, owner: Owner = SELF): string {
  const mark: MadeMark = { made, count, owner };
  return JSON.stringify(mark) + '\n';
}

/** The mark of a task folder; undefined: a task whose folders were all made at its acceptance. */
export function readMade(taskDir: string): MadeMark | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(taskDir, MADE_FILE), 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = madeSchema.safeParse(parseJson(text));
  if (parsed.success) return parsed.data;
  // Damaged (a hand edit): which folders were made is not known, and making one again could run a
  // job twice, so no more are made; the jobs without a folder show as missing.
  const unknown = Number.MAX_SAFE_INTEGER;
  return { made: unknown, count: unknown, owner: { hostname: '', boot_id: '', pid: 0 } };
}

/**
 * Written after the folders it counts are made, before any of them is handed to the dispatcher;
 * removed once every folder is made.
 */
export function writeMade(taskDir: string, made: number, count: number, durable: boolean): void {
  const file = path.join(taskDir, MADE_FILE);
  if (made < count) return writeFileAtomic(file, serializeMade(made, count), durable);
  rmSync(file, { force: true });
  if (durable) fsyncDir(taskDir);
}

/** Jobs of a queue's tasks whose folders are not made yet (they are queued). */
export function unmadeJobs(layout: SpoolLayout, queue: string): number {
  let names: string[];
  try {
    names = readdirSync(layout.folder(queue, 'tasks'));
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    if (!NAME_PATTERN.test(name)) continue;
    try {
      const mark = readMade(layout.taskDir(queue, name));
      if (mark !== undefined) n += mark.count - mark.made;
    } catch {
      // not a task folder
    }
  }
  return n;
}

/** Every job of a task, in order (recovery, and a view of a job not made yet). */
export function readTaskJobs(taskDir: string): TaskJobLine[] {
  const file = path.join(taskDir, SPECS_FILE);
  const lines: TaskJobLine[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line !== '') lines.push(JSON.parse(line) as TaskJobLine);
  }
  return lines;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Recovery rule "a committed task whose folders are not all made, and whose maker is gone → its
 * making resumes" (the repair: TaskMaterialiser.resume, which makes only the folders missing from
 * `queued/`). Returns the names of such tasks in a queue. `atStart`: nothing of this process is
 * in the spool yet, so a mark bearing its pid is an earlier process's.
 */
export function tasksLeftUnmade(layout: SpoolLayout, queue: string, atStart: boolean): string[] {
  let names: string[];
  try {
    names = readdirSync(layout.folder(queue, 'tasks'));
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names.sort()) {
    if (!NAME_PATTERN.test(name)) continue;
    let mark: MadeMark | undefined;
    try {
      mark = readMade(layout.taskDir(queue, name));
    } catch {
      continue; // not a task folder
    }
    if (mark === undefined || mark.made >= mark.count) continue;
    const earlierSelf = atStart && mark.owner.pid === process.pid && mark.owner.hostname === SELF.hostname;
    if (earlierSelf || !ownerMayBeAlive(mark.owner)) out.push(name);
  }
  return out;
}
