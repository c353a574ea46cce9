import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

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
