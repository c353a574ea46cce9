import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';

import { isMap, parseDocument } from 'yaml';

import { queueSettingsSchema } from '../config/schema.ts';
import { isOpen, nextOpening } from '../dispatch/schedule.ts';
import { BatchdError, errnoCode } from '../errors.ts';
import type { QueueCreate, QueueInfo, QueueSettingsInput } from '../protocol/queues.ts';
import { writeFileAtomic } from '../spool/atomic.ts';
import { QUEUE_FILE } from '../spool/layout.ts';
import { readConfigText } from '../spool/safe-read.ts';
import type { ApiContext } from './context.ts';

/**
 * Queue create, update and delete over the spool: a queue is a folder with an optional
 * `queue.yaml`, so these are mkdir, an atomic write (keeping the user's comments) and a rename.
 */
export function queueInfo(ctx: ApiContext, name: string): QueueInfo {
  const s = ctx.daemon.queues.settings(name);
  const schedule = ctx.daemon.config.schedule(s.schedule_name);
  const now = new Date();
  const open = schedule !== undefined && isOpen(schedule, now);
  return {
    name,
    title: s.title ?? name,
    enabled: s.enabled,
    schedule_name: s.schedule_name,
    host_name: s.host_name ?? null,
    type: s.type ?? null,
    priority: s.priority,
    parallel: s.parallel ?? null,
    autostart_job_count: s.autostart_job_count ?? null,
    counts: ctx.counts.of(name),
    schedule_open: open,
    opens_at: open || schedule === undefined ? null : (nextOpening(schedule, now)?.toISOString() ?? null),
  };
}

export function assertQueue(ctx: ApiContext, name: string): void {
  if (!ctx.daemon.queues.has(name))
    throw new BatchdError('UNKNOWN_QUEUE', `Unknown queue "${name}"`, { queue: name });
}

export function createQueue(ctx: ApiContext, input: QueueCreate): void {
  const { name, ...settings } = input;
  const dir = ctx.daemon.layout.queueDir(name);
  if (ctx.daemon.queues.has(name) || existsSync(dir))
    throw new BatchdError('ALREADY_EXISTS', `Queue "${name}" already exists`, { queue: name });
  const text = settingsText(ctx, undefined, settings);
  mkdirSync(dir);
  writeFileAtomic(path.join(dir, QUEUE_FILE), text, ctx.daemon.config.daemon.storage.fsync);
  ctx.daemon.addQueue(name);
}

export function updateQueue(ctx: ApiContext, name: string, change: QueueSettingsInput): void {
  const file = path.join(ctx.daemon.layout.queueDir(name), QUEUE_FILE);
  let current: string | undefined;
  try {
    current = readConfigText(file, undefined, true);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
  writeFileAtomic(file, settingsText(ctx, current, change), ctx.daemon.config.daemon.storage.fsync);
  ctx.daemon.queues.reload(name);
  ctx.counts.invalidate(name);
}

/**
 * Delete a queue folder. Refused for the default queue, while jobs run, and (unless forced) while
 * it holds any job or drop. The folder is first renamed out of sight, so nothing half-deleted is
 * ever taken for a queue.
 */
export async function deleteQueue(ctx: ApiContext, name: string, forced: boolean): Promise<void> {
  const { daemon } = ctx;
  if (name === daemon.config.daemon.default_queue) {
    throw new BatchdError(
      'CONFLICT',
      `Queue "${name}" is the default queue (default_queue in batchd.yaml); it cannot be deleted`,
      { queue: name },
    );
  }
  ctx.counts.invalidate(name);
  const counts = ctx.counts.of(name);
  if (counts.running > 0)
    throw new BatchdError(
      'NOT_EMPTY',
      `Queue "${name}" has ${counts.running} running job(s); cancel them first`,
      { queue: name },
    );
  const jobs = counts.queued + counts.done + counts.failed + counts.cancelled;
  const drops = countEntries(daemon.layout.folder(name, 'incoming'));
  if (!forced && jobs + drops > 0) {
    throw new BatchdError(
      'NOT_EMPTY',
      `Queue "${name}" holds ${jobs} job(s) and ${drops} drop(s); add ?forced=true to delete them with it`,
      { queue: name },
    );
  }
  await daemon.settleAcceptances(); // a queue made again under this name must not get its jobs back
  const trash = path.join(daemon.layout.root, `.deleted-${name}-${Date.now()}`);
  renameSync(daemon.layout.queueDir(name), trash);
  daemon.forgetQueue(name);
  ctx.counts.invalidate(name);
  rmSync(trash, { recursive: true, force: true });
}

/** The new queue.yaml text: the old document with the changes applied, comments kept; checked in full. */
function settingsText(ctx: ApiContext, current: string | undefined, change: QueueSettingsInput): string {
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
  if (ctx.daemon.config.schedule(schedule) === undefined) {
    throw new BatchdError(
      'UNKNOWN_SCHEDULE',
      `Unknown schedule "${schedule}"`,
      { schedule },
      { problems: [{ field: 'schedule_name', message: `Unknown schedule "${schedule}"` }] },
    );
  }
  const type = result.data.type;
  if (type !== undefined && ctx.daemon.config.jobType(type) === undefined) {
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
