import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { parseDocument } from 'yaml';

import { jobsIn } from './env.ts';

export const STATE_FOLDERS = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;

/** Every job id in a queue → the state folders holding it (more than one is a bug). */
export function statesById(spool: string, queue: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const state of STATE_FOLDERS) {
    for (const id of jobsIn(spool, queue, state)) found.set(id, [...(found.get(id) ?? []), state]);
  }
  return found;
}

/** Ids found in more than one state folder, or in none of the expected ones. */
export function misplacedJobs(spool: string, queue: string): string[] {
  return [...statesById(spool, queue)]
    .filter(([, states]) => states.length !== 1)
    .map(([id, states]) => `${id}: ${states.join(',')}`);
}

/** Lines of a ledger file that jobs append to (missing file: none). */
export function readLedger(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

/** Entries of a queue folder that are not dotfiles (incoming/, rejected/, .staging is listed on purpose). */
export function entriesOf(spool: string, queue: string, folder: string): string[] {
  try {
    return readdirSync(path.join(spool, queue, folder));
  } catch {
    return [];
  }
}

/**
 * Processes (pids) whose environment says they are jobs of this spool: every job carries
 * BATCHD_JOB_DIR, which lies inside the spool. This is how a test finds orphans.
 */
export function jobProcessesOf(spool: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue;
    }
    const dir = /(?:^|\0)BATCHD_JOB_DIR=([^\0]*)/.exec(environ)?.[1];
    if (dir !== undefined && dir.startsWith(spool + path.sep)) pids.push(Number(pid));
  }
  return pids;
}

/** Alive and not a zombie (a killed job whose parent has not reaped it yet is dead). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return !/^\d+ \(.*\) Z /s.test(stat);
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Every file under `dir` (links not followed) whose bytes contain `needle`, but for hard links of
 * `original` itself (a hard-linked drop or request is kept as it came): where a secret the daemon
 * was not meant to read would show if it had been copied.
 */
export function copiesOf(dir: string, needle: string, original: string): string[] {
  const found: string[] = [];
  const { ino } = lstatSync(original);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...copiesOf(p, needle, original));
    else if (entry.isFile()) {
      const st = lstatSync(p);
      if (st.ino !== ino && st.size < 1_000_000 && readFileSync(p).includes(needle)) found.push(p);
    }
  }
  return found;
}

/** Characters YAML 1.2 does not allow raw in a file (and PyYAML refuses). */
// eslint-disable-next-line no-control-regex
export const NOT_YAML_PRINTABLE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]/;

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Why a file's bytes are not a valid YAML 1.2 document (UTF-8, printable, parsed without error). */
export function yamlProblem(bytes: Buffer): string | undefined {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return 'not valid UTF-8';
  }
  const raw = NOT_YAML_PRINTABLE.exec(text);
  if (raw !== null) return `a raw U+${raw[0].charCodeAt(0).toString(16).padStart(4, '0')} at ${raw.index}`;
  const errors = parseDocument(text).errors;
  return errors.length > 0 ? errors.map((e) => e.message).join('; ') : undefined;
}
