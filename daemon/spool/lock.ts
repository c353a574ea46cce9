import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import path from 'node:path';

import lockfile from 'proper-lockfile';

import { coerceError, errnoCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import { LOCKS_FOLDER, type SpoolLayout } from './layout.ts';
import { HOST_TAG } from './owner.ts';
import type { Owner } from './state-file.ts';
import { poolPrefix, removeDeadPools, SparePool } from './spares.ts';

export type Release = () => Promise<void>;

/**
 * The file calls proper-lockfile makes, with its lock made and removed without creating or freeing
 * an inode: a lock here is a file, a second name of a spare file from this dispatcher's pool.
 * `mkdir` stamps a free spare's mtime (a lock is fresh the moment it appears) and links it under
 * the lock's name: link(2), like mkdir(2), is atomic and fails with EEXIST when the name is taken.
 * `rmdir` unlinks the lock's name, and the spare goes back to the pool. On a disk mounted with
 * `discard` a freed inode costs a synchronous TRIM, and ext4 without a journal slows every creation
 * near an inode freed in the last 30 s; a folder per lock paid both on every job. Only these calls
 * are given: proper-lockfile's synchronous API copies the `fs` object it is given on every call.
 */
export class LockFiles {
  readonly #spares: SparePool;
  readonly #link: (existing: string, name: string) => void;
  readonly #held = new Map<string, string>();
  /**
   * The lock just made and stamped here. proper-lockfile's next `utimes` on it is its probe of the
   * file system's mtime precision, made on every lock (its synchronous API copies the `fs` object
   * and with it loses the cached answer): the stamp already set the time, so that call is skipped
   * and the probe's `stat` reads the stamp. It sees whole seconds where the file system keeps no
   * more, and milliseconds elsewhere (but for a stamp that falls on a whole second, 1 in 1,000,
   * which only makes the refreshes round up to whole seconds).
   */
  #stamped: string | undefined;
  /** The file system has no hard links (some network and FUSE mounts): locks are folders. */
  #folders = false;

  constructor(spares: SparePool, link: (existing: string, name: string) => void = fs.linkSync) {
    this.#spares = spares;
    this.#link = link;
  }

  mkdirSync(lock: string): void {
    if (this.#folders) return fs.mkdirSync(lock);
    const spare = this.#spares.take();
    try {
      const now = new Date();
      fs.utimesSync(spare, now, now);
      this.#link(spare, lock);
      this.#stamped = lock;
    } catch (error) {
      const code = errnoCode(error) ?? '';
      // The spare itself is gone (someone removed the pool): forget it and take another.
      if (code === 'ENOENT' && !fs.existsSync(spare)) return this.mkdirSync(lock);
      this.#spares.give(spare);
      if (!NO_LINKS.has(code)) throw error;
      this.#folders = true;
      return fs.mkdirSync(lock);
    }
    this.#held.set(lock, spare);
  }

  rmdirSync(lock: string): void {
    if (this.#stamped === lock) this.#stamped = undefined;
    const spare = this.#held.get(lock);
    this.#held.delete(lock);
    try {
      fs.unlinkSync(lock);
    } catch (error) {
      const code = errnoCode(error);
      // A lock folder, made by an earlier version of batchd.
      if (code === 'EISDIR' || code === 'EPERM') fs.rmdirSync(lock);
      else if (code !== 'ENOENT') throw error;
    }
    if (spare !== undefined) this.#spares.give(spare);
  }

  utimesSync(file: string, atime: Date, mtime: Date): void {
    if (file === this.#stamped) {
      this.#stamped = undefined;
      return;
    }
    fs.utimesSync(file, atime, mtime);
  }

  /** Whether a lock made here is held (the pool must then stay). */
  get holding(): boolean {
    return this.#held.size > 0;
  }

  /**
   * The object proper-lockfile is given: its synchronous API calls only the `…Sync` form of the
   * five calls it makes (it wraps them itself). Its refreshes call `utimesSync`, which stamps.
   */
  forLockfile(): Record<string, unknown> {
    return {
      mkdirSync: this.mkdirSync.bind(this),
      rmdirSync: this.rmdirSync.bind(this),
      realpathSync: fs.realpathSync,
      statSync: fs.statSync,
      utimesSync: this.utimesSync.bind(this),
    };
  }
}

/** What link(2) says where a file system has no hard links. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Claim locks (proper-lockfile): held for as long as a job runs and refreshed, so a stale lock
 * means its owner died. Several dispatchers, even on different machines sharing the spool, can
 * therefore never run one job twice, and a dead dispatcher's jobs are found.
 */
export class JobLocks {
  readonly #layout: SpoolLayout;
  readonly #staleMs: number;
  readonly #log: Logger;
  readonly #onLost: (id: string) => void;
  readonly #files: LockFiles;
  readonly #fs: Record<string, unknown>;
  /** This dispatcher's spare files: its locks, and its jobs' state temp files (atomic.ts). */
  readonly spares: SparePool;

  constructor(layout: SpoolLayout, staleMs: number, log: Logger, onLost: (id: string) => void) {
    this.#layout = layout;
    this.#staleMs = Math.max(2000, staleMs);
    this.#log = log;
    this.#onLost = onLost;
    const locks = path.join(layout.root, LOCKS_FOLDER);
    fs.mkdirSync(locks, { recursive: true });
    removeDeadPools(locks, HOST_TAG);
    const pool = `${poolPrefix(HOST_TAG)}${process.pid}-${randomBytes(3).toString('hex')}`;
    this.spares = new SparePool(path.join(locks, pool));
    this.#files = new LockFiles(this.spares);
    this.#fs = this.#files.forLockfile();
  }

  /** At an orderly stop, after every job's lock was released: the pool goes. */
  close(): void {
    if (!this.#files.holding) this.spares.close();
  }

  /**
   * The lock, or `undefined` if a live owner holds it. Taken with synchronous file calls (a link,
   * and a stat if it exists): a claim is on every job's start path, and a trip through the thread
   * pool and back costs more than the mkdir itself. The refresh timer and release are synchronous too.
   */
  acquire(id: string): Promise<Release | undefined> {
    try {
      return Promise.resolve(this.take(id));
    } catch (error) {
      return Promise.reject(coerceError(error));
    }
  }

  /** `acquire`, done before it returns (it throws if the lock cannot be made). */
  take(id: string): Release | undefined {
    try {
      const release = lockfile.lockSync(this.#layout.lockPath(id), {
        lockfilePath: this.#layout.lockPath(id),
        realpath: false,
        fs: this.#fs,
        stale: this.#staleMs,
        update: Math.floor(this.#staleMs / 4),
        onCompromised: (error) => {
          this.#log.error(
            { jobId: id, err: coerceError(error) },
            'job lock lost (refresh failed or lock taken over)',
          );
          this.#onLost(id);
        },
      });
      return () => {
        try {
          release();
          return Promise.resolve();
        } catch (error) {
          return Promise.reject(coerceError(error));
        }
      };
    } catch (error) {
      if (errnoCode(error) === 'ELOCKED') return undefined;
      throw error;
    }
  }

  /** Whether any process holds a fresh lock on the job. */
  async isHeld(id: string): Promise<boolean> {
    return lockfile.check(this.#layout.lockPath(id), {
      lockfilePath: this.#layout.lockPath(id),
      realpath: false,
      stale: this.#staleMs,
    });
  }

  /**
   * Remove the lock of an owner known to be dead, without waiting for it to go stale. Several
   * dispatchers may recover that owner's job at once, and the first may hold a lock of its own on
   * it by the time another gets here: so the lock is first renamed aside (one rename wins), and a
   * lock that is not the dead owner's goes back. The dead owner's lock is a second name of a file in
   * its pool of spares, or its only name once that pool was removed; a live one is a second name of
   * a file in a live pool. A lock folder (a file system without hard links, or an older batchd)
   * cannot be told apart, and is removed as before.
   */
  breakDead(id: string, owner: Owner | undefined): void {
    const lock = this.#layout.lockPath(id);
    const aside = `${lock}.breaking-${process.pid}-${randomBytes(3).toString('hex')}`;
    try {
      fs.renameSync(lock, aside);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return; // broken by another dispatcher
      throw error;
    }
    if (!this.#isDeadOwners(aside, owner)) {
      try {
        fs.linkSync(aside, lock);
      } catch {
        // Taken again meanwhile: its holder finds its lock lost at the next refresh and stops.
      }
    }
    fs.rmSync(aside, { recursive: true, force: true });
  }

  #isDeadOwners(lock: string, owner: Owner | undefined): boolean {
    const stat = fs.lstatSync(lock);
    // One name only: its pool was removed (a dead owner's, when a dispatcher starts on this machine).
    if (!stat.isFile() || owner === undefined || stat.nlink === 1) return true;
    const locks = path.join(this.#layout.root, LOCKS_FOLDER);
    const prefix = `${poolPrefix(HOST_TAG)}${owner.pid}-`;
    for (const pool of fs.readdirSync(locks).filter((name) => name.startsWith(prefix))) {
      for (const spare of fs.readdirSync(path.join(locks, pool))) {
        if (fs.lstatSync(path.join(locks, pool, spare)).ino === stat.ino) return true;
      }
    }
    return false;
  }
}
