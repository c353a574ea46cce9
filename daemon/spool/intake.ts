import { createHash } from 'node:crypto';
import { lstatSync, renameSync, type Stats, unlinkSync } from 'node:fs';
import path from 'node:path';

import { BatchdError, coerceError, errnoCode, type Problem } from '../errors.ts';
import type { JobSpec } from '../jobs/spec.ts';
import { slugify } from '../jobs/id.ts';
import type { Logger } from '../log.ts';
import type { Acceptance } from './acceptance.ts';
import { writeFileAtomic } from './atomic.ts';
import type { SpoolLayout } from './layout.ts';
import { decodeText, excerpt, readBounded, stringifyReport } from '../config/safe-read.ts';

export interface IntakeDeps {
  layout: SpoolLayout;
  log: Logger;
  /** Validate a job file's text for a queue (throws BatchdError with problems). */
  validate: (queue: string, text: string, file: string, slug: string) => JobSpec[];
  /** The one way in (acceptance.ts): it commits, announces and hands on the drop's jobs. */
  acceptance: Pick<Acceptance, 'accept'>;
  onRejected: (queue: string, file: string, error: BatchdError) => void;
  limits: () => { maxBytes: number; stableMs: number; durable: boolean };
}

const JOB_FILE_EXT = /\.(ya?ml|json)$/i;

/**
 * How a drop was noticed: its name appeared (`created`: a rename into incoming/ or a new file),
 * its content changed in place (`written`), or a folder scan found it (`scan`).
 */
export type DropSeen = 'created' | 'written' | 'scan';

/** Maildir's rule: dotfiles and files still being written under a temporary name are not drops. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || /\.(tmp|part|swp)$/i.test(name) || name.endsWith('~');
}

/**
 * Takes drops out of `incoming/`: a drop is accepted into `queued/` or set aside in `rejected/` with
 * an error file; its original bytes are never changed or deleted.
 *
 * Completeness: a file renamed into `incoming/` is complete and taken at once. A file written in
 * place (its writes are seen as `written` events) is taken once it has not changed for `stable_time`,
 * even if it is valid before that: a pause in a slow write can leave a valid prefix of the job.
 * A fresh file found by a scan (no events to tell) waits the same way. An invalid file is only
 * rejected once it has been stable that long.
 */
export class Intake {
  readonly #deps: IntakeDeps;
  readonly #busy = new Set<string>();
  readonly #waiting = new Map<string, NodeJS.Timeout>();
  /** Files seen written in place since they appeared. */
  readonly #written = new Set<string>();
  /** Valid fresh drops waiting for the event loop to deliver any write event (see #confirm). */
  readonly #confirming = new Map<string, NodeJS.Immediate>();
  /** Drops whose acceptance is under way (durable: they stay in incoming/ until their jobs are on disk). */
  readonly #committing = new Set<string>();

  constructor(deps: IntakeDeps) {
    this.#deps = deps;
  }

