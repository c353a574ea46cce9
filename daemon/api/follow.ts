import { type FileHandle, open } from 'node:fs/promises';
import path from 'node:path';

import { errnoCode } from '../errors.ts';
import type { EventBus } from '../events.ts';
import { isFinished } from '../jobs/status.ts';
import type { JobLocation } from '../service/port.ts';

export interface FollowDeps {
  events: EventBus;
  locate: (id: string) => JobLocation | undefined;
}

const POLL_MS = 250;
const CHUNK = 64 * 1024;

/**
 * Follow a job's log file as it grows, until the job has ended and the file is read to its end,
 * or `signal` aborts (the client went away). The file is opened once: its descriptor stays valid
 * when the job's folder moves from running/ to done/. Writes go to `write`; nothing leaks: the
 * event listener and the timer go when this returns.
 */
export async function followLog(
  id: string,
  file: string,
  deps: FollowDeps,
  write: (chunk: Uint8Array) => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  let handle: FileHandle | undefined;
  let position = 0;
  let wake: (() => void) | undefined;
  const poke = (): void => wake?.();
  const off = deps.events.on('job:transition', (e) => {
    if (e.jobId === id) poke();
  });
  signal.addEventListener('abort', poke);
  try {
    while (!signal.aborted) {
      const where = deps.locate(id);
      const ended = where === undefined || isFinished(where.state);
      if (handle === undefined && where !== undefined && where.state !== 'queued')
        handle = await openIfThere(path.join(where.dir, file));
      if (handle !== undefined) position = await drain(handle, position, write, signal);
      if (ended) {
        // The job may have ended between the look-up and the open: one last look at the file.
        if (handle === undefined && where !== undefined) {
          handle = await openIfThere(path.join(where.dir, file));
          if (handle !== undefined) await drain(handle, position, write, signal);
        }
        return;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, POLL_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    off();
    signal.removeEventListener('abort', poke);
    await handle?.close();
  }
}

async function drain(
  handle: FileHandle,
  from: number,
  write: (chunk: Uint8Array) => Promise<void>,
  signal: AbortSignal,
): Promise<number> {
  let position = from;
  const buffer = Buffer.alloc(CHUNK);
  while (!signal.aborted) {
    const { bytesRead } = await handle.read(buffer, 0, CHUNK, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    await write(Buffer.from(buffer.subarray(0, bytesRead))); // a copy: the buffer is reused
  }
  return position;
}

async function openIfThere(file: string): Promise<FileHandle | undefined> {
  try {
    return await open(file, 'r');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}
