import { execFile } from 'node:child_process';
import { close, fdatasync, mkdirSync, open, readdirSync, rmSync, write } from 'node:fs';
import path from 'node:path';

import { BatchdError, coerceError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { fsyncAll } from './atomic.ts';
import { HOST_TAG, SELF } from './owner.ts';

/**
 * One acceptance as the journal keeps it: the folder it committed, whole, so that recovery can
 * write it again if a power loss took it (spool/journal-replay.ts).
 */
export interface JournalRecord {
  queue: string;
  id: string;
  /** The state folder the acceptance committed the job into. */
  into: 'queued' | 'running';
  /** The job folder's files by name, as written. */
  files: Record<string, string>;
}

/** A line that takes back an earlier record of its segment: the acceptance failed after all. */
export interface JournalWithdrawal {
  queue: string;
  id: string;
  withdrawn: true;
}

/** A segment's first line: who writes it (recovery replays only a dead writer's segments). */
export interface SegmentHeader {
  owner: typeof SELF;
}

interface Segment {
  file: string;
  fd: number;
  /** Appends whose acceptances are not committed yet (their folders still in `.staging/`). */
  open: number;
  drained: (() => void)[];
}

/** An append's hold on its segment, released by `committed` once its folders are renamed. */
export type JournalTicket = Segment;

export const SEGMENT_EXT = '.jsonl';

/**
 * The acceptance journal, for durable acceptance (storage.fsync) of API submissions. Without it,
 * a durable acceptance fsyncs every file and folder it made, about five per job, each costing this
 * VM ~0.4 ms of CPU and a flush of the disk's cache. With it, a batch of acceptances is one append
 * and one `fdatasync` of a segment file; their folders are made as usual, without fsyncs, and a
 * checkpoint puts them all on disk at once (`sync -f`, the file system's `syncfs`) and then drops
 * the segments that hold them. After a power loss, recovery writes again from the journal any
 * folder or file that did not reach the disk. Order, per batch: append + fdatasync, then the
 * renames that commit the folders, then the answers. A segment is dropped only once every
 * acceptance in it is committed and a `syncfs` that began after that has returned.
 */
export class AcceptJournal {
  readonly dir: string;
  readonly #root: string;
  readonly #log: Logger;
  readonly #intervalMs: () => number;
  #current: Segment | undefined;
  #retiring: Segment[] = [];
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #checkpoint: Promise<void> | undefined;
  #closed = false;

  constructor(root: string, dir: string, log: Logger, intervalMs: () => number) {
    this.#root = root;
    this.dir = dir;
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  /** Whether this system can checkpoint (`sync -f`, GNU coreutils ≥ 8.24 on Linux). */
  static async usable(root: string): Promise<boolean> {
    try {
      await syncFileSystem(root);
      return true;
    } catch {
      return false;
    }
  }

  /** Segment files this journal has open or has not dropped yet. */
  get segments(): string[] {
    return [...this.#retiring, ...(this.#current === undefined ? [] : [this.#current])].map((s) => s.file);
  }

  /**
   * Append records and make them durable. The caller commits their folders next and then calls
   * `committed(ticket)`, also when committing failed.
   */
  async append(records: readonly JournalRecord[]): Promise<JournalTicket> {
    if (this.#closed) throw new BatchdError('INTERNAL', 'The daemon is stopping: no more acceptances');
    const segment = this.#current ?? (await this.#openSegment());
    segment.open += 1;
    try {
      await appendLines(segment.fd, records);
    } catch (error) {
      this.committed(segment);
      throw error;
    }
    this.#schedule();
    return segment;
  }

  /**
   * Take back records of an append whose acceptances failed after all (before `committed`). Does
   * not throw: if the disk refuses this too, it says so, and a replay after a power loss would
   * write those jobs after all.
   */
  async withdraw(ticket: JournalTicket, records: readonly JournalRecord[]): Promise<void> {
    const lines: JournalWithdrawal[] = records.map(({ queue, id }) => ({ queue, id, withdrawn: true }));
    try {
      await appendLines(ticket.fd, lines);
    } catch (error) {
      this.#log.warn(
        { err: coerceError(error), jobs: lines.map((l) => l.id), file: ticket.file },
        'journal: could not take back refused acceptances; a replay after a power loss would write them',
      );
    }
  }

  committed(ticket: JournalTicket): void {
    ticket.open -= 1;
    if (ticket.open === 0) for (const wake of ticket.drained.splice(0)) wake();
  }

  /**
   * Put every acceptance journaled so far on disk and drop the segments that held them. Callers
   * that remove job folders wait for it first, so that recovery cannot bring back a removed job.
   */
  async settle(): Promise<void> {
    while (this.#checkpoint !== undefined) await this.#checkpoint;
    if (this.#current === undefined && this.#retiring.length === 0) return;
    await this.#runCheckpoint();
  }

  /** A last checkpoint; appends are refused from now on. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    try {
      await this.settle();
    } catch (error) {
      // Kept segments are replayed at the next start; nothing is lost.
      this.#log.warn({ err: coerceError(error), segments: this.segments }, 'journal kept for the next start');
    }
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#runCheckpoint().catch((error: unknown) => {
        this.#log.warn({ err: coerceError(error) }, 'journal checkpoint failed; retrying later');
        this.#schedule();
      });
    }, this.#intervalMs());
    this.#timer.unref();
  }

  #runCheckpoint(): Promise<void> {
    this.#checkpoint ??= this.#checkpointOnce().finally(() => {
      this.#checkpoint = undefined;
    });
    return this.#checkpoint;
  }

  async #checkpointOnce(): Promise<void> {
    if (this.#current !== undefined) {
      this.#retiring.push(this.#current);
      this.#current = undefined; // the next append opens a new segment
    }
    const retiring = [...this.#retiring];
    for (const segment of retiring) {
      if (segment.open > 0) await new Promise<void>((resolve) => segment.drained.push(resolve));
    }
    await syncFileSystem(this.#root);
    for (const segment of retiring) {
      await closeFd(segment.fd);
      rmSync(segment.file, { force: true });
      this.#retiring.splice(this.#retiring.indexOf(segment), 1);
    }
    // Dropped for good before anyone may remove the jobs those segments held.
    await fsyncAll([this.dir]);
  }

  async #openSegment(): Promise<Segment> {
    mkdirSync(this.dir, { recursive: true });
    const file = path.join(this.dir, `${HOST_TAG}-${SELF.pid}-${Date.now()}-${this.#seq++}${SEGMENT_EXT}`);
    const fd = await new Promise<number>((resolve, reject) =>
      open(file, 'wx', 0o600, (error, fd) => (error === null ? resolve(fd) : reject(error))),
    );
    const segment: Segment = { file, fd, open: 0, drained: [] };
    const header: SegmentHeader = { owner: SELF };
    await writeAll(fd, Buffer.from(JSON.stringify(header) + '\n'));
    // The segment's name must be on disk before any append in it is acknowledged.
    await fsyncAll([this.dir]);
    this.#current = segment;
    return segment;
  }
}

/** Segment files in a journal folder (none if it does not exist). */
export function segmentFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith(SEGMENT_EXT))
      .sort();
  } catch {
    return [];
  }
}

/** `syncfs` of the file system that holds `dir`: everything written to it is on disk once it returns. */
function syncFileSystem(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('sync', ['-f', dir], { timeout: 600_000 }, (error, _out, stderr) => {
      if (error === null) resolve();
      else
        reject(
          new BatchdError(
            'INTERNAL',
            `sync -f ${dir} failed: ${stderr.trim() || error.message}`,
            { file: dir },
            { cause: error },
          ),
        );
    });
  });
}

async function appendLines(fd: number, lines: readonly object[]): Promise<void> {
  const text = lines.map((line) => JSON.stringify(line)).join('\n') + '\n';
  await writeAll(fd, Buffer.from(text, 'utf8'));
  await new Promise<void>((resolve, reject) =>
    fdatasync(fd, (error) => (error === null ? resolve() : reject(error))),
  );
}

async function writeAll(fd: number, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.length) {
    off += await new Promise<number>((resolve, reject) =>
      write(fd, data, off, data.length - off, null, (error, n) =>
        error === null ? resolve(n) : reject(error),
      ),
    );
  }
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve) => close(fd, () => resolve()));
}
