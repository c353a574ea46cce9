import { lstatSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';

import { BatchdError, coerceError } from '../errors.ts';
import { isJobId } from '../jobs/id.ts';
import type { Logger } from '../log.ts';
import { writeFileAtomic } from './atomic.ts';
import type { SpoolLayout } from './layout.ts';
import { decodeText, excerpt, readBounded } from '../config/safe-read.ts';

/**
 * Plain-file control of jobs: a file `<queue>/requests/<job-id>.<verb>` asks for a change.
 *   cancel    (content: an optional reason)   queued or running → cancelled
 *   retry                                      failed or cancelled → queued
 *   priority  (content: an integer, or first, more, less, last)   re-prioritise a queued job
 *   move      (content: a queue name)          move a queued job to another queue
 *   not_before (content: a time, or empty)     start a queued job no earlier than then (empty: clear)
 *   host      (content: a host name, or empty or *)   run a queued job there (empty/*: clear)
 *   notes     (content: the text, or empty to clear)  a job's notes (a running job's once it ended)
 *   pause     (content: an optional reason)   freeze a running job (dispatch/pause.ts)
 *   resume    (content: an optional reason)   thaw a paused job
 *   freeze    (content: who paused the queue)  a pause of the job's queue that froze its running jobs,
 *             left by the dispatcher that received it for each job another dispatcher runs: a pause
 *             that ends when the queue is enabled again
 * The API writes nothing else: it calls the same handlers. A request that cannot be carried out
 * is renamed to `<file>.rejected` beside an `.error` file saying why. A request file is read only
 * if it is a small regular file with one link (config/safe-read.ts): anything else is set aside unread.
 */
export const REQUEST_VERBS = [
  'cancel',
  'retry',
  'priority',
  'move',
  'not_before',
  'host',
  'notes',
  'pause',
  'resume',
  'freeze',
] as const;
export type RequestVerb = (typeof REQUEST_VERBS)[number];

export interface ControlHandlers {
  cancel(id: string, reason: string): Promise<'cancelled' | 'stopping' | 'elsewhere'>;
  retry(id: string): Promise<unknown>;
  setPriority(id: string, priority: number): Promise<void>;
  reorder(id: string, move: 'first' | 'more' | 'less' | 'last'): Promise<void>;
  move(id: string, queue: string): Promise<void>;
  setNotBefore(id: string, at: string | null): Promise<void>;
  setHost(id: string, host: string | null): Promise<void>;
  setNotes(id: string, notes: string | null): Promise<void>;
  /** `byQueue`: part of its queue's pause, thawed when the queue is enabled again. */
  pause(id: string, by: string, byQueue?: boolean): Promise<'paused' | 'elsewhere'>;
  resume(id: string, by: string): Promise<'resumed' | 'elsewhere'>;
}

/** A request's argument is a word, a time or a reason: more than this is not a request. */
export const REQUEST_MAX_BYTES = 4096;
/** Notes are free text: as long as the API takes them (PUT /job/:id). */
export const NOTES_MAX_BYTES = 65_536;

const PRIORITY_WORDS = new Set(['first', 'more', 'less', 'last']);

export function parseRequestName(name: string): { id: string; verb: RequestVerb } | undefined {
  const dot = name.lastIndexOf('.');
  if (dot < 0) return undefined;
  const id = name.slice(0, dot);
  const verb = name.slice(dot + 1) as RequestVerb;
  if (!isJobId(id) || !REQUEST_VERBS.includes(verb)) return undefined;
  return { id, verb };
}

/** Carry out one request; the argument is the file's content (trimmed). */
export async function applyRequest(
  handlers: ControlHandlers,
  id: string,
  verb: RequestVerb,
  argument: string,
): Promise<'done' | 'pending'> {
  switch (verb) {
    case 'cancel':
      return (await handlers.cancel(
        id,
        argument === '' ? 'cancel requested' : `cancel requested: ${argument}`,
      )) === 'elsewhere'
        ? 'pending'
        : 'done';
    case 'retry':
      await handlers.retry(id);
      return 'done';
    case 'priority': {
      const word = argument.toLowerCase();
      if (PRIORITY_WORDS.has(word)) {
        await handlers.reorder(id, word as 'first' | 'more' | 'less' | 'last');
        return 'done';
      }
      if (!/^-?\d+$/.test(argument)) {
        throw new BatchdError(
          'REQUEST_INVALID',
          `Expected an integer priority, got ${JSON.stringify(argument)} (or first, more, less, last)`,
          { jobId: id },
        );
      }
      await handlers.setPriority(id, Number(argument));
      return 'done';
    }
    case 'move':
      await handlers.move(id, argument);
      return 'done';
    case 'not_before': {
      const at = argument === '' ? null : new Date(argument);
      if (at !== null && Number.isNaN(at.getTime())) {
        throw new BatchdError(
          'REQUEST_INVALID',
          `Expected a time such as 2026-11-22T01:00:00+01:00 (or nothing, to clear), got ${JSON.stringify(argument)}`,
          { jobId: id },
        );
      }
      await handlers.setNotBefore(id, at === null ? null : at.toISOString());
      return 'done';
    }
    case 'host':
      await handlers.setHost(id, argument === '' || argument === '*' ? null : argument);
      return 'done';
    case 'notes':
      await handlers.setNotes(id, argument === '' ? null : argument);
      return 'done';
    case 'pause':
    case 'resume':
    case 'freeze': {
      const by = argument === '' ? 'request' : `request: ${argument}`;
      const result =
        verb === 'resume' ? await handlers.resume(id, by) : await handlers.pause(id, by, verb === 'freeze');
      return result === 'elsewhere' ? 'pending' : 'done';
    }
  }
}

export class RequestFolder {
  readonly #layout: SpoolLayout;
  readonly #handlers: ControlHandlers;
  readonly #log: Logger;
  readonly #busy = new Set<string>();
  readonly #settleMs: () => number;
  readonly #waiting = new Set<string>();
  /** Refused requests that could not be renamed away, by the stamp they had then. */
  readonly #stuck = new Map<string, string | undefined>();

  /** `settleMs`: how long a file written in place must stay unchanged before it is refused. */
  constructor(
    layout: SpoolLayout,
    handlers: ControlHandlers,
    log: Logger,
    settleMs: () => number = () => 500,
  ) {
    this.#layout = layout;
    this.#handlers = handlers;
    this.#log = log;
    this.#settleMs = settleMs;
  }

  scan(queue: string): Promise<void[]> {
    let names: string[];
    try {
      names = readdirSync(this.#layout.folder(queue, 'requests'));
    } catch {
      return Promise.resolve([]);
    }
    return Promise.all(names.map((name) => this.handle(queue, name)));
  }

  async handle(queue: string, name: string): Promise<void> {
    if (name.startsWith('.') || name.endsWith('.rejected') || name.endsWith('.error')) return;
    const file = path.join(this.#layout.folder(queue, 'requests'), name);
    if (this.#busy.has(file)) return;
    this.#busy.add(file);
    try {
      if (this.#stuck.get(file) === stampOf(file)) return; // set aside before, but it could not be moved
      this.#stuck.delete(file);
      // The name first: a file that is no request is set aside without being opened.
      const request = parseRequestName(name);
      if (request === undefined) {
        this.#reject(
          file,
          `Request files are named <job-id>.<verb>, with a verb of cancel, retry, priority or move; not_before or host for a queued job's start time or host, notes for its notes, pause, resume or freeze for a running job`,
        );
        return;
      }
      const argument = this.#readArgument(name, file, request.verb);
      if (argument === undefined) return;
      try {
        const result = await applyRequest(this.#handlers, request.id, request.verb, argument);
        if (result === 'done') unlinkSync(file);
        this.#log.info({ queue, jobId: request.id, verb: request.verb, result }, 'request carried out');
      } catch (error) {
        const err = coerceError(error);
        if (error instanceof BatchdError && error.code === 'JOB_LOCKED') return; // try again on the next scan
        // `echo 7 > x.priority` may be read between its open and its write: refuse only a settled file.
        if (this.#lookAgainIfFresh(queue, name, file)) return;
        this.#reject(file, err.message);
      }
    } catch (error) {
      this.#log.error({ file, err: coerceError(error) }, 'could not handle request file');
    } finally {
      this.#busy.delete(file);
    }
  }

  /** The request's argument, or undefined when the file is gone or was set aside unread. */
  #readArgument(name: string, file: string, verb: RequestVerb): string | undefined {
    const read = readBounded(file, verb === 'notes' ? NOTES_MAX_BYTES : REQUEST_MAX_BYTES);
    if (read.status === 'gone') return undefined; // handled by someone else already
    if (read.status === 'refused') {
      this.#reject(file, `${name}: ${read.reason}; a request is a small text file (it was not read)`);
      return undefined;
    }
    if (read.stats.nlink > 1) {
      // Another name of a file the writer may not be allowed to read: never quoted back.
      this.#reject(
        file,
        `${name}: has ${read.stats.nlink} hard links; write a request as a file of its own (it was not read)`,
      );
      return undefined;
    }
    const decoded = decodeText(read.bytes);
    if ('binary' in decoded) {
      this.#reject(file, `${name}: binary content (${decoded.binary}); a request is UTF-8 text`);
      return undefined;
    }
    return decoded.text.trim();
  }

  #lookAgainIfFresh(queue: string, name: string, file: string): boolean {
    let age: number;
    try {
      age = Date.now() - statSync(file).mtimeMs;
    } catch {
      return true; // gone: nothing to refuse
    }
    const settle = this.#settleMs();
    if (age >= settle) return false;
    if (this.#waiting.has(file)) return true;
    this.#waiting.add(file);
    const timer = setTimeout(
      () => {
        this.#waiting.delete(file);
        void this.handle(queue, name);
      },
      settle - age + 5,
    );
    timer.unref();
    return true;
  }

  /** Set a request aside; its content is quoted at most as a short escaped excerpt. */
  #reject(file: string, message: string): void {
    const shown = excerpt(message, 400);
    try {
      writeFileAtomic(`${file}.error`, shown + '\n', false);
      renameSync(file, `${file}.rejected`);
    } catch (error) {
      // Not moved: remember it as it is, so a rescan does not read and refuse it again and again.
      this.#stuck.set(file, stampOf(file));
      this.#log.error({ file, err: coerceError(error) }, `could not set aside a refused request: ${shown}`);
      return;
    }
    this.#log.warn({ file }, `request rejected: ${shown}`);
  }
}

/** A file's identity and last change, without following a link. */
function stampOf(file: string): string | undefined {
  try {
    const st = lstatSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return undefined;
  }
}
