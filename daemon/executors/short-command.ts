import {
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { ExitEvent } from '../launcher/jobs.ts';
import { pidAlive } from '../spool/owner.ts';
import type { Launcher } from './launcher.ts';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one short command (argv, never a shell line) and collects its output. */
export type CommandRunner = (
  argv: readonly string[],
  options: { signal: AbortSignal; input?: string | undefined },
) => Promise<CommandResult>;

/**
 * Short commands that the daemon's plugins run (a batch system's `sbatch` and `squeue`), started
 * by the job launcher instead of Node's `spawn`: `spawn` forks the daemon, whose memory grows with
 * its index, and blocks its event loop meanwhile (tens of milliseconds a call on a virtual
 * machine), while the native launcher starts a process with `vfork`.
 *
 * A command's output goes to files in a folder of this daemon's, read and removed after its exit.
 * Its input, if any, is written to a file there and given to it on stdin by `/bin/sh`, with the
 * command and its arguments as positional parameters (never as shell text).
 */
export class ShortCommands {
  readonly #launcher: Launcher;
  /** Where its folder is made (the system's temporary folder). */
  readonly #parent: string;
  #dir: string | undefined;
  #seq = 0;

  constructor(launcher: Launcher, parent = tmpdir()) {
    this.#launcher = launcher;
    this.#parent = parent;
  }

  readonly run: CommandRunner = (argv, { signal, input }) => {
    const [file] = argv;
    if (file === undefined) return Promise.reject(new Error('empty command'));
    if (signal.aborted) return Promise.reject(new Error('aborted or timed out'));
    const base = path.join(this.#folder(), String(++this.#seq));
    const files = { stdout: `${base}.out`, stderr: `${base}.err`, input: `${base}.in` };
    if (input !== undefined) writeFileSync(files.input, input);
    const [command, ...args] =
      input === undefined ? argv : ['/bin/sh', '-c', 'exec "$@" < "$0"', files.input, ...argv];
    return new Promise<CommandResult>((resolve, reject) => {
      const abort = (): void => this.#launcher.kill(key, 'SIGKILL');
      const ended = (event: ExitEvent): void => {
        signal.removeEventListener('abort', abort);
        const stdout = takeText(files.stdout);
        const stderr = takeText(files.stderr);
        if (input !== undefined) takeText(files.input);
        if (event.error !== undefined) reject(new Error(event.error));
        else if (event.code === null)
          reject(new Error(signal.aborted ? 'aborted or timed out' : `killed by ${event.signal ?? '?'}`));
        else resolve({ code: event.code, stdout, stderr: stderr.trim() });
      };
      const key = this.#launcher.spawn(
        {
          file: command ?? file,
          args,
          cwd: process.cwd(),
          env: {},
          stdout: files.stdout,
          stderr: files.stderr,
          options: ['lazy'],
        },
        { onStarted: () => undefined, onExit: ended },
      );
      signal.addEventListener('abort', abort, { once: true });
    });
  };

  /** Removes this daemon's folder of command files. */
  close(): void {
    if (this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true });
    this.#dir = undefined;
  }

  #folder(): string {
    if (this.#dir === undefined) {
      removeOrphans(this.#parent);
      this.#dir = mkdtempSync(path.join(this.#parent, `${PREFIX}${process.pid}-`));
    }
    return this.#dir;
  }
}

const PREFIX = 'batchd-commands-';

/**
 * Folders of daemons that were killed (a crash, `kill -9`) before they could remove theirs: the
 * pid in the name is no process any more, and the folder is this user's.
 */
function removeOrphans(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent).filter((n) => n.startsWith(PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^(\d+)-/.exec(name.slice(PREFIX.length))?.[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pidAlive(pid)) continue;
    const dir = path.join(parent, name);
    try {
      if (lstatSync(dir).uid === process.getuid?.()) rmSync(dir, { recursive: true, force: true });
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
}

/** A file's text, and the file removed; '' when the command never wrote it. */
function takeText(file: string): string {
  try {
    const text = readFileSync(file, 'utf8');
    unlinkSync(file);
    return text;
  } catch {
    return '';
  }
}
