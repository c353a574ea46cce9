import * as fs from 'node:fs';
import path from 'node:path';

import lockfile from 'proper-lockfile';

import { coerceError, errnoCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import { LOCKS_FOLDER, type SpoolLayout } from './layout.ts';

export type Release = () => Promise<void>;

/**
 * The calls proper-lockfile makes, and nothing else: its synchronous API copies the `fs` object it
 * is given on every lock and unlock (by default all of graceful-fs, ~70 µs a job here).
 */
const LOCK_CALLS = ['mkdir', 'realpath', 'stat', 'rmdir', 'utimes'] as const;
const LOCK_FS: Record<string, unknown> = Object.fromEntries(
  LOCK_CALLS.flatMap((call): [string, unknown][] => [
    [call, fs[call]],
    [`${call}Sync`, fs[`${call}Sync`]],
  ]),
);

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

  constructor(layout: SpoolLayout, staleMs: number, log: Logger, onLost: (id: string) => void) {
    this.#layout = layout;
    this.#staleMs = Math.max(2000, staleMs);
    this.#log = log;
    this.#onLost = onLost;
    fs.mkdirSync(path.join(layout.root, LOCKS_FOLDER), { recursive: true });
  }

  /**
   * The lock, or `undefined` if a live owner holds it. Taken with synchronous file calls (a mkdir,
   * and a stat if it exists): a claim is on every job's start path, and a trip through the thread
   * pool and back costs more than the mkdir itself. The refresh timer and release are synchronous too.
   */
  acquire(id: string): Promise<Release | undefined> {
    try {
      return Promise.resolve(this.#take(id));
    } catch (error) {
      return Promise.reject(coerceError(error));
    }
  }

  #take(id: string): Release | undefined {
    try {
      const release = lockfile.lockSync(this.#layout.lockPath(id), {
        lockfilePath: this.#layout.lockPath(id),
        realpath: false,
        fs: LOCK_FS,
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

  /** Remove the lock of an owner known to be dead, without waiting for it to go stale. */
  breakDead(id: string): void {
    fs.rmSync(this.#layout.lockPath(id), { recursive: true, force: true });
  }
}
