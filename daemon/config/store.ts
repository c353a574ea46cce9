import { readdirSync } from 'node:fs';
import path from 'node:path';

import { type FSWatcher, watch } from 'chokidar';
import type { z } from 'zod';

import { BatchdError, coerceError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { readConfigText } from './safe-read.ts';
import { ANYTIME_SCHEDULE, COMMAND_TYPE } from './builtins.ts';
import { adaptCommandType } from './command-type.ts';
import { changedAndSettled, fileStamp } from './file-stamp.ts';
import { parseText } from './parse.ts';
import {
  type DaemonConfig,
  daemonConfigSchema,
  type JobType,
  jobTypeSchema,
  type Schedule,
  scheduleSchema,
} from './schema.ts';

/**
 * chokidar reports a file edited in place at its first write (often the truncation) and drops
 * further change events for 50 ms, so reading at once can load an empty or half-written file and
 * never see the rest. Wait until the file's size has settled instead.
 */
export const SETTLED_WRITES = { stabilityThreshold: 100, pollInterval: 20 } as const;

interface Collection<T> {
  folder: string;
  schema: z.ZodType<T>;
  items: Map<string, T>;
  builtins: readonly T[];
  adapt: CollectionSpec<T>['adapt'];
}

/** Plugins (hosts, controllers) register more folders of `etc/` the same way. */
export interface CollectionSpec<T> {
  folder: string;
  schema: z.ZodType<T>;
  builtins?: readonly T[];
  /** Turns a valid item into the one in force; `note` is logged as a warning (command-type.ts). */
  adapt?: (item: T) => { item: T; note?: string };
}

/**
 * Where the store announces reloads and refused files (the daemon's EventBus). Declared here, not
 * imported from events.ts: configuration sits below the event bus in the layering.
 */
export interface ConfigEvents {
  emit(name: 'config:reloaded', payload: { file: string }): void;
  emit(name: 'config:invalid', payload: { file: string; message: string }): void;
}

/**
 * Holds the configuration in force. Each file is validated on its own; an invalid edit is
 * reported with file, line and field, and the last good version of that file stays in force.
 */
export class ConfigStore {
  readonly dir: string | undefined;
  daemon: DaemonConfig;
  readonly #collections = new Map<string, Collection<{ name: string }>>();
  readonly #events: ConfigEvents;
  readonly #log: Logger;
  #watcher: FSWatcher | undefined;
  /** How each file looked (its stats) when it was last read; a file not there then maps to undefined. */
  readonly #read = new Map<string, string | undefined>();

  constructor(dir: string | undefined, events: ConfigEvents, log: Logger) {
    this.dir = dir;
    this.#events = events;
    this.#log = log;
    this.daemon = this.#readDaemonConfig(true) ?? daemonConfigSchema.parse({});
    this.register({
      folder: 'jobtypes',
      schema: jobTypeSchema,
      builtins: [COMMAND_TYPE],
      adapt: adaptCommandType,
    });
    this.register({ folder: 'schedules', schema: scheduleSchema, builtins: [ANYTIME_SCHEDULE] });
  }

  register<T extends { name: string }>(spec: CollectionSpec<T>): void {
    const collection: Collection<T> = {
      folder: spec.folder,
      schema: spec.schema,
      items: new Map(),
      builtins: spec.builtins ?? [],
      adapt: spec.adapt,
    };
    for (const item of collection.builtins) collection.items.set(item.name, item);
    // Stored by folder with their item type erased; `adapt` only ever sees items of its own collection.
    this.#collections.set(spec.folder, collection as unknown as Collection<{ name: string }>);
    if (this.dir === undefined) return;
    for (const file of listConfigFiles(path.join(this.dir, spec.folder))) {
      this.#reloadItem(spec.folder, path.join(this.dir, spec.folder, file));
    }
  }

  jobType(name: string): JobType | undefined {
    return this.get<JobType>('jobtypes', name);
  }

  schedule(name: string): Schedule | undefined {
    return this.get<Schedule>('schedules', name);
  }

  get<T>(folder: string, name: string): T | undefined {
    return this.#collections.get(folder)?.items.get(name) as T | undefined;
  }

  list<T>(folder: string): T[] {
    return [...(this.#collections.get(folder)?.items.values() ?? [])] as T[];
  }

  /** Resolve a path from the config (relative to the config folder). */
  resolve(p: string): string {
    return path.resolve(this.dir ?? process.cwd(), p);
  }

  watch(): void {
    if (this.dir === undefined) return;
    this.#watcher = watch(this.dir, {
      ignoreInitial: true,
      depth: 1,
      ignored: (p) => path.basename(p).startsWith('.'),
      awaitWriteFinish: SETTLED_WRITES,
    });
    const onFile = (file: string): void => this.#onChange(file);
    this.#watcher.on('add', onFile).on('change', onFile).on('unlink', onFile);
    this.#watcher.on('error', (error) => this.#log.warn({ err: coerceError(error) }, 'config watcher error'));
  }

  async close(): Promise<void> {
    await this.#watcher?.close();
  }

  /** Take a file's change now, without waiting for the watcher (the API writes schedules). */
  reloadFile(file: string): void {
    this.#onChange(file);
  }

  /**
   * Reload every file that changed since it was last read, appeared or went away, once it has been
   * left alone for `settleMs`: the rescan's backstop for an edit the watcher missed (inotify drops
   * events when its queue overflows). A `stat` per file and a listing per folder.
   */
  refresh(settleMs: number): void {
    if (this.dir === undefined) return;
    const look = (file: string): void => {
      if (changedAndSettled(fileStamp(file), this.#read.get(file), settleMs)) this.#onChange(file);
    };
    look(path.join(this.dir, 'batchd.yaml'));
    for (const folder of this.#collections.keys()) {
      const dir = path.join(this.dir, folder);
      const seen = new Set(listConfigFiles(dir).map((f) => path.join(dir, f)));
      for (const file of this.#read.keys()) if (path.dirname(file) === dir) seen.add(file); // read before, maybe gone now
      for (const file of seen) look(file);
    }
  }

  #onChange(file: string): void {
    if (this.dir === undefined || !isConfigFile(file)) return;
    const rel = path.relative(this.dir, file);
    if (rel === 'batchd.yaml') {
      const next = this.#readDaemonConfig(false);
      if (next !== undefined) {
        this.daemon = next;
        this.#log.info({ file }, 'configuration reloaded');
        this.#events.emit('config:reloaded', { file });
      }
      return;
    }
    const folder = path.dirname(rel);
    if (this.#collections.has(folder)) this.#reloadItem(folder, file);
  }

  #reloadItem(folder: string, file: string): void {
    const collection = this.#collections.get(folder);
    if (collection === undefined) return;
    const stem = path.basename(file).replace(/\.(ya?ml|json)$/, '');
    // Taken before the read: a write that lands after it shows as a change at the next refresh.
    this.#read.set(file, fileStamp(file)?.key);
    let text: string;
    try {
      text = readConfigText(file);
    } catch (error) {
      if (error instanceof BatchdError) {
        // Not a regular text file (a FIFO, a symlink, huge): refused unread, like an invalid edit.
        this.#log.error({ file }, `invalid configuration: ${error.message}`);
        this.#events.emit('config:invalid', { file, message: error.message });
        return;
      }
      this.#read.delete(file);
      // Deleted: the built-in of that name comes back, otherwise the item is gone.
      const builtin = collection.builtins.find((b) => b.name === stem);
      if (builtin === undefined) collection.items.delete(stem);
      else collection.items.set(stem, builtin);
      this.#events.emit('config:reloaded', { file });
      return;
    }
    try {
      const item = parseText(text, collection.schema, file, 'CONFIG_INVALID', (data) => withName(data, stem));
      if (item.name !== stem) {
        throw new BatchdError(
          'CONFIG_INVALID',
          `${file}: field name: "${item.name}" must match the file name "${stem}"`,
          {
            file,
            field: 'name',
          },
        );
      }
      const adapted = collection.adapt?.(item) ?? { item };
      if (adapted.note !== undefined) this.#log.warn({ file }, `${folder}/${stem}: ${adapted.note}`);
      collection.items.set(stem, adapted.item);
      this.#log.info({ file }, `${folder}/${stem} loaded`);
      this.#events.emit('config:reloaded', { file });
    } catch (error) {
      const message = coerceError(error).message;
      const kept = collection.items.has(stem) ? ' (the last good version stays in force)' : '';
      this.#log.error({ file }, `invalid configuration${kept}: ${message}`);
      this.#events.emit('config:invalid', { file, message });
    }
  }

  #readDaemonConfig(initial: boolean): DaemonConfig | undefined {
    if (this.dir === undefined) return undefined;
    const file = path.join(this.dir, 'batchd.yaml');
    this.#read.set(file, fileStamp(file)?.key);
    let text: string;
    try {
      text = readConfigText(file);
    } catch (error) {
      if (error instanceof BatchdError && initial) throw error;
      if (error instanceof BatchdError) {
        this.#log.error(
          { file },
          `invalid configuration (the last good version stays in force): ${error.message}`,
        );
        this.#events.emit('config:invalid', { file, message: error.message });
      }
      return undefined;
    }
    try {
      return parseText(text, daemonConfigSchema, file);
    } catch (error) {
      if (initial) throw error;
      const message = coerceError(error).message;
      this.#log.error({ file }, `invalid configuration (the last good version stays in force): ${message}`);
      this.#events.emit('config:invalid', { file, message });
      return undefined;
    }
  }
}

/** The configuration files in a folder (none when it is missing). */
function listConfigFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter(isConfigFile);
  } catch {
    return [];
  }
}

function isConfigFile(file: string): boolean {
  return /\.(ya?ml|json)$/.test(file) && !path.basename(file).startsWith('.');
}

/** `name:` may be left out of a file: it defaults to the file name. */
function withName(data: unknown, stem: string): unknown {
  if (data === null || typeof data !== 'object' || Array.isArray(data) || 'name' in data) return data;
  return { name: stem, ...data };
}
