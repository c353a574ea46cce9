import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';

import lockfile from 'proper-lockfile';

import { BatchdError, errnoCode } from '../../errors.ts';
import { isJobId } from '../../jobs/id.ts';

/** In the spool root; dot names are never queues. */
export const NUMBERS_FILE = '.batchd-numbers';

const LINE = /^(\d{1,15}) (\S+)$/;

/**
 * batchd's clients need integer job ids (the Haskell CLI parses `id` as Int64, the web client does
 * arithmetic-free but number-typed look-ups). Our ids are strings of 72 bits of time and randomness,
 * more than a JSON number holds exactly, so no formula maps them both ways: each job gets the next
 * number the first time the batchd face shows it, written to an append-only file in the spool
 * (`<number> <id>` per line) so the numbers survive restarts and are shared by every daemon on the
 * spool. Assignments happen under a lock and after reading what others appended.
 */
export class JobNumbers {
  readonly #file: string;
  readonly #byId = new Map<string, number>();
  readonly #byNumber = new Map<number, string>();
  #offset = 0;
  #last = 0;

  constructor(spoolRoot: string) {
    this.#file = path.join(spoolRoot, NUMBERS_FILE);
    this.#catchUp();
  }

  /** The numbers of these jobs, giving new ones (in id order, so numbers grow with submission time). */
  numbersOf(ids: readonly string[]): Map<string, number> {
    const missing = [...new Set(ids.filter((id) => !this.#byId.has(id)))].sort();
    if (missing.length > 0) this.#assign(missing);
    const out = new Map<string, number>();
    for (const id of ids) out.set(id, this.#byId.get(id) as number);
    return out;
  }

  numberOf(id: string): number {
    return this.numbersOf([id]).get(id) as number;
  }

  /** The job id of a number, or undefined (numbers are only ever given by numbersOf). */
  idOf(number: number): string | undefined {
    if (!this.#byNumber.has(number)) this.#catchUp();
    return this.#byNumber.get(number);
  }

  #assign(ids: readonly string[]): void {
    const release = this.#lock();
    try {
      this.#catchUp();
      let text = '';
      for (const id of ids) {
        if (this.#byId.has(id) || !isJobId(id)) continue;
        const number = this.#last + 1;
        text += `${number} ${id}\n`;
        this.#remember(number, id);
      }
      if (text === '') return;
      const fd = openSync(this.#file, 'a', 0o644);
      try {
        writeSync(fd, text);
        this.#offset = fstatSync(fd).size;
      } finally {
        closeSync(fd);
      }
    } finally {
      release();
    }
  }

  /** Read what was appended since the last read (by this daemon or another on the same spool). */
  #catchUp(): void {
    let fd: number;
    try {
      fd = openSync(this.#file, 'r');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return;
      throw error;
    }
    try {
      const size = fstatSync(fd).size;
      if (size <= this.#offset) return;
      const buffer = Buffer.alloc(size - this.#offset);
      const read = readSync(fd, buffer, 0, buffer.length, this.#offset);
      const text = buffer.subarray(0, read).toString('utf8');
      const end = text.lastIndexOf('\n');
      if (end < 0) return; // a line being written: read it next time
      for (const line of text.slice(0, end).split('\n')) {
        const match = LINE.exec(line);
        if (match !== null) this.#remember(Number(match[1]), match[2] as string);
      }
      this.#offset += Buffer.byteLength(text.slice(0, end + 1));
    } finally {
      closeSync(fd);
    }
  }

  #remember(number: number, id: string): void {
    if (this.#byId.has(id) || this.#byNumber.has(number)) return;
    this.#byId.set(id, number);
    this.#byNumber.set(number, id);
    if (number > this.#last) this.#last = number;
  }

  /** A short lock on the file (mkdir-based, so it works between processes and over NFS). */
  #lock(): () => void {
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        return lockfile.lockSync(this.#file, { realpath: false, stale: 10_000 });
      } catch (error) {
        if (errnoCode(error) !== 'ELOCKED' || Date.now() > deadline)
          throw new BatchdError('INTERNAL', `Cannot lock ${this.#file} to number jobs`, { file: this.#file });
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
    }
  }
}
