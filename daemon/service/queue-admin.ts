import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';

import { isMap, parseDocument } from 'yaml';

import { queueSettingsSchema } from '../config/schema.ts';
import type { ConfigStore } from '../config/store.ts';
import { BatchdError, errnoCode } from '../errors.ts';
import type { JobStateName } from '../jobs/status.ts';
import type { QueueCreate, QueuePurge, QueueSettingsInput } from '../protocol/queues.ts';
import { writeFileAtomic } from '../spool/atomic.ts';
import { QUEUE_FILE, type SpoolLayout } from '../spool/layout.ts';
import type { QueueRegistry } from '../spool/queues.ts';
import type { RequestVerb } from '../spool/requests.ts';
import { readConfigText } from '../config/safe-read.ts';
import type { JobCounts } from '../views/counts.ts';
import type { QueueAdmin } from './port.ts';
import { deleteFinishedJob, type PurgeDeps, purgeQueue } from './purge.ts';

export interface QueueAdminDeps extends PurgeDeps {
  layout: SpoolLayout;
  queues: QueueRegistry;
  config: ConfigStore;
  counts: JobCounts;
  /** Take a queue folder just made (watch it, scan its drops). */
  added(queue: string): void;
  /** Forget a queue whose folder was removed. */
  removed(queue: string): void;
  /** Put every journaled acceptance on disk (before anything removes job folders). */
  settleAcceptances(): Promise<void>;
}

/**
 * Queue create, update and delete over the spool: a queue is a folder with an optional
 * `queue.yaml`, so these are mkdir, an atomic write (keeping the user's comments) and a rename.
 */
export class SpoolQueueAdmin implements QueueAdmin {
  readonly #deps: QueueAdminDeps;

  constructor(deps: QueueAdminDeps) {
    this.#deps = deps;
  }

  create(input: QueueCreate): void {
    const { layout, queues, config } = this.#deps;
    const { name, ...settings } = input;
    const dir = layout.queueDir(name);
    if (queues.has(name) || existsSync(dir))
      throw new BatchdError('ALREADY_EXISTS', `Queue "${name}" already exists`, { queue: name });
    const text = settingsText(config, undefined, settings);
    mkdirSync(dir);
    writeFileAtomic(path.join(dir, QUEUE_FILE), text, config.daemon.storage.fsync);
    this.#deps.added(name);
  }

  update(name: string, change: QueueSettingsInput): void {
    const { layout, queues, config, counts } = this.#deps;
    const file = path.join(layout.queueDir(name), QUEUE_FILE);
    let current: string | undefined;
    try {
      current = readConfigText(file, undefined, true);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
    writeFileAtomic(file, settingsText(config, current, change), config.daemon.storage.fsync);
    queues.reload(name);
    counts.invalidate(name);
  }

  /**
   * Delete a queue folder. Refused for the default queue, while jobs run, and (unless forced) while
   * it holds any job or drop. The folder is first renamed out of sight, so nothing half-deleted is
   * ever taken for a queue.
   */
  async delete(name: string, forced: boolean): Promise<void> {
    const { layout, config, counts: cache } = this.#deps;
    if (name === config.daemon.default_queue) {
      throw new BatchdError(
        'CONFLICT',
        `Queue "${name}" is the default queue (default_queue in batchd.yaml); it cannot be deleted`,
        { queue: name },
      );
    }
    cache.invalidate(name);
    const counts = cache.of(name);
    if (counts.running > 0)
      throw new BatchdError(
        'NOT_EMPTY',
        `Queue "${name}" has ${counts.running} running job(s); cancel them first`,
        { queue: name },
      );
    const jobs = counts.queued + counts.done + counts.failed + counts.cancelled;
    const drops = countEntries(layout.folder(name, 'incoming'));
    if (!forced && jobs + drops > 0) {
      throw new BatchdError(
        'NOT_EMPTY',
        `Queue "${name}" holds ${jobs} job(s) and ${drops} drop(s); add ?forced=true to delete them with it`,
        { queue: name },
      );
    }
    await this.#deps.settleAcceptances(); // a queue made again under this name must not get its jobs back
    const trash = path.join(layout.root, `.deleted-${name}-${Date.now()}`);
    renameSync(layout.queueDir(name), trash);
    this.#deps.removed(name);
    cache.invalidate(name);
    rmSync(trash, { recursive: true, force: true });
  }

  purge(queue: string, status: JobStateName): Promise<QueuePurge> {
    return purgeQueue(this.#deps, queue, status);
  }

  deleteFinishedJob(id: string): Promise<void> {
    return deleteFinishedJob(this.#deps, id);
  }

  /** Another dispatcher runs the job: leave it the same request file a user would (spool/requests.ts). */
  leaveRequest(queue: string, id: string, verb: RequestVerb, text: string): void {
    writeFileAtomic(path.join(this.#deps.layout.folder(queue, 'requests'), `${id}.${verb}`), text, false);
  }
}

/** The new queue.yaml text: the old document with the changes applied, comments kept; checked in full. */
function settingsText(config: ConfigStore, current: string | undefined, change: QueueSettingsInput): string {
  const doc = parseDocument(current ?? '');
  if (!isMap(doc.contents)) doc.contents = doc.createNode({}) as never;
  for (const [key, value] of Object.entries(change)) {
    if (value === undefined) continue;
    if (value === null || (key === 'host_name' && value === '*')) doc.delete(key);
    else doc.set(key, value);
  }
  const result = queueSettingsSchema.safeParse(doc.toJS());
  if (!result.success) {
    const problems = result.error.issues.map((i) => ({
      field: i.path.map(String).join('.'),
      message: i.message,
    }));
    throw new BatchdError(
      'ENTITY_INVALID',
      `Invalid queue settings: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
      {},
      { problems },
    );
  }
  const schedule = result.data.schedule_name;
  if (config.schedule(schedule) === undefined) {
    throw new BatchdError(
      'UNKNOWN_SCHEDULE',
      `Unknown schedule "${schedule}"`,
      { schedule },
      { problems: [{ field: 'schedule_name', message: `Unknown schedule "${schedule}"` }] },
    );
  }
  const type = result.data.type;
  if (type !== undefined && config.jobType(type) === undefined) {
    throw new BatchdError(
      'UNKNOWN_TYPE',
      `Unknown job type "${type}"`,
      { type },
      { problems: [{ field: 'type', message: `Unknown job type "${type}"` }] },
    );
  }
  return String(doc);
}

function countEntries(dir: string): number {
  try {
    return readdirSync(dir).filter((n) => !n.startsWith('.')).length;
  } catch {
    return 0;
  }
}
