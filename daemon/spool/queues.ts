import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import { changedAndSettled, fileStamp } from '../config/file-stamp.ts';
import { parseText } from '../config/parse.ts';
import { type QueueSettings, queueSettingsSchema } from '../config/schema.ts';
import { coerceError } from '../errors.ts';
import type { EventBus } from '../events.ts';
import { JOB_STATES } from '../jobs/status.ts';
import type { Logger } from '../log.ts';
import { isQueueName, QUEUE_FILE, QUEUE_FOLDERS, type SpoolLayout } from './layout.ts';

const DEFAULTS: QueueSettings = queueSettingsSchema.parse({});

/**
 * The queues of a spool: every folder with a valid name is one (`mkdir` makes a queue; its other
 * folders are filled in here). `queue.yaml` is optional; an invalid edit keeps the last good one.
 */
export class QueueRegistry {
  readonly #layout: SpoolLayout;
  readonly #log: Logger;
  readonly #events: EventBus;
  readonly #queues = new Map<string, QueueSettings>();
  /** How each queue's `queue.yaml` looked (its stats) when it was last read. */
  readonly #read = new Map<string, string | undefined>();

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
      if (!isQueueName(name) || this.#queues.has(name)) continue;
      try {
        if (!statSync(path.join(this.#layout.root, name)).isDirectory()) continue;
      } catch {
        continue;
      }
      this.ensure(name);
      found.push(name);
    }
    return found;
  }

  /** Create a queue's folders (idempotent) and load its settings. */
  ensure(name: string): void {
    const dir = this.#layout.queueDir(name);
    for (const folder of [...Object.values(QUEUE_FOLDERS), ...JOB_STATES]) {
      mkdirSync(path.join(dir, folder), { recursive: true });
    }
    if (!this.#queues.has(name)) this.#queues.set(name, DEFAULTS);
    this.reload(name);
  }

  reload(name: string): void {
    // A late watcher event (queue.yaml gone with its deleted folder) must not bring a removed queue back.
    if (!this.#queues.has(name)) return;
    const file = path.join(this.#layout.queueDir(name), QUEUE_FILE);
    // Taken before the read: a write that lands after it shows as a change at the next refresh.
    this.#read.set(name, fileStamp(file)?.key);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      this.#queues.set(name, DEFAULTS);
      this.#events.emit('queue:changed', { queue: name });
      return;
    }
    try {
      this.#queues.set(name, parseText(text, queueSettingsSchema, file));
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

  /** Settings changed in memory only (autostart); `queue.yaml` is the user's file. */
  override(name: string, change: Partial<QueueSettings>): void {
    this.#queues.set(name, { ...this.settings(name), ...change });
    this.#events.emit('queue:changed', { queue: name });
  }
}
