import { type ChildProcess, fork, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { BatchdError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { type JobHandlers, LauncherJobs } from '../launcher/jobs.ts';
import type { LauncherEvent, LauncherRequest } from '../launcher/protocol.ts';
import { EventReader, encodeRequest } from '../launcher/wire.ts';

/** One running launcher process, whichever language it is written in. */
interface Channel {
  readonly child: ChildProcess;
  send(request: LauncherRequest): void;
  alive(): boolean;
  /** Ask it to end (it kills its jobs first). */
  end(): void;
}

/**
 * A launcher script of this tree: beside this module, or, run from the TypeScript source (the
 * in-process tests) where no .js sits beside it, in the build of the same tree.
 */
function beside(name: string, built: boolean): string {
  const here = fileURLToPath(new URL(`./${name}`, import.meta.url));
  const fromBuild = fileURLToPath(new URL(`../../dist/daemon/executors/${name}`, import.meta.url));
  return !built || existsSync(here) || !existsSync(fromBuild) ? here : fromBuild;
}

const NODE_LAUNCHER = beside('launcher-process.js', true);
const PERL_LAUNCHER = beside('launcher.pl', false);
/** launcher.c as `npm run build` compiles it, where a C compiler was found. */
const NATIVE_LAUNCHER = beside('batchd-launcher', true);

/** The Perl launcher's source, for hosts that run it over SSH (full-line comments left out). */
export function perlLauncherSource(): string {
  perlSource ??= readFileSync(PERL_LAUNCHER, 'utf8')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n');
  return perlSource;
}
let perlSource: string | undefined;

/** `perl` on the PATH, if any (perl-base is Essential on Debian and Ubuntu). */
function findPerl(): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(path.delimiter)) {
    const candidate = path.join(dir || '.', 'perl');
    if (path.isAbsolute(candidate) && existsSync(candidate)) return candidate;
  }
  return undefined;
}

export type LauncherKind = 'native' | 'perl' | 'node';

/** The native launcher, if the build made it and it can be run. */
function nativeLauncher(): string | undefined {
  try {
    accessSync(NATIVE_LAUNCHER, constants.X_OK);
    return NATIVE_LAUNCHER;
  } catch {
    return undefined;
  }
}

/**
 * Which launcher runs local jobs: the native one (vfork + exec) when the build compiled it, else
 * the Perl one (fork + exec at xargs' cost) when perl is here, else the Node one.
 * BATCHD_LAUNCHER=perl|node chooses one of those explicitly (=native: the default, if built).
 */
export function launcherKind(): LauncherKind {
  const asked = process.env.BATCHD_LAUNCHER;
  if (asked === 'node' || asked === 'perl') return asked;
  // Asked for or not, the native one only where the build made it.
  if (nativeLauncher() !== undefined) return 'native';
  if (findPerl() !== undefined) return 'perl';
  return 'node';
}

/**
 * The native or the Perl launcher: length-prefixed NUL-separated requests, tab-separated event
 * lines (launcher.pl describes them).
 */
function wireChannel(kind: 'native' | 'perl', onEvent: (event: LauncherEvent) => void): Channel {
  const [command, args] = kind === 'native' ? [NATIVE_LAUNCHER, []] : [findPerl() ?? 'perl', [PERL_LAUNCHER]];
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  // A write after the launcher died must not take the daemon down; its exit is handled below.
  child.stdin.on('error', () => undefined);
  const reader = new EventReader();
  child.stdout.on('data', (chunk: Buffer) => {
    for (const event of reader.push(chunk)) if (event.op === 'started' || event.op === 'exit') onEvent(event);
  });
  return {
    child,
    send: (request) => child.stdin.write(encodeRequest(request)),
    alive: () => child.exitCode === null && child.signalCode === null && !child.stdin.destroyed,
    end: () => child.stdin.end(),
  };
}

/** The Node launcher (launcher-process.ts) over Node's IPC channel. */
function nodeChannel(onEvent: (event: LauncherEvent) => void): Channel {
  const child = fork(NODE_LAUNCHER, [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--max-old-space-size=64'],
    serialization: 'json',
  });
  child.on('message', onEvent);
  return {
    child,
    send: (request) => child.send(request),
    alive: () => child.connected,
    end: () => child.disconnect(),
  };
}

/**
 * The daemon's side of the launcher process: a small process that forks the local jobs (fork's
 * cost grows with the forking process's memory, and the daemon may hold a large index). It is
 * restarted if it dies; its jobs are then reported as interrupted.
 */
export class Launcher {
  #channel: Channel | undefined;
  readonly #jobs = new LauncherJobs();
  readonly #log: Logger;
  readonly #kind = launcherKind();
  #closed = false;

  constructor(log: Logger) {
    this.#log = log;
  }

  spawn(
    request: Omit<Extract<LauncherRequest, { op: 'spawn' }>, 'op' | 'key'>,
    handlers: JobHandlers,
  ): number {
    const key = this.#jobs.add(handlers);
    this.#ensure().send({ op: 'spawn', key, ...request });
    return key;
  }

  kill(key: number, signal: NodeJS.Signals): void {
    if (!this.#jobs.has(key)) return;
    if (this.#channel?.alive() === true) this.#channel.send({ op: 'kill', key, signal });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const channel = this.#channel;
    const child = channel?.child;
    if (channel === undefined || child === undefined || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      channel.end();
    });
    // It killed the jobs it still had: their runs end too, rather than wait for ever.
    this.#jobs.endAll('the job launcher was closed');
  }

  #ensure(): Channel {
    if (this.#channel?.alive() === true) return this.#channel;
    if (this.#closed) throw new BatchdError('SPAWN_FAILED', 'The daemon is shutting down');
    const channel =
      this.#kind === 'node'
        ? nodeChannel((event) => this.#jobs.route(event))
        : wireChannel(this.#kind, (event) => this.#jobs.route(event));
    channel.child.on('exit', (code, signal) => {
      if (this.#channel === channel) this.#channel = undefined;
      if (this.#closed) return;
      this.#log.error(
        { code, signal },
        'job launcher exited; its jobs are lost and will be reported as interrupted',
      );
      this.#jobs.endAll('the job launcher process died');
    });
    this.#channel = channel;
    return channel;
  }
}
