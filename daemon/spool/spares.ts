import * as fs from 'node:fs';
import path from 'node:path';

import { errnoCode } from '../errors.ts';
import { pidAlive } from './owner.ts';

/**
 * A dispatcher's pool of spare files (`.locks/.spares-<host>-<pid>-<rand>/`), so that the spool's
 * busiest files are made without creating an inode and dropped without freeing one. Claim locks
 * are second names of spares (lock.ts); a job's first `state.yaml` rewrite takes a spare as its
 * temp file instead of creating one, and a finished job gives its temp file back (atomic.ts,
 * transition.ts). Why it matters: on ext4 without a journal, creating an inode costs more the
 * more inodes were freed nearby in the last 30 s, 40 µs to over 1 ms here, and a freed block on
 * a disk mounted with `discard` is a synchronous TRIM. A spare that was used before also has its
 * block allocated, so renaming it over a file does not make ext4 start writing it out first
 * (`auto_da_alloc`), as a new file does.
 */
export class SparePool {
  readonly dir: string;
  readonly #free: string[] = [];
  #made = 0;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** A spare's path in the pool, the caller's until it is given back (made if none is free). */
  take(): string {
    const spare = this.#free.pop();
    if (spare !== undefined) return spare;
    fs.mkdirSync(this.dir, { recursive: true });
    const made = path.join(this.dir, String(this.#made++));
    fs.closeSync(fs.openSync(made, 'wx'));
    return made;
  }

  give(spare: string): void {
    this.#free.push(spare);
  }

  /**
   * Move a spare to `name`, which must not exist (it would be replaced, and freed). False when it
   * cannot be: the pool is on another file system, or the spool refuses the rename.
   */
  placeAt(name: string): boolean {
    for (let tries = 0; tries < 2; tries++) {
      let spare: string;
      try {
        spare = this.take();
      } catch {
        return false;
      }
      try {
        fs.renameSync(spare, name);
        return true;
      } catch (error) {
        // A spare that vanished (someone removed the pool) is forgotten; try a new one once.
        if (errnoCode(error) === 'ENOENT' && !fs.existsSync(spare)) continue;
        this.give(spare);
        return false;
      }
    }
    return false;
  }

  /**
   * Take `file` into the pool as a spare; false if it is not there, is not a regular file (what
   * someone put in a job folder stays there), or cannot be moved.
   */
  reclaim(file: string): boolean {
    const spare = path.join(this.dir, String(this.#made++));
    try {
      if (!fs.lstatSync(file).isFile()) return false;
      fs.renameSync(file, spare);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') return false;
      // The pool folder itself may be gone (removed by hand, or never made): once more after making it.
      if (!fs.existsSync(file)) return false;
      try {
        fs.mkdirSync(this.dir, { recursive: true });
        fs.renameSync(file, spare);
      } catch {
        return false;
      }
    }
    this.give(spare);
    return true;
  }

  /** Remove the pool (an orderly stop, nothing held from it); a pool left behind is removed at the next start. */
  close(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
    this.#free.length = 0;
    this.#made = 0;
  }
}

/** Pools are named after their process, so that a dead process's pool can be found and removed. */
export function poolPrefix(hostTag: string): string {
  return `.spares-${hostTag}-`;
}

/** Remove the pools in `folder` of processes of this machine that are gone. */
export function removeDeadPools(folder: string, hostTag: string): void {
  const prefix = poolPrefix(hostTag);
  for (const name of fs.readdirSync(folder)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (Number.isSafeInteger(pid) && !pidAlive(pid)) {
      fs.rmSync(path.join(folder, name), { recursive: true, force: true });
    }
  }
}