  /** Look at one entry of `incoming/`. Never throws: a bad drop is data. */
  handle(queue: string, name: string, seen: DropSeen = 'scan'): void {
    if (isIgnoredName(name)) return;
    const file = path.join(this.#deps.layout.folder(queue, 'incoming'), name);
    if (seen === 'written') this.#written.add(file);
    if (this.#busy.has(file) || this.#confirming.has(file) || this.#committing.has(file)) return;
    // A later event for a file we wait on means it was written again: look now, not at the timer.
    const waiting = this.#waiting.get(file);
    if (waiting !== undefined) {
      clearTimeout(waiting);
      this.#waiting.delete(file);
    }
    this.#busy.add(file);
    try {
      this.#take(queue, name, file, seen);
    } catch (error) {
      this.#deps.log.error(
        { queue, file, err: coerceError(error) },
        'could not take drop (it stays in incoming/)',
      );
    } finally {
      this.#busy.delete(file);
    }
  }

  /**
   * An entry whose name is not valid UTF-8 cannot be named in text (logs, error files, job ids):
   * it is set aside in rejected/ under the name with its bad bytes shown as U+FFFD.
   */
  handleUnreadableName(queue: string, raw: Buffer): void {
    const name = raw.toString('utf8');
    if (isIgnoredName(name)) return;
    const file = Buffer.concat([Buffer.from(this.#deps.layout.folder(queue, 'incoming') + path.sep), raw]);
    const error = new BatchdError(
      'DROP_BAD_NAME',
      `${name}: the file name is not valid UTF-8; rename it and drop it again`,
      { file: name },
    );
    try {
      this.#reject(queue, name, file, error);
    } catch (rejectError) {
      this.#deps.log.error(
        { queue, file: name, err: coerceError(rejectError) },
        'could not set aside a drop (it stays in incoming/)',
      );
    }
  }

  close(): void {
    for (const timer of this.#waiting.values()) clearTimeout(timer);
    this.#waiting.clear();
    for (const immediate of this.#confirming.values()) clearImmediate(immediate);
    this.#confirming.clear();
  }

  #take(queue: string, name: string, file: string, seen: DropSeen): void {
    const { maxBytes, stableMs, durable } = this.#deps.limits();
    const read = readBounded(file, maxBytes);
    if (read.status === 'gone') {
      this.#written.delete(file);
      return; // taken by another dispatcher, or renamed away
    }
    if (read.status === 'refused' && read.code === 'not_regular') {
      return this.#reject(
        queue,
        name,
        file,
        new BatchdError('DROP_NOT_REGULAR', `${name}: ${read.reason}; only regular job files are accepted`, {
          file: name,
        }),
      );
    }
    const stats = read.stats;
    if (stats === undefined) return;
    if (!JOB_FILE_EXT.test(name)) {
      if (this.#waitIfFresh(queue, name, file, stats, stableMs)) return;
      return this.#reject(
        queue,
        name,
        file,
        new BatchdError('DROP_BAD_NAME', `${name}: not a job file; name it *.yaml, *.yml or *.json`, {
          file: name,
        }),
      );
    }
    if (read.status === 'refused') {
      if (this.#waitIfFresh(queue, name, file, stats, stableMs)) return;
      return this.#reject(
        queue,
        name,
        file,
        new BatchdError('DROP_TOO_LARGE', `${name}: ${read.reason} (storage.max_job_file_size)`, {
          file: name,
        }),
      );
    }
    const decoded = decodeText(read.bytes);
    if ('binary' in decoded) {
      if (this.#waitIfFresh(queue, name, file, stats, stableMs)) return;
      return this.#reject(
        queue,
        name,
        file,
        new BatchdError(
          'DROP_BINARY',
          `${name}: binary content (${decoded.binary}); job files are UTF-8 text`,
          {
            file: name,
          },
        ),
      );
    }
    let specs: JobSpec[];
    try {
      specs = this.#deps.validate(queue, decoded.text, name, slugify(name));
    } catch (error) {
      if (this.#waitIfFresh(queue, name, file, stats, stableMs)) return;
      const problem =
        error instanceof BatchdError
          ? error
          : new BatchdError('JOB_INVALID', `${name}: ${coerceError(error).message}`, { file: name });
      return this.#reject(
        queue,
        name,
        file,
        stats.nlink > 1 ? unquoted(name, problem, stats.nlink) : problem,
      );
    }
    // Valid, but it may be a prefix of what a writer is still writing in place. A file larger than
    // one page may also be mid-write whose event has not been queued yet.
    const inPlace = seen === 'scan' || this.#written.has(file) || stats.size > 4096;
    if (inPlace && this.#waitIfFresh(queue, name, file, stats, stableMs)) return;
    if (!inPlace && Date.now() - stats.mtimeMs < stableMs)
      return this.#confirm(queue, name, file, stats, specs);
    this.#accept(queue, file, specs, durable);
  }

  #accept(queue: string, file: string, specs: JobSpec[], durable: boolean): void {
    this.#written.delete(file);
    this.#committing.add(file);
    this.#deps.acceptance
      .accept(queue, specs, { origin: { kind: 'drop', file }, durable, claim: true, wait: true })
      .finally(() => this.#committing.delete(file))
      .catch((error: unknown) =>
        this.#deps.log.error(
          { queue, file, err: coerceError(error) },
          'could not take drop (it stays in incoming/)',
        ),
      );
  }

  /**
   * A fresh valid file seen only by its `created` event: renamed in (complete), or created in place
   * with a write whose event is still on its way. Two turns of the event loop put a poll phase
   * between the read above and the decision; it delivers the event of any write whose bytes the
   * read saw. Written, or changed since the read: it waits for stability like any in-place write.
   */
  #confirm(queue: string, name: string, file: string, stats: Stats, specs: JobSpec[]): void {
    const decide = (): void => {
      this.#confirming.delete(file);
      let now: Stats | undefined;
      try {
        now = lstatSync(file);
      } catch {
        now = undefined;
      }
      if (
        now === undefined ||
        this.#written.has(file) ||
        now.mtimeMs !== stats.mtimeMs ||
        now.size !== stats.size
      ) {
        this.handle(queue, name, 'scan');
        return;
      }
      try {
        this.#accept(queue, file, specs, this.#deps.limits().durable);
      } catch (error) {
        this.#deps.log.error(
          { queue, file, err: coerceError(error) },
          'could not take drop (it stays in incoming/)',
        );
      }
    };
    this.#confirming.set(
      file,
      setImmediate(() => this.#confirming.set(file, setImmediate(decide))),
    );
  }

  /** Look again later if the file changed within `stable_time`. */
  #waitIfFresh(queue: string, name: string, file: string, st: Stats, stableMs: number): boolean {
    const age = Date.now() - st.mtimeMs;
    if (age >= stableMs) return false;
    const timer = setTimeout(
      () => {
        this.#waiting.delete(file);
        this.handle(queue, name);
      },
      stableMs - age + 5,
    );
    timer.unref();
    this.#waiting.set(file, timer);
    return true;
  }

