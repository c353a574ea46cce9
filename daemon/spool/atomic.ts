import { closeSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';
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

/** ENOSPC and EDQUOT become one clear error; anything else passes through. */
export function diskError(error: unknown, file: string): unknown {
  const code = errnoCode(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new BatchdError('DISK_FULL', `No space left on the spool's file system while writing ${file}`, { file }, { cause: error });
  }
  return error;
}
