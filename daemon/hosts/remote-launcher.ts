import type { ClientChannel } from 'ssh2';

import { BatchdError } from '../errors.ts';
import { type JobHandlers, LauncherJobs } from '../launcher/jobs.ts';
import type { PipedSpawnRequest } from '../launcher/protocol.ts';
import { EventReader, encodeRequest } from '../launcher/wire.ts';
import { onChannelExit } from './channel-exit.ts';

/** A short command's end: its exit code and what it wrote to stderr. */
export interface ShortResult {
  code: number | null;
  stderr: string;
}

/** A remote job's output always comes back as data. */
export type RemoteJobHandlers = JobHandlers & Required<Pick<JobHandlers, 'onData'>>;

/**
 * batchd's Perl launcher (executors/launcher.pl) running on a host over one SSH channel: every job
 * of its connection is a spawn request on that channel, instead of an exec channel, a shell and a
 * subshell of its own (sshd spends ~6 ms of CPU per exec channel). The job's output comes back as
 * data events, so logs stay live in the job folder here. When the channel closes — the connection
 * or the daemon went away — the launcher kills every job it started.
 */
export class RemoteLauncher {
  readonly #channel: ClientChannel;
  readonly #jobs = new LauncherJobs<RemoteJobHandlers>();
  #holds = 0;
  #closed = false;

  private constructor(channel: ClientChannel) {
    this.#channel = channel;
  }

  /**
   * Start it on `channel` (an exec of executors/remote-command.ts' launcherCommand): resolves once it reported ready; rejects
   * with what it printed if it ends first (no perl on the host) or says nothing in `timeoutMs`.
   */
  static start(channel: ClientChannel, host: string, timeoutMs: number): Promise<RemoteLauncher> {
    const launcher = new RemoteLauncher(channel);
    const reader = new EventReader();
    return new Promise((resolve, reject) => {
      let ready = false;
      let stderr = '';
      let code: number | null = null;
      const timer = setTimeout(() => {
        fail(`no answer within ${Math.round(timeoutMs / 1000)} s`);
        channel.close();
      }, timeoutMs);
      const fail = (why: string): void => {
        clearTimeout(timer);
        reject(
          new BatchdError('SPAWN_FAILED', `host ${host}: the job launcher did not start: ${why}`, { host }),
        );
      };
      channel.stderr.on('data', (chunk: Buffer) => {
        if (stderr.length < 2_000) stderr += chunk.toString();
      });
      onChannelExit(channel, (exit) => (code = exit.code));
      channel.on('error', () => undefined);
      channel.on('data', (chunk: Buffer) => {
        for (const event of reader.push(chunk)) {
          if (event.op === 'ready' && !ready) {
            ready = true;
            clearTimeout(timer);
            resolve(launcher);
          } else launcher.#jobs.route(event);
        }
      });
      channel.on('close', () => {
        launcher.#closed = true;
        if (!ready) fail(stderr.trim() || `it exited with ${code ?? 'no status'}`);
        launcher.#jobs.endAll(`host ${host}: the job launcher's channel closed`);
      });
    });
  }

  get alive(): boolean {
    return !this.#closed;
  }

  spawn(request: Omit<PipedSpawnRequest, 'key'>, handlers: RemoteJobHandlers): number {
    return this.#send((key) => encodeRequest({ op: 'spawn', key, ...request }), handlers);
  }

  /** A request that ends like a job (its exit event), under a key of its own. */
  #send(frame: (key: number) => Buffer, handlers: RemoteJobHandlers): number {
    const key = this.#jobs.add(handlers);
    if (this.#closed) this.#jobs.fail(key, "the job launcher's channel is closed");
    else this.#channel.write(frame(key));
    return key;
  }

  kill(key: number, signal: NodeJS.Signals): void {
    if (this.#jobs.has(key) && !this.#closed) this.#channel.write(encodeRequest({ op: 'kill', key, signal }));
  }

  /** Run a short command and collect its stderr. */
  run(file: string, args: string[], cwd: string): Promise<ShortResult> {
    return this.#short((handlers) =>
      this.spawn({ file, args, cwd, env: {}, stdout: null, stderr: null }, handlers),
    );
  }

  /**
   * Finished jobs' folders: the empty ones are kept aside for the next jobs on this connection
   * (renamed into place by their `mkdir`), the rest removed with one `rm -rf`.
   */
  recycle(paths: string[]): Promise<ShortResult> {
    return this.#short((handlers) =>
      this.#send((key) => encodeRequest({ op: 'recycle', key, paths }), handlers),
    );
  }

  #short(start: (handlers: RemoteJobHandlers) => unknown): Promise<ShortResult> {
    return new Promise((resolve) => {
      let stderr = '';
      start({
        onStarted: () => undefined,
        onData: (fd, data) => {
          if (fd === 2 && stderr.length < 10_000) stderr += data.toString();
        },
        onExit: (event) => resolve({ code: event.code, stderr: event.error ?? stderr }),
      });
    });
  }

  /**
   * Stop reading until as many release() calls: a job's log file is behind. SSH flow control then
   * holds the launcher's writes, and with them the jobs' output.
   */
  hold(): void {
    if (this.#holds++ === 0) this.#channel.pause();
  }

  release(): void {
    if (this.#holds > 0 && --this.#holds === 0) this.#channel.resume();
  }

  close(): void {
    if (!this.#closed) this.#channel.end();
  }
}
