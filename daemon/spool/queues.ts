import { lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

import { changedAndSettled, fileStamp } from '../config/file-stamp.ts';
import { parseText } from '../config/parse.ts';
import { type QueueSettings, queueSettingsSchema } from '../config/schema.ts';
import { coerceError, errnoCode } from '../errors.ts';
import type { EventBus } from '../events.ts';
import { JOB_STATES } from '../jobs/status.ts';
import type { Logger } from '../log.ts';
import { writeFileAtomic } from './atomic.ts';
import { isQueueName, QUEUE_FILE, QUEUE_FOLDERS, type SpoolLayout } from './layout.ts';
import { readBounded, readConfigText } from '../config/safe-read.ts';

const DEFAULTS: QueueSettings = queueSettingsSchema.parse({});

/**
 * The queues of a spool: every folder with a valid name is one (`mkdir` makes a queue; its other
 * folders are filled in here). `queue.yaml` is optional; an invalid edit keeps the last good one.
 *
 * A queue and each of its folders must be a real folder inside the spool: a symlink (to a folder
 * elsewhere) is refused with a warning, so the daemon never builds, takes drops from or moves jobs
 * into a tree outside the spool. `queue.yaml` is read as config/safe-read.ts reads configuration.
 */
export class QueueRegistry {
  readonly #layout: SpoolLayout;
  readonly #log: Logger;
  readonly #events: EventBus;
  readonly #queues = new Map<string, QueueSettings>();
  /** How each queue's `queue.yaml` looked (its stats) when it was last read. */
  readonly #read = new Map<string, string | undefined>();
  /** Queue names refused (not real folders), so the warning is given once, not at every rescan. */
  readonly #refused = new Set<string>();

  constructor(layout: SpoolLayout, events: EventBus, log: Logger) {
    this.#layout = layout;
    this.#events = events;
    this.#log = log;
  }

  names(): string[] {
    return [...this.#queues.keys()];
  }

  has(name: string): boolean {
    return this.#queues.has(name);
  }

  settings(name: string): QueueSettings {
    return this.#queues.get(name) ?? DEFAULTS;
  }

  /** Find queue folders that appeared (or went); returns the new ones. */
  scan(): string[] {
    const found: string[] = [];
    let entries: string[];
    try {
      entries = readdirSync(this.#layout.root);
    } catch {
      return found;
    }
    for (const name of entries) {
      if (this.#queues.has(name)) continue;
      if (!isQueueName(name)) {
        // Hidden entries (.locks, .staging, .journal) are the daemon's own; anything else was meant as a queue.
        if (!name.startsWith('.') && !this.#refused.has(name)) {
          this.#refused.add(name);
          this.#log.warn(
            { path: path.join(this.#layout.root, name) },
            `ignored ${path.join(this.#layout.root, name)}: not a queue name (letters, digits, "_", "." or "-", starting with a letter or digit, at most 64); rename it, e.g. to ${JSON.stringify(suggestQueueName(name))}`,
          );
        }
        continue;
      }
      try {
        const st = lstatSync(this.#layout.queueDir(name));
        if (!st.isDirectory() && !st.isSymbolicLink()) continue; // a file beside the queues
      } catch {
        continue;
      }
      if (this.ensure(name, false)) found.push(name);
    }
    // A refused name that went is warned about again if it comes back.
    const present = new Set(entries);
    for (const name of this.#refused) if (!present.has(name)) this.#refused.delete(name);
    return found;
  }

  /**
   * Create a queue's folders (idempotent) and load its settings. False, with a warning, when the
   * queue or one of its folders is not a real folder (a symlink, a file): the queue is not taken.
   *
   * `create` false is for a queue folder that was seen (a scan, a watcher event): it is never made
   * again, so a late event for a queue deleted since does not bring it back; false, silently, when
   * it is gone.
   */
  ensure(name: string, create = true): boolean {
    const dir = this.#layout.queueDir(name);
    const folders = [dir, ...[...Object.values(QUEUE_FOLDERS), ...JOB_STATES].map((f) => path.join(dir, f))];
    for (const folder of folders) {
      const problem = realFolder(folder, create || folder !== dir);
      if (problem === undefined) continue;
      if (problem === GONE) return false;
      if (!this.#refused.has(name)) {
        this.#refused.add(name);
        this.#log.warn(
          { queue: name, path: folder },
          `queue refused: ${folder} is ${problem}; a queue and its folders must be real folders inside the spool`,
        );
      }
      return false;
    }
    this.#refused.delete(name);
    if (!this.#queues.has(name)) this.#queues.set(name, DEFAULTS);
    this.reload(name);
    return true;
  }

  reload(name: string): void {
    // A late watcher event (queue.yaml gone with its deleted folder) must not bring a removed queue back.
    if (!this.#queues.has(name)) return;
    const file = path.join(this.#layout.queueDir(name), QUEUE_FILE);
    // Taken before the read: a write that lands after it shows as a change at the next refresh.
    this.#read.set(name, fileStamp(file)?.key);
    let text: string;
    try {
      text = readConfigText(file, QUEUE_FILE_MAX_BYTES, true);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') {
        this.#queues.set(name, this.#withAutostart(name, DEFAULTS));
        this.#events.emit('queue:changed', { queue: name });
        return;
      }
      // A FIFO, a symlink, a huge file: not read; its name and kind are all that is said of it.
      const message = coerceError(error).message;
      this.#log.warn(
        { queue: name, file },
        `queue settings refused (the last good version stays in force): ${message}`,
      );
      this.#events.emit('config:invalid', { file, message });
      return;
    }
    try {
      this.#queues.set(name, this.#withAutostart(name, parseText(text, queueSettingsSchema, file)));
      this.#events.emit('queue:changed', { queue: name });
    } catch (error) {
      const message = coerceError(error).message;
      this.#log.error(
        { queue: name, file },
        `invalid queue settings (the last good version stays in force): ${message}`,
      );
      this.#events.emit('config:invalid', { file, message });
    }
  }

  /**
   * Reload a queue whose `queue.yaml` changed since it was last read and has been left alone for
   * `settleMs` (a write still going on waits for the next time): the rescan's backstop for an
   * edit the watcher missed. One `stat` per queue.
   */
  refresh(name: string, settleMs: number): void {
    if (!this.#queues.has(name)) return;
    const now = fileStamp(path.join(this.#layout.queueDir(name), QUEUE_FILE));
    if (changedAndSettled(now, this.#read.get(name), settleMs)) this.reload(name);
  }

  /** Forget a queue whose folder is gone. */
  remove(name: string): void {
    this.#read.delete(name);
    if (this.#queues.delete(name)) this.#events.emit('queue:changed', { queue: name });
  }

  /** Settings changed in memory only; `queue.yaml` is the user's file. */
  override(name: string, change: Partial<QueueSettings>): void {
    this.#queues.set(name, { ...this.settings(name), ...change });
    this.#events.emit('queue:changed', { queue: name });
  }

  /**
   * A queue enabled by its autostart_job_count. `queue.yaml` is the user's file, so the daemon
   * records it beside it (AUTOSTART_MARK, with the stamp of the queue.yaml it enabled): it holds
   * across restarts until the user edits `queue.yaml`.
   */
  autostarted(name: string): void {
    this.#queues.set(name, { ...this.settings(name), enabled: true });
    try {
      writeFileAtomic(this.#markFile(name), `${this.#read.get(name) ?? ''}\n`, false);
    } catch (error) {
      this.#log.warn(
        { queue: name, err: coerceError(error) },
        'could not record the autostart (a restart forgets it)',
      );
    }
    this.#events.emit('queue:changed', { queue: name });
  }

  /** Settings as read, enabled if autostart enabled them and queue.yaml is still the one it saw. */
  #withAutostart(name: string, settings: QueueSettings): QueueSettings {
    if (
      settings.enabled ||
      settings.autostart_job_count === null ||
      settings.autostart_job_count === undefined
    )
      return settings;
    const mark = readBounded(this.#markFile(name), 1024);
    if (mark.status !== 'read') return settings;
    if (mark.bytes.toString('utf8').trim() === (this.#read.get(name) ?? ''))
      return { ...settings, enabled: true };
    rmSync(this.#markFile(name), { force: true }); // queue.yaml was edited since: the user decides again
    return settings;
  }

  #markFile(name: string): string {
    return path.join(this.#layout.queueDir(name), AUTOSTART_MARK);
  }
}

/** Beside queue.yaml: the queue was enabled by autostart_job_count (see autostarted()). */
const AUTOSTART_MARK = '.autostarted';

/** queue.yaml holds a few settings: far less than this. */
const QUEUE_FILE_MAX_BYTES = 256 * 1024;

/** What realFolder answers when the folder (or its parent) went away: the queue was deleted. */
const GONE = 'gone';

/**
 * Make a folder that is missing (if `create`); undefined when `folder` is (now) a real folder, else
 * what it is. Never recursive: a queue folder renamed away meanwhile is not made again by a child.
 */
function realFolder(folder: string, create: boolean): string | undefined {
  if (create) {
    try {
      mkdirSync(folder);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT') return GONE;
      if (code !== 'EEXIST') return `not creatable (${code ?? 'error'})`;
    }
  }
  try {
    const st = lstatSync(folder);
    if (st.isDirectory()) return undefined;
    return st.isSymbolicLink() ? 'a symbolic link' : 'not a folder';
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return GONE;
    return `not readable (${errnoCode(error) ?? 'error'})`;
  }
}

/** A usable queue name close to one that is not: `my renders` → `my-renders`. */
function suggestQueueName(name: string): string {
  const cleaned = name
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64);
  return cleaned === '' ? 'queue' : cleaned;
}
