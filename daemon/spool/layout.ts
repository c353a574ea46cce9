import path from 'node:path';

import { NAME_PATTERN } from '../config/schema.ts';
import { BatchdError } from '../errors.ts';
import { isJobId, shardOf } from '../jobs/id.ts';
import { type JobStateName, isFinished } from '../jobs/status.ts';

/** Folders of a queue that are not job states. */
export const QUEUE_FOLDERS = {
  incoming: 'incoming',
  rejected: 'rejected',
  requests: 'requests',
  tasks: 'tasks',
  staging: '.staging',
} as const;

export const QUEUE_FILE = 'queue.yaml';
/** Claim locks live outside the state folders, so moving a job does not move its lock. */
export const LOCKS_FOLDER = '.locks';
/** The acceptance journal's segments (spool/journal.ts). */
export const JOURNAL_FOLDER = '.journal';

/** Every path the daemon touches in a spool is made here, from checked names. */
export class SpoolLayout {
  readonly root: string;

  /** `root` with no trailing separator ("" for "/"), so paths below are made by concatenation. */
  readonly #prefix: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.#prefix = this.root === path.sep ? '' : this.root;
  }

  // Paths are joined by concatenation, not path.join: every part is a checked name (no separator,
  // no "." or ".."), and this runs for every job the daemon indexes or lists.

  queueDir(queue: string): string {
    assertQueueName(queue);
    return `${this.#prefix}/${queue}`;
  }

  folder(queue: string, folder: keyof typeof QUEUE_FOLDERS): string {
    return `${this.queueDir(queue)}/${QUEUE_FOLDERS[folder]}`;
  }

  stateDir(queue: string, state: JobStateName): string {
    return `${this.queueDir(queue)}/${state}`;
  }

  /** Finished jobs are sharded by submission date so no folder grows without bound. */
  jobDir(queue: string, state: JobStateName, id: string): string {
    assertJobId(id);
    const base = this.stateDir(queue, state);
    return isFinished(state) ? `${base}/${shardOf(id)}/${id}` : `${base}/${id}`;
  }

  lockPath(id: string): string {
    assertJobId(id);
    return path.join(this.root, LOCKS_FOLDER, `${id}.lock`);
  }

  journalDir(): string {
    return path.join(this.root, JOURNAL_FOLDER);
  }

  taskDir(queue: string, task: string): string {
    assertName(task, 'task');
    return path.join(this.folder(queue, 'tasks'), task);
  }
}

export function isQueueName(name: string): boolean {
  return NAME_PATTERN.test(name) && !name.startsWith('.');
}

export function assertQueueName(name: string): void {
  if (!isQueueName(name)) {
    throw new BatchdError(
      'NAME_INVALID',
      `Invalid queue name ${JSON.stringify(name)}: use letters, digits, "_", "." or "-"`,
      {
        queue: name,
      },
    );
  }
}

export function assertJobId(id: string): void {
  if (!isJobId(id))
    throw new BatchdError('NAME_INVALID', `Invalid job id ${JSON.stringify(id)}`, { jobId: id });
}

export function assertName(value: string, what: string): void {
  if (!NAME_PATTERN.test(value)) {
    throw new BatchdError('NAME_INVALID', `Invalid ${what} name ${JSON.stringify(value)}`, { [what]: value });
  }
}
