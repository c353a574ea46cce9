import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';

/**
 * The hostile-spool corpus: what someone who may write in the spool can leave where the daemon
 * reads besides drops (request files, queue.yaml) and in place of a queue's folders. Each case
 * makes its thing in a scratch folder of the same file system (so it can be renamed in whole) and
 * says how the daemon must describe what it refused, without ever reading it.
 */

/** A thing put at `at`; `secret` is a file the spool's writer may not read (the daemon can). */
export interface SpecialFile {
  label: string;
  make(at: string, secret: string): Server | undefined;
  /** How the refusal names it. */
  says: RegExp;
}

/** A sparse file: costs no disk, and no memory unless someone reads it. */
const HUGE = 700 * 1024 * 1024;

export const SPECIAL_FILES: SpecialFile[] = [
  { label: 'symlink-to-secret', make: (at, secret) => link(at, secret), says: /symbolic link/ },
  { label: 'symlink-dangling', make: (at) => link(at, `${at}.nowhere`), says: /symbolic link/ },
  { label: 'symlink-to-devzero', make: (at) => link(at, '/dev/zero'), says: /symbolic link/ },
  { label: 'symlink-to-self', make: (at) => link(at, at), says: /symbolic link/ },
  { label: 'fifo', make: (at) => void execFileSync('mkfifo', [at]), says: /named pipe/ },
  { label: 'hardlink-to-secret', make: (at, secret) => void linkSync(secret, at), says: /hard links/ },
  {
    label: 'huge-sparse',
    make: (at) => {
      writeFileSync(at, '');
      truncateSync(at, HUGE);
      return undefined;
    },
    says: /over the limit/,
  },
  { label: 'folder', make: (at) => void mkdirSync(at), says: /folder/ },
  { label: 'socket', make: (at) => listen(at), says: /socket/ },
];

/**
 * A queue whose folders are not all real folders inside the spool. `make` builds the queue folder
 * at `at` (renamed into the spool by the caller unless it is itself a link), pointing into `outside`.
 */
export interface QueueFolderCase {
  label: string;
  make(at: string, outside: string): void;
  /** The folder the refusal names, relative to the queue folder ('' for the queue folder itself). */
  names: string;
}

export const QUEUE_FOLDER_CASES: QueueFolderCase[] = [
  { label: 'queue-symlink', make: (at, outside) => link(at, outside), names: '' },
  ...['incoming', 'requests', 'queued', 'running', 'rejected', 'done'].map((folder): QueueFolderCase => ({
    label: `${folder}-symlink`,
    make: (at, outside) => {
      mkdirSync(at);
      link(path.join(at, folder), outside);
    },
    names: folder,
  })),
  {
    label: 'incoming-file',
    make: (at) => {
      mkdirSync(at);
      writeFileSync(path.join(at, 'incoming'), 'not a folder\n');
    },
    names: 'incoming',
  },
];

/**
 * What an outside folder holds before a linked queue points at it: a job, a request-looking file
 * and junk, so a daemon that followed the link would run, take or move something there.
 */
export function fillOutside(dir: string, marker: string): void {
  mkdirSync(path.join(dir, 'incoming'), { recursive: true });
  writeFileSync(path.join(dir, 'incoming', 'job.yaml'), `command: touch ${marker}\n`);
  writeFileSync(path.join(dir, 'job.yaml'), `command: touch ${marker}\n`);
  writeFileSync(path.join(dir, 'junk.txt'), 'not a job\n');
}

function link(at: string, target: string): undefined {
  symlinkSync(target, at);
  return undefined;
}

function listen(at: string): Server {
  const server = createServer();
  server.listen(at);
  return server;
}
