import { type Dirent, lstatSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';

import type { JobType } from '../config/schema.ts';
import { BatchdError, errnoCode } from '../errors.ts';
import type { ParamValue } from '../jobs/spec.ts';
import { JOB_FILE, RESULT_FILE, STATE_FILE, STDERR_FILE, STDOUT_FILE } from '../spool/state-file.ts';

/**
 * A job's output files, as the API lists and serves them. The rule (docs/web.md):
 * - every regular file under the job folder's `outputs/` (where files fetched back from a remote
 *   host are kept, and where a local job, which starts in its folder, can put what it publishes);
 * - each OutputFile parameter whose path, taken from where the job runs, lies inside the job folder.
 * An OutputFile path outside the job folder is named (`elsewhere`) but never served: any user who
 * may submit could otherwise have the daemon read any file it can read. Symbolic links, folders
 * reached through one, FIFOs and devices are never listed nor opened, and the daemon's own files
 * (job.yaml, state.yaml, the logs, result.json) are not outputs.
 */
export const OUTPUTS_DIR = 'outputs';
const OWN_FILES = new Set([JOB_FILE, STATE_FILE, STDOUT_FILE, STDERR_FILE, RESULT_FILE]);
/** Bounds on a listing: a job that writes a million files must not make each look at it costly. */
const MAX_FILES = 1000;
const MAX_DEPTH = 8;

export interface OutputFile {
  /** Path relative to the job folder, with `/` between its parts: the name to ask for. */
  name: string;
  size: number;
  modified: string;
  /** The OutputFile parameter that names it, if one does. */
  param?: string;
}

export interface OutputListing {
  files: OutputFile[];
  /** OutputFile parameters pointing outside the job folder: shown, not served. */
  elsewhere: { param: string; path: string }[];
  /** More files than a listing holds were found (only the first MAX_FILES are listed). */
  truncated: boolean;
}

export interface OutputJob {
  dir: string;
  params: Record<string, ParamValue>;
  type: JobType | undefined;
  /** Where the job runs: resolves relative OutputFile paths (the job folder unless its type sets workdir). */
  cwd: string;
}

export function listOutputs(job: OutputJob): OutputListing {
  const files: OutputFile[] = [];
  const truncated = walk(job.dir, OUTPUTS_DIR, 0, files);
  const elsewhere: OutputListing['elsewhere'] = [];
  for (const spec of job.type?.params ?? []) {
    if (spec.type !== 'OutputFile') continue;
    const value = job.params[spec.name];
    if (value === undefined || value === '') continue;
    const name = insideName(job.dir, path.resolve(job.cwd, String(value)));
    if (name === undefined) {
      elsewhere.push({ param: spec.name, path: String(value) });
      continue;
    }
    const known = files.find((f) => f.name === name);
    if (known !== undefined) {
      known.param ??= spec.name;
      continue;
    }
    const stats = regularInside(job.dir, name);
    if (stats !== undefined) files.push({ ...stats, name, param: spec.name });
  }
  return { files, elsewhere, truncated };
}

/**
 * Open one listed output for reading, refusing anything but the regular file at that place in the
 * job folder: no component may be a symbolic link (checked before the open, the last one by
 * O_NOFOLLOW, and after the open by where the descriptor really points), no FIFO can block.
 */
export async function openOutput(
  jobDir: string,
  name: string,
): Promise<{ handle: FileHandle; size: number; modified: Date }> {
  if (regularInside(jobDir, name) === undefined) throw notServed(name);
  const file = path.join(jobDir, ...name.split('/'));
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw notServed(name);
    const real = whereFdPoints(handle.fd);
    if (real !== undefined && real !== path.join(realpathSync(jobDir), ...name.split('/')))
      throw notServed(name);
    return { handle, size: stats.size, modified: stats.mtime };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** The descriptor's path as the kernel sees it (Linux); undefined where there is no /proc. */
function whereFdPoints(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

function notServed(name: string): BatchdError {
  return new BatchdError('NOT_FOUND', `No output file ${JSON.stringify(name)} in this job`, { file: name });
}

/** `target` as a name inside `dir` (`a/b.png`), or undefined if it is outside or one of the daemon's files. */
function insideName(dir: string, target: string): string | undefined {
  const rel = path.relative(dir, target);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  const parts = rel.split(path.sep);
  if (parts.some((p) => p === '' || p === '.' || p === '..' || p.startsWith('.'))) return undefined;
  if (parts.length === 1 && OWN_FILES.has(rel)) return undefined;
  return parts.join('/');
}

/** Size and time of the regular file `name` in `dir`, reached through real folders only. */
function regularInside(dir: string, name: string): { size: number; modified: string } | undefined {
  const parts = name.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..' || p.startsWith('.'))) return undefined;
  if (parts.length === 1 && OWN_FILES.has(name)) return undefined;
  let here = dir;
  try {
    for (const [i, part] of parts.entries()) {
      here = path.join(here, part);
      const stats = lstatSync(here);
      if (i < parts.length - 1 ? !stats.isDirectory() : !stats.isFile()) return undefined;
      if (i === parts.length - 1) return { size: stats.size, modified: stats.mtime.toISOString() };
    }
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
  return undefined;
}

/** Regular files under `dir/rel` into `out`, in name order; true when MAX_FILES cut the listing short. */
function walk(dir: string, rel: string, depth: number, out: OutputFile[]): boolean {
  let entries: Dirent[];
  try {
    entries = readdirSync(path.join(dir, ...rel.split('/')), { withFileTypes: true });
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw error;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (entry.name.startsWith('.') || entry.name.endsWith('.batchd-part')) continue;
    const name = `${rel}/${entry.name}`;
    // Dirent types come from lstat-like d_type: a symbolic link is neither a file nor a folder here.
    if (entry.isDirectory() && depth < MAX_DEPTH) {
      if (walk(dir, name, depth + 1, out)) return true;
    } else if (entry.isFile()) {
      if (out.length >= MAX_FILES) return true;
      const stats = regularInside(dir, name);
      if (stats !== undefined) out.push({ name, ...stats });
    }
  }
  return false;
}
