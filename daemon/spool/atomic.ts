import { closeSync, fsync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { BatchdError, errnoCode } from '../errors.ts';

/**
 * Write a file by write-temp-then-rename, so readers see the old or the new content, never half.
 * Synchronous on purpose: these files are small, and the dispatcher's hot path is cheaper without
 * a thread-pool round trip per call.
 */
export function writeFileAtomic(file: string, data: string, durable: boolean): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    if (durable) {
      const fd = openSync(tmp, 'w', 0o644);
      try {
        writeFileSync(fd, data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } else {
      writeFileSync(tmp, data);
    }
    renameSync(tmp, file);
  } catch (error) {
    throw diskError(error, file);
  }
  if (durable) fsyncDir(path.dirname(file));
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * fsync many files and folders at once, through the thread pool. On ext4 the journal commits
 * concurrent fsyncs together, so a batch costs a few commits where a loop costs one per path.
 * At most `parallel` descriptors are open at a time; the first error stops it.
 */
export async function fsyncAll(paths: Iterable<string>, parallel = 256): Promise<void> {
  const list = [...new Set(paths)];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < list.length) {
      try {
        const fd = openSync(list[next++] as string, 'r');
        try {
          await new Promise<void>((resolve, reject) =>
            fsync(fd, (error) => (error === null ? resolve() : reject(error))),
          );
        } finally {
          closeSync(fd);
        }
      } catch (error) {
        next = list.length;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, list.length) }, worker));
}

/** ENOSPC and EDQUOT become one clear error; anything else passes through. */
export function diskError(error: unknown, file: string): unknown {
  const code = errnoCode(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new BatchdError(
      'DISK_FULL',
      `No space left on the spool's file system while writing ${file}`,
      { file },
      { cause: error },
    );
  }
  return error;
}
