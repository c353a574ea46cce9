import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { formatSize, type ResourceLimits } from '../config/limits.ts';
import { BatchdError, coerceError } from '../errors.ts';
import { type CgroupLayout, PARENT_PATTERN } from './cgroup-detect.ts';
import type { LimitHit } from './limit-outcome.ts';

/** How long killing a group's processes and removing the group may take before giving up. */
const KILL_WAIT_MS = 5_000;
const POLL_MS = 10;
/** v1: how far memory plus swap may go past the memory limit (see create). */
const MEMSW_MARGIN = 1024 * 1024;

/** One job's groups: a folder per hierarchy (v2: one), the first of which holds the freezer. */
export interface JobCgroup {
  readonly name: string;
  /** Folders, freezer's (v1) or the only one (v2) first. */
  readonly dirs: string[];
  /** The files the job's first process writes its pid into before exec. */
  readonly join: string[];
  readonly limits: ResourceLimits | undefined;
}

/**
 * The cgroups of this daemon's local jobs: made before a job starts (with its limits), signalled
 * and frozen while it runs, emptied and removed when it ends — every process the job started is
 * in them, however it detached from its process group.
 */
export class JobCgroups {
  readonly #layout: CgroupLayout;

  constructor(layout: CgroupLayout) {
    this.#layout = layout;
  }

  get kind(): CgroupLayout['kind'] {
    return this.#layout.kind;
  }

  /** For the log and `batch stats`: `cgroup v1 (freezer, pids, memory)`. */
  describe(): string {
    const layout = this.#layout;
    return layout.kind === 'cgroup-v2'
      ? `cgroup v2 (${['kill', 'freeze', ...layout.controllers].join(', ')})`
      : `cgroup v1 (${Object.keys(layout.parents).join(', ')})`;
  }

  /** Which limits the groups enforce (the others are left to setrlimit). */
  enforces(limit: 'memory' | 'processes'): boolean {
    const layout = this.#layout;
    const controller = limit === 'memory' ? 'memory' : 'pids';
    return layout.kind === 'cgroup-v2'
      ? layout.controllers.includes(controller)
      : layout.parents[controller] !== undefined;
  }