  #reject(queue: string, name: string, file: string | Buffer, error: BatchdError): void {
    const rejectedDir = this.#deps.layout.folder(queue, 'rejected');
    const target = freeName(rejectedDir, keptName(name));
    // Messages quote the drop's values: each is cut to a short excerpt with control characters escaped.
    const problems: Problem[] = (error.problems.length > 0 ? error.problems : [{ message: error.message }])
      .slice(0, MAX_PROBLEMS)
      .map((p) => ({ ...p, message: excerpt(p.message, MAX_MESSAGE) }));
    const message = excerpt(error.message, MAX_MESSAGE);
    const report = {
      file: `${queue}/incoming/${name}`,
      kept_as: `${queue}/rejected/${path.basename(target)}`,
      rejected_at: new Date().toISOString(),
      code: error.code,
      message,
      problems,
    };
    const errorFile = `${target}.error.yaml`;
    try {
      writeFileAtomic(errorFile, stringifyReport(report), this.#deps.limits().durable);
      renameSync(file, target);
      if (typeof file === 'string') this.#written.delete(file);
    } catch (moveError) {
      try {
        unlinkSync(errorFile);
      } catch {
        // nothing written
      }
      if (errnoCode(moveError) === 'ENOENT') return; // another dispatcher took it
      throw moveError;
    }
    this.#deps.log.warn({ queue, file: name, code: error.code }, `drop rejected: ${message}`);
    this.#deps.onRejected(queue, target, error);
  }
}

/** How much of a rejected drop's problems its error file and log line quote. */
const MAX_MESSAGE = 400;
const MAX_PROBLEMS = 20;

/**
 * A drop with more than one hard link may be another name of a file the user cannot read (the
 * daemon can): its problems are counted and placed, never quoted.
 */
function unquoted(name: string, error: BatchdError, links: number): BatchdError {
  const problems = error.problems.length > 0 ? error.problems : [{ message: error.message }];
  const lines = [...new Set(problems.flatMap((p) => (p.line === undefined ? [] : [p.line])))];
  const where = lines.length > 0 ? ` (at line ${lines.slice(0, 10).join(', ')})` : '';
  const message =
    `${name}: not a valid job file: ${problems.length} problem(s)${where}; the file has ${links} ` +
    `hard links, so its content is not quoted here (copy it, or write it under a new name, to see them)`;
  return new BatchdError(error.code, message, { file: name });
}

/**
 * The name a rejected drop is kept under: its own, unless that leaves no room within NAME_MAX
 * (255 bytes) for `.error.yaml` and the temporary name it is written under; then a shortened
 * name made unique by a hash (the error file still names the original).
 */
function keptName(name: string): string {
  if (Buffer.byteLength(name) <= 200) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  let short = name.slice(0, 190);
  while (Buffer.byteLength(short) > 190) short = short.slice(0, -1);
  return `${short}~${hash}`;
}

function freeName(dir: string, name: string): string {
  let candidate = path.join(dir, name);
  for (let n = 1; exists(candidate) || exists(`${candidate}.error.yaml`); n++)
    candidate = path.join(dir, `${name}.${n}`);
  return candidate;
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
