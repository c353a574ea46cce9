import { type FSWatcher as NodeWatcher, watch as fsWatch } from 'node:fs';
import path from 'node:path';

import { type FSWatcher, watch } from 'chokidar';

import { SETTLED_WRITES } from '../config/store.ts';
import { coerceError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { isQueueName, QUEUE_FILE, type SpoolLayout } from './layout.ts';

export interface WatchHandlers {
  queueAppeared: (queue: string) => void;
  queueFileChanged: (queue: string) => void;
  /** `written`: the file's content changed in place (inotify IN_MODIFY); else its name appeared or went. */
  dropSeen: (queue: string, name: string, how: 'created' | 'written') => void;
  requestSeen: (queue: string, name: string) => void;
}

/**
 * Watching is a hint, the folder is the truth: inotify drops events when its queue overflows and
 * nothing reports it, so the daemon also rescans (see daemon.ts).
 *
 * chokidar watches the spool's top two levels for new queues and `queue.yaml` edits. The hot folders
 * (`incoming/`, `requests/`) get one plain fs.watch each: chokidar stats and watches every file it
 * reports, which costs a watch per drop under a burst and adds latency to every drop.
 */
export class SpoolWatcher {
  readonly #layout: SpoolLayout;
  readonly #handlers: WatchHandlers;
  readonly #log: Logger;
  readonly #folders = new Map<string, NodeWatcher>();
  #tree: FSWatcher | undefined;

  constructor(layout: SpoolLayout, handlers: WatchHandlers, log: Logger) {
    this.#layout = layout;
    this.#handlers = handlers;
    this.#log = log;
  }

  start(): void {
    const root = this.#layout.root;
    this.#tree = watch(root, {
      ignoreInitial: true,
      depth: 1,
      // A symlinked queue folder is refused (queues.ts): nothing beyond it is watched.
      followSymlinks: false,
      awaitWriteFinish: SETTLED_WRITES,
      ignored: (p: string) => {
        const rel = path.relative(root, p);
        if (rel === '') return false;
        const parts = rel.split(path.sep);
        if (!isQueueName(parts[0] ?? '')) return true;
        return parts.length > 2 || (parts.length === 2 && parts[1] !== QUEUE_FILE);
      },
    });
    const onQueueFile = (p: string): void => {
      const parts = path.relative(root, p).split(path.sep);
      if (parts.length === 2 && parts[0] !== undefined) this.#handlers.queueFileChanged(parts[0]);
    };
    this.#tree
      .on('addDir', (p) => {
        const rel = path.relative(root, p);
        if (rel !== '' && !rel.includes(path.sep) && isQueueName(rel)) this.#handlers.queueAppeared(rel);
      })
      .on('add', onQueueFile)
      .on('change', onQueueFile)
      .on('unlink', onQueueFile)
      .on('error', (error) =>
        this.#log.warn({ err: coerceError(error) }, 'spool watcher error; rescans continue'),
      );
  }

  /** Watch a queue's hot folders (idempotent). */
  watchQueue(queue: string): void {
    this.#watchFolder(queue, 'incoming', (name, event) =>
      this.#handlers.dropSeen(queue, name, event === 'change' ? 'written' : 'created'),
    );
    this.#watchFolder(queue, 'requests', (name) => this.#handlers.requestSeen(queue, name));
  }

  async close(): Promise<void> {
    for (const watcher of this.#folders.values()) watcher.close();
    this.#folders.clear();
    await this.#tree?.close();
  }

  #watchFolder(
    queue: string,
    folder: 'incoming' | 'requests',
    seen: (name: string, event: string) => void,
  ): void {
    const dir = this.#layout.folder(queue, folder);
    if (this.#folders.has(dir)) return;
    try {
      const watcher = fsWatch(dir, { persistent: false }, (event, name) => {
        if (typeof name === 'string' && name !== '') seen(name, event);
      });
      watcher.on('error', (error) => {
        this.#log.warn({ dir, err: coerceError(error) }, 'folder watch failed; rescans continue');
        watcher.close();
        this.#folders.delete(dir);
      });
      this.#folders.set(dir, watcher);
    } catch (error) {
      this.#log.warn({ dir, err: coerceError(error) }, 'cannot watch folder; rescans continue');
    }
  }
}
