import { isMainThread } from 'node:worker_threads';

/**
 * Job folders and outputs are readable by the daemon's user and group only by default
 * (`storage.mode`, 0750: folders 0750, files 0640). Set as the process umask at start, so that
 * every file the daemon writes and every file a job's processes create (they inherit it) gets it,
 * whichever module or program creates it. Secrets (users.yaml, the journal) are created 0600
 * explicitly, whatever this says.
 */
export function applyStorageMode(mode: number): void {
  // A worker thread (a test runner's) cannot change the process umask; the main thread does.
  if (isMainThread) process.umask(~mode & 0o777);
}
