import { readdirSync, readFileSync } from 'node:fs';

/**
 * Processes of jobs whose dispatcher died, found by the BATCHD_JOB_ID every job's environment
 * carries. Reading /proc once per recovery pass is cheap; jobs are few, processes a few hundred.
 */
export function findJobProcesses(ids: ReadonlySet<string>): Map<string, number[]> {
  const found = new Map<string, number[]>();
  if (ids.size === 0) return found;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return found;
  }
  for (const pid of pids) {
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue;
    }
    const at = environ.indexOf('BATCHD_JOB_ID=');
    if (at < 0) continue;
    const end = environ.indexOf('\0', at);
    const id = environ.slice(at + 'BATCHD_JOB_ID='.length, end < 0 ? undefined : end);
    if (!ids.has(id)) continue;
    const list = found.get(id) ?? [];
    list.push(Number(pid));
    found.set(id, list);
  }
  return found;
}

export function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}