  /** Make a job's groups and set its limits. Throws if the hierarchy refuses. */
  create(name: string, limits: ResourceLimits | undefined): JobCgroup {
    const layout = this.#layout;
    const dirs: string[] = [];
    const join: string[] = [];
    const make = (parent: string): string => {
      const dir = path.join(parent, name);
      mkdirSync(dir);
      dirs.push(dir);
      join.push(path.join(dir, 'cgroup.procs'));
      return dir;
    };
    try {
      if (layout.kind === 'cgroup-v2') {
        const dir = make(layout.parent);
        if (limits?.memory !== undefined && layout.controllers.includes('memory')) {
          writeFileSync(path.join(dir, 'memory.max'), String(limits.memory));
          // Not swapped out instead: the limit is on what the job uses.
          tryWrite(path.join(dir, 'memory.swap.max'), '0');
        }
        if (limits?.processes !== undefined && layout.controllers.includes('pids'))
          writeFileSync(path.join(dir, 'pids.max'), String(limits.processes));
      } else {
        const { freezer, pids, memory } = layout.parents;
        make(freezer as string);
        if (pids !== undefined && limits?.processes !== undefined)
          writeFileSync(path.join(make(pids), 'pids.max'), String(limits.processes));
        if (memory !== undefined && limits?.memory !== undefined) {
          const dir = make(memory);
          writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limits.memory));
          // Memory and swap together, a little above the memory limit: the kernel charges this
          // counter first and counts `memory.failcnt` only when the memory counter is the one
          // that refuses, which is how a job that stayed within its limit by reclaim is seen.
          tryWrite(path.join(dir, 'memory.memsw.limit_in_bytes'), String(limits.memory + MEMSW_MARGIN));
        }
      }
    } catch (error) {
      for (const dir of dirs.reverse()) tryRmdir(dir);
      throw new BatchdError(
        'SPAWN_FAILED',
        `cannot make the job's cgroup ${name}: ${coerceError(error).message}`,
        {
          cgroup: name,
        },
      );
    }
    return { name, dirs, join, limits };
  }

  /** The job's processes now (every one, whichever session or group it is in). */
  pids(group: JobCgroup): number[] {
    return readPids(group.dirs[0] as string);
  }

  /** Send `signal` to every process of the job. */
  signal(group: JobCgroup, signal: NodeJS.Signals): void {
    for (const pid of this.pids(group)) killPid(pid, signal);
  }

  /** Freeze (`true`) or thaw the whole job: no process of it runs while frozen. */
  freeze(group: JobCgroup, frozen: boolean): void {
    const dir = group.dirs[0] as string;
    if (this.#layout.kind === 'cgroup-v2') writeFileSync(path.join(dir, 'cgroup.freeze'), frozen ? '1' : '0');
    else writeFileSync(path.join(dir, 'freezer.state'), frozen ? 'FROZEN' : 'THAWED');
  }

  /**
   * KILL every process of the job at once, so that none can fork a new one meanwhile: v2 by
   * `cgroup.kill`; v1 by freezing the group, killing each process listed, thawing it.
   */
  async killAll(group: JobCgroup): Promise<void> {
    const dir = group.dirs[0] as string;
    const deadline = Date.now() + KILL_WAIT_MS;
    while (this.pids(group).length > 0 && Date.now() < deadline) {
      if (this.#layout.kind === 'cgroup-v2') writeFileSync(path.join(dir, 'cgroup.kill'), '1');
      else {
        this.freeze(group, true);
        await this.frozen(group, deadline);
        for (const pid of this.pids(group)) killPid(pid, 'SIGKILL');
        this.freeze(group, false);
      }
      await delay(POLL_MS);
    }
  }

  /**
   * The limits the job ran into, from its groups' counters (read before they are removed): a memory
   * limit reached (the kernel reclaimed, or its OOM killer killed), a fork refused at the processes
   * limit. A job that exits 0 may have hit one too.
   */
  limitsHit(group: JobCgroup): LimitHit[] {
    const limits = group.limits;
    if (limits === undefined) return [];
    const hits: LimitHit[] = [];
    const v2 = this.#layout.kind === 'cgroup-v2';
    const dirOf = (controller: string): string | undefined =>
      v2 ? group.dirs[0] : group.dirs.find((dir) => dir.includes(`/${controller}/`));
    const memory = dirOf('memory');
    if (limits.memory !== undefined && memory !== undefined && this.enforces('memory')) {
      const events = readKeyed(path.join(memory, v2 ? 'memory.events' : 'memory.oom_control'));
      const reached = v2 ? (events.get('max') ?? 0) : readCount(path.join(memory, 'memory.failcnt'));
      const size = formatSize(limits.memory);
      if ((events.get('oom_kill') ?? 0) > 0)
        hits.push({
          limit: 'memory',
          fatal: true,
          text: `memory limit ${size} exceeded (killed by the kernel's OOM killer)`,
        });
      else if (reached > 0)
        hits.push({ limit: 'memory', fatal: false, text: `memory limit ${size} reached (memory reclaimed)` });
    }
    const pids = dirOf('pids');
    if (limits.processes !== undefined && pids !== undefined && this.enforces('processes')) {
      if ((readKeyed(path.join(pids, 'pids.events')).get('max') ?? 0) > 0)
        hits.push({
          limit: 'processes',
          fatal: false,
          text: `processes limit ${limits.processes} reached (a fork failed)`,
        });
    }
    return hits;
  }

  /**
   * Kill whatever is left of the job and remove its groups. Mostly nothing is left: a single
   * group's removal is tried first (the kernel refuses one that still has a process, EBUSY),
   * which spares reading its process list.
   */
  async release(group: JobCgroup): Promise<void> {
    if (group.dirs.length === 1 && removedAtOnce(group.dirs[0] as string)) return;
    if (this.pids(group).length > 0) await this.killAll(group);
    await removeDirs(group.dirs);
  }

  /**
   * Groups a dead daemon left (killed before it could remove them): their processes are killed,
   * the groups removed. Other live daemons' groups are left alone.
   */
  async sweepStale(): Promise<number> {
    let swept = 0;
    for (const parent of this.#parents()) {
      const above = path.dirname(parent);
      for (const name of safeReaddir(above)) {
        const match = PARENT_PATTERN.exec(name);
        if (match === null || Number(match[2]) === process.pid || alive(Number(match[2]))) continue;
        swept += await this.#sweep(path.join(above, name));
      }
    }
    return swept;
  }

  /** Remove this daemon's (empty) parent folders at its end. */
  close(): void {
    for (const parent of this.#parents()) tryRmdir(parent);
  }

  #parents(): string[] {
    const layout = this.#layout;
    return layout.kind === 'cgroup-v2' ? [layout.parent] : Object.values(layout.parents);
  }

  async #sweep(stale: string): Promise<number> {
    const jobs = safeReaddir(stale).filter((name) => name.startsWith('job-'));
    for (const name of jobs) {
      const dir = path.join(stale, name);
      const group: JobCgroup = { name, dirs: [dir], join: [], limits: undefined };
      if (this.pids(group).length > 0) {
        if (this.#layout.kind === 'cgroup-v2' || stale.includes('/freezer/')) await this.killAll(group);
        else for (const pid of this.pids(group)) killPid(pid, 'SIGKILL');
      }
      await removeDirs([dir]);
    }
    tryRmdir(stale);
    return jobs.length;
  }

  /** Once a freeze took hold: no process of the job runs any more (or `deadline` passed). */
  async frozen(group: JobCgroup, deadline = Date.now() + KILL_WAIT_MS): Promise<void> {
    const dir = group.dirs[0] as string;
    const [file, done] =
      this.#layout.kind === 'cgroup-v2' ? ['cgroup.events', /^frozen 1$/m] : ['freezer.state', /^FROZEN$/m];
    while (Date.now() < deadline) {
      try {
        if (done.test(readFileSync(path.join(dir, file), 'utf8'))) return;
      } catch {
        return; // the group is gone: nothing of the job runs
      }
      await delay(1);
    }
  }
}

function readPids(dir: string): number[] {
  try {
    const text = readFileSync(path.join(dir, 'cgroup.procs'), 'utf8');
    return text.split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function readKeyed(file: string): Map<string, number> {
  const values = new Map<string, number>();
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [key, value] = line.trim().split(/\s+/);
      if (key !== undefined && value !== undefined) values.set(key, Number(value));
    }
  } catch {
    // not there on this kernel
  }
  return values;
}

function readCount(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

function killPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove a group if it is empty (or gone); false if it is still there. */
function removedAtOnce(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** A group can be removed once its last process is gone (a killed one takes a moment to exit). */
async function removeDirs(dirs: string[]): Promise<void> {
  const deadline = Date.now() + KILL_WAIT_MS;
  for (const dir of dirs) {
    for (;;) {
      try {
        rmdirSync(dir);
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'EBUSY' || Date.now() > deadline) break;
        await delay(POLL_MS);
      }
    }
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function tryRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // still in use, or gone
  }
}

function tryWrite(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch {
    // not on this kernel (no swap accounting)
  }
}
