import {
  closeSync,
  constants,
  fsync,
  fsyncSync,
  ftruncateSync,
  linkSync,
  openSync,
  renameSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';

import { BatchdError, errnoCode } from '../errors.ts';
import type { SparePool } from './spares.ts';

/**
 * Write a file by write-temp-then-rename, so readers see the old or the new content, never half.
 * Synchronous on purpose: these files are small, and the dispatcher's hot path is cheaper without
 * a thread-pool round trip per call.
 */
export function writeFileAtomic(file: string, data: string, durable: boolean): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    // Created afresh (O_EXCL): in a folder others can write (rejected/, requests/) a link planted
    // under the temp name must not make the daemon write through it.
    removeStale(tmp);
    if (durable) writeFileFsynced(tmp, data, 'wx');
    else writeFileSync(tmp, data, { flag: 'wx' });
    renameSync(tmp, file);
  } catch (error) {
    throw diskError(error, file);
  }
  if (durable) fsyncDir(path.dirname(file));
}

/** Write a file and fsync it before returning; `flag` 'wx' refuses an existing file. */
export function writeFileFsynced(file: string, data: string, flag: 'w' | 'wx' = 'w'): void {
  const fd = openSync(file, flag, 0o644);
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Write-temp-then-rename for a file that is rewritten often (a job's `state.yaml`), without freeing
 * an inode each time: the file it replaces is kept as the next write's temp file
 * (`.<name>.next`), overwritten in place (no truncation to zero) and renamed over the file again.
 * Readers still see the old content or the new, never half, by the file's name.
 *
 * Why: replacing a file frees the old inode and its block. On ext4 mounted with `discard` (as
 * here) that is a synchronous TRIM per freed block, and without a journal every inode freed in
 * the last 30 s makes later creations in its block group slower (ext4 skips recently deleted
 * inodes one by one). A plain replace cost 270–750 µs here; this costs about 120 µs: an
 * overwrite, a `link` that keeps the old inode alive, and two renames. Steps, and what a crash
 * after each one leaves (the file itself always holds a whole old or new version):
 *   1. overwrite `.next` (a pooled spare or a new file on the first write) — a stale `.next`, ignored;
 *   2. link the file as `.prev` — the next write removes a stray `.prev` first;
 *   3. rename `.next` over the file — the new version; `.prev` holds the old one;
 *   4. rename `.prev` to `.next` — done.
 * Where there is no `.next` yet, a spare from `spares` (the dispatcher's pool, spares.ts) is
 * moved in rather than a file created; `Transitions` gives `.next` back when the job finishes.
 * A reader that opened the old version and is still reading it when it is overwritten as `.next`
 * (a later write, so stalled across a whole job run) could see a mix, or with a pooled spare
 * another job's record; readers of state files read again when what they read does not parse or
 * names another job (state-file.ts).
 */
export function writeFileRecycled(file: string, data: string, durable: boolean, spares?: SparePool): void {
  const dir = path.dirname(file);
  const next = nextOf(file);
  const prev = `${dir}/.${path.basename(file)}.prev`;
  try {
    const bytes = Buffer.from(data);
    const fd = openSpare(next, spares);
    try {
      for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at, at);
      ftruncateSync(fd, bytes.length);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const kept = keepAs(file, prev);
    renameSync(next, file);
    if (kept) renameSync(prev, next);
  } catch (error) {
    throw diskError(error, file);
  }
  if (durable) fsyncDir(dir);
}

/** The temp file `writeFileRecycled` keeps beside `file`: `.<name>.next`. */
export function nextOf(file: string): string {
  return `${path.dirname(file)}/.${path.basename(file)}.next`;
}

/**
 * The temp file: the one there, else a pooled spare moved in, else a new file. Never through a
 * symbolic link: one put in its place is removed, not followed.
 */
function openSpare(next: string, spares: SparePool | undefined): number {
  const flags = constants.O_WRONLY | constants.O_NOFOLLOW;
  try {
    return openSync(next, flags);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ELOOP') unlinkSync(next);
    else if (code !== 'ENOENT') throw error;
  }
  if (spares?.placeAt(next) === true) return openSync(next, flags);
  return openSync(next, flags | constants.O_CREAT | constants.O_EXCL, 0o644);
}

/** Give `file` a second name, so that renaming over it does not free it; false if it is not there. */
function keepAs(file: string, prev: string): boolean {
  try {
    linkSync(file, prev);
    return true;
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') return false;
    if (code !== 'EEXIST') throw error;
  }
  // Left by a write that was interrupted between steps 2 and 4.
  unlinkSync(prev);
  linkSync(file, prev);
  return true;
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * fsync many files and folders at once, through the thread pool. On ext4 the journal commits
 * concurrent fsyncs together, so a batch costs a few commits where a loop costs one per path.
 * At most `parallel` descriptors are open at a time; the first error stops it.
 */
export async function fsyncAll(paths: Iterable<string>, parallel = 256): Promise<void> {
  const list = [...new Set(paths)];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < list.length) {
      try {
        const fd = openSync(list[next++] as string, 'r');
        try {
          await new Promise<void>((resolve, reject) =>
            fsync(fd, (error) => (error === null ? resolve() : reject(error))),
          );
        } finally {
          closeSync(fd);
        }
      } catch (error) {
        next = list.length;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, list.length) }, worker));
}

/** ENOSPC and EDQUOT become one clear error; anything else passes through. */
export function diskError(error: unknown, file: string): unknown {
  const code = errnoCode(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new BatchdError(
      'DISK_FULL',
      `No space left on the spool's file system while writing ${file}`,
      { file },
      { cause: error },
    );
  }
  return error;
}

/** Remove what a crashed write (or someone else) left under a temp name; nothing there is fine. */
function removeStale(tmp: string): void {
  try {
    unlinkSync(tmp);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
}
