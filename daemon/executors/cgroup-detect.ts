import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** How local jobs are contained, as `dispatcher.containment` asks. */
export const CONTAINMENT_MODES = ['auto', 'cgroup', 'group'] as const;
export type ContainmentMode = (typeof CONTAINMENT_MODES)[number];

/** What the machine gave: a cgroup hierarchy, or only process groups. */
export const CONTAINMENT_KINDS = ['cgroup-v2', 'cgroup-v1', 'group'] as const;
export type ContainmentKind = (typeof CONTAINMENT_KINDS)[number];

/** The v1 controllers a job's groups use: freezer (kill, pause) is required, the others limit. */
export const V1_CONTROLLERS = ['freezer', 'pids', 'memory'] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];

/**
 * Where this daemon makes its jobs' groups: one folder `batchd-<tag>-<pid>` per hierarchy (v2: one
 * folder; v1: one per controller), below the daemon's own cgroup so its limits still hold.
 */
export type CgroupLayout =
  | { kind: 'cgroup-v2'; parent: string; controllers: ('memory' | 'pids')[] }
  | { kind: 'cgroup-v1'; parents: Partial<Record<V1Controller, string>> };

/** The parent folders' name: the spool's tag, and the daemon's pid (to tell a dead one's). */
export const PARENT_PATTERN = /^batchd-([A-Za-z0-9_.-]+)-(\d+)$/;

interface Mount {
  root: string;
  point: string;
  type: string;
  options: string[];
}

function mounts(): Mount[] {
  const found: Mount[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [type, , superOptions = ''] = right.split(' ');
    const root = fields[3];
    const point = fields[4];
    if (root === undefined || point === undefined || type === undefined) continue;
    found.push({ root: unescape(root), point: unescape(point), type, options: superOptions.split(',') });
  }
  return found;
}

/** mountinfo writes space, tab, newline and backslash as octal escapes. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The daemon's own cgroup in each hierarchy: `freezer` → `/a/b`, `` (v2) → `/c`. */
function ownGroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (match === null) continue;
    for (const controller of (match[1] ?? '').split(',')) own.set(controller, match[2] ?? '/');
  }
  return own;
}

/** The daemon's cgroup as a folder: its path below the mount's own root. */
function folderOf(mount: Mount, group: string): string {
  const relative =
    mount.root === '/' ? group : group.startsWith(mount.root) ? group.slice(mount.root.length) : undefined;
  return path.join(mount.point, relative ?? '/');
}

/** Make (or find) a folder for the daemon's groups; false where the hierarchy is not ours to write. */
function makeParent(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    return true;
  } catch {
    return false;
  }
}

function tryWrite(file: string, text: string): boolean {
  try {
    writeFileSync(file, text);
    return true;
  } catch {
    return false;
  }
}

/**
 * cgroup v2 with what a job needs: `cgroup.kill` and `cgroup.freeze` (core files of every non-root
 * group of a 5.14+ kernel) and, where `needMemory`, the memory controller for `memory.max`. `point`
 * picks one cgroup2 mount (tests mount a private one); else the first one is taken.
 */
function detectV2(
  all: Mount[],
  own: Map<string, string>,
  name: string,
  options: { point?: string | undefined; needMemory: boolean },
): CgroupLayout | undefined {
  const mount = all.find(
    (m) => m.type === 'cgroup2' && (options.point === undefined || m.point === options.point),
  );
  const group = own.get('');
  if (mount === undefined || group === undefined) return undefined;
  const ownDir = folderOf(mount, group);
  const parent = path.join(ownDir, name);
  if (!makeParent(parent)) return undefined;
  const enabled = (): string[] => {
    try {
      return readFileSync(path.join(parent, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
    } catch {
      return [];
    }
  };
  // Controllers reach the parent only when the daemon's own group hands them down (which it can
  // only do while it holds no process itself, or already does).
  if (!enabled().includes('memory')) tryWrite(path.join(ownDir, 'cgroup.subtree_control'), '+memory +pids');
  const controllers = enabled().filter((c): c is 'memory' | 'pids' => c === 'memory' || c === 'pids');
  const usable =
    (controllers.includes('memory') || !options.needMemory) &&
    existsSync(path.join(parent, 'cgroup.kill')) &&
    existsSync(path.join(parent, 'cgroup.freeze')) &&
    (controllers.length === 0 ||
      tryWrite(path.join(parent, 'cgroup.subtree_control'), controllers.map((c) => `+${c}`).join(' ')));
  if (usable) return { kind: 'cgroup-v2', parent, controllers };
  try {
    rmdirSync(parent);
  } catch {
    // in use by an earlier run of this pid: leave it
  }
  return undefined;
}

/** cgroup v1 with a writable freezer (and pids and memory where they are mounted writable). */
function detectV1(all: Mount[], own: Map<string, string>, name: string): CgroupLayout | undefined {
  const parents: Partial<Record<V1Controller, string>> = {};
  for (const controller of V1_CONTROLLERS) {
    const mount = all.find((m) => m.type === 'cgroup' && m.options.includes(controller));
    const group = own.get(controller);
    if (mount === undefined || group === undefined) continue;
    const parent = path.join(folderOf(mount, group), name);
    if (makeParent(parent)) parents[controller] = parent;
  }
  if (parents.freezer !== undefined) return { kind: 'cgroup-v1', parents };
  for (const dir of Object.values(parents)) {
    try {
      rmdirSync(dir);
    } catch {
      // leave it
    }
  }
  return undefined;
}

export interface DetectOptions {
  /**
   * Use the cgroup2 mount at this point and nothing else (tests: a private cgroup2 mount on a
   * machine whose controllers are bound to v1).
   */
  v2Mount?: string | undefined;
}

/**
 * Which cgroup hierarchy this daemon can put its jobs in, if any (`tag` names the spool): v2 with
 * the memory controller, else v1 with the freezer, else v2 without controllers (kill and freeze
 * still hold every process of a job; memory and processes are then limited by setrlimit).
 */
export function detectCgroups(tag: string, options: DetectOptions = {}): CgroupLayout | undefined {
  if (process.platform !== 'linux') return undefined;
  const name = `batchd-${tag.replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}`;
  try {
    const all = mounts();
    const own = ownGroups();
    if (options.v2Mount !== undefined)
      return detectV2(all, own, name, { point: options.v2Mount, needMemory: false });
    return (
      detectV2(all, own, name, { needMemory: true }) ??
      detectV1(all, own, name) ??
      detectV2(all, own, name, { needMemory: false })
    );
  } catch {
    return undefined;
  }
}
