import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { coerceError, errnoCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import { HOST_TAG, ownerMayBeAlive, SELF } from './owner.ts';
import type { Owner } from './state-file.ts';

/** `<spool>/.dispatchers/`: one file per running dispatcher of the spool, on any machine. */
export const DISPATCHERS_FOLDER = '.dispatchers';

/**
 * Which dispatchers share the spool, for people (`batch ls`, GET /health): each running dispatcher
 * keeps a file here whose mtime it refreshes. A file counts while its process lives (this machine)
 * or while it is fresher than `lock_stale` (another machine, where liveness cannot be seen). It is
 * a head count, not a lock: nothing waits on it, and a file left by a crash only counts until stale.
 */
export class DispatcherRoll {
  readonly #dir: string;
  readonly #file: string;
  readonly #staleMs: number;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(spool: string, staleMs: number, log: Logger) {
    this.#dir = path.join(spool, DISPATCHERS_FOLDER);
    this.#file = path.join(this.#dir, `${HOST_TAG}-${process.pid}-${randomBytes(3).toString('hex')}`);
    this.#staleMs = Math.max(2000, staleMs);
    this.#log = log;
  }

  /** Sign this dispatcher in, and keep its file fresh until `close`. */
  start(): void {
    if (!this.#write()) return;
    this.#timer = setInterval(() => this.#touch(), Math.floor(this.#staleMs / 4));
    this.#timer.unref();
  }

  /** How many dispatchers use the spool now, this one included. */
  count(): number {
    let names: string[];
    try {
      names = readdirSync(this.#dir);
    } catch {
      return 1;
    }
    let live = 0;
    for (const name of names) {
      const file = path.join(this.#dir, name);
      if (file === this.#file || this.#alive(file)) live += 1;
    }
    return Math.max(1, live);
  }

  close(): void {
    clearInterval(this.#timer);
    rmSync(this.#file, { force: true });
  }

  #alive(file: string): boolean {
    let owner: Owner;
    let mtimeMs: number;
    try {
      mtimeMs = statSync(file).mtimeMs;
      owner = JSON.parse(readFileSync(file, 'utf8')) as Owner;
    } catch {
      return false; // gone meanwhile, or being written
    }
    if (owner.hostname === SELF.hostname && owner.boot_id === SELF.boot_id) {
      if (ownerMayBeAlive(owner)) return true;
      rmSync(file, { force: true }); // a dead process of this machine: its file goes
      return false;
    }
    return Date.now() - mtimeMs < this.#staleMs;
  }

  #write(): boolean {
    try {
      mkdirSync(this.#dir, { recursive: true });
      writeFileSync(this.#file, JSON.stringify({ ...SELF, started_at: new Date().toISOString() }));
      return true;
    } catch (error) {
      this.#log.warn(
        { file: this.#file, err: coerceError(error) },
        'cannot write the dispatcher roll; batch ls will not count the dispatchers sharing the spool',
      );
      return false;
    }
  }

  #touch(): void {
    const now = new Date();
    try {
      utimesSync(this.#file, now, now);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') this.#write(); // removed by hand: sign in again
    }
  }
}
