import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { BatchdError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { LauncherEvent, LauncherRequest } from './launcher-protocol.ts';

interface Pending {
  onStarted: (pid: number) => void;
  onExit: (event: Extract<LauncherEvent, { op: 'exit' }>) => void;
}

/**
 * The compiled launcher beside this module. Run from the TypeScript source (the in-process tests),
 * there is no .js beside it and Node 20 cannot run .ts, so the build of the same tree is used.
 */
const BESIDE = fileURLToPath(new URL('./launcher-process.js', import.meta.url));
const BUILT = fileURLToPath(new URL('../../dist/daemon/executors/launcher-process.js', import.meta.url));
const LAUNCHER = existsSync(BESIDE) || !existsSync(BUILT) ? BESIDE : BUILT;

/** The daemon's side of the launcher process: restarts it if it dies. */
export class Launcher {
  #child: ChildProcess | undefined;
  #nextKey = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #log: Logger;
  #closed = false;

  constructor(log: Logger) {
    this.#log = log;
  }

  spawn(request: Omit<Extract<LauncherRequest, { op: 'spawn' }>, 'op' | 'key'>, handlers: Pending): number {
    const key = this.#nextKey++;
    this.#pending.set(key, handlers);
    this.#ensure().send({ op: 'spawn', key, ...request } satisfies LauncherRequest);
    return key;
  }

  kill(key: number, signal: NodeJS.Signals): void {
    if (!this.#pending.has(key)) return;
    this.#child?.send({ op: 'kill', key, signal } satisfies LauncherRequest);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const child = this.#child;
    if (child === undefined || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.disconnect();
    });
  }

  #ensure(): ChildProcess {
    if (this.#child !== undefined && this.#child.connected) return this.#child;
    if (this.#closed) throw new BatchdError('SPAWN_FAILED', 'The daemon is shutting down');
    const child = fork(LAUNCHER, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: ['--max-old-space-size=64'],
      serialization: 'json',
    });
    child.on('message', (event: LauncherEvent) => this.#onEvent(event));
    child.on('exit', (code, signal) => {
      if (this.#child === child) this.#child = undefined;
      if (this.#closed) return;
      this.#log.error(
        { code, signal },
        'job launcher exited; its jobs are lost and will be reported as interrupted',
      );
      for (const [key, pending] of this.#pending) {
        this.#pending.delete(key);
        pending.onExit({ op: 'exit', key, code: null, signal: null, error: 'the job launcher process died' });
      }
    });
    this.#child = child;
    return child;
  }

  #onEvent(event: LauncherEvent): void {
    const pending = this.#pending.get(event.key);
    if (pending === undefined) return;
    if (event.op === 'started') pending.onStarted(event.pid);
    else {
      this.#pending.delete(event.key);
      pending.onExit(event);
    }
  }
}
