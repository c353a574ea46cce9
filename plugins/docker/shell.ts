import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { posix } from 'node:path';
import { type Duplex, PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import type Docker from 'dockerode';

import type { HostShell, ProviderHost, ShellChannel, ShellExit } from '../../daemon/plugins/api.ts';
import { providerFailed, statusOf } from './client.ts';
import type { DockerConfig } from './config.ts';
import { hostSettings, target } from './lifecycle.ts';
import { firstEntry, packFile } from './tar.ts';

/** How often the exit is asked for while the engine finishes the exec after its streams ended. */
const EXIT_POLL_MS = 20;
const EXIT_POLLS = 250;

/**
 * Commands by Docker exec and files by the archive API: no sshd in the container. runc makes
 * every exec'd process a session (so process-group) leader, which is what the core's wrapper
 * needs: its `kill 0` reaches the job's group and nothing else in the container.
 */
export class DockerShell implements HostShell {
  constructor(
    private readonly docker: Docker,
    private readonly config: DockerConfig,
    private readonly controller: string,
  ) {}

  /**
   * `signal` bounds the start only: once running, the command is stopped by the control lines
   * the core writes to its stdin, and by end-of-file, never by dropping the connection.
   */
  async exec(host: ProviderHost, script: string, signal: AbortSignal): Promise<ShellChannel> {
    const { container } = target(this.config, host);
    const s = hostSettings(host);
    let exec: Docker.Exec;
    let stream: Duplex;
    try {
      exec = await this.docker.getContainer(container).exec({
        Cmd: ['/bin/sh', '-c', script],
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        Env: Object.entries(s.env ?? {}).map(([k, v]) => `${k}=${v}`),
        User: s.user,
        WorkingDir: s.workdir,
        abortSignal: signal,
      });
      // Not given the signal: dockerode would tie the connection's life to it.
      stream = await untilAborted(exec.start({ hijack: true, stdin: true }), signal);
    } catch (error) {
      throw this.#failed(host, `running a command in container ${container}`, error);
    }
    return execChannel(exec, stream, this.docker);
  }

  async put(
    host: ProviderHost,
    local: string,
    remote: string,
    mode: number,
    signal: AbortSignal,
  ): Promise<void> {
    const { container } = target(this.config, host);
    const [uid, gid] = numericOwner(hostSettings(host).user);
    try {
      const archive = await packFile(local, { name: posix.basename(remote), mode, uid, gid }, signal);
      await this.docker
        .getContainer(container)
        .putArchive(archive, { path: posix.dirname(remote), abortSignal: signal });
    } catch (error) {
      throw this.#failed(host, `copying ${local} to ${container}:${remote}`, error);
    }
  }

  async get(host: ProviderHost, remote: string, local: string, signal: AbortSignal): Promise<boolean> {
    const { container } = target(this.config, host);
    let archive: NodeJS.ReadableStream;
    try {
      archive = await this.docker.getContainer(container).getArchive({ path: remote, abortSignal: signal });
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw this.#failed(host, `copying ${container}:${remote}`, error);
    }
    const source = archive as Readable;
    try {
      const entry = await firstEntry(source);
      if (entry.kind !== 'file') return false;
      try {
        await pipeline(Readable.from(entry.data), createWriteStream(local), { signal });
      } catch (error) {
        await rm(local, { force: true });
        throw error;
      }
      return true;
    } catch (error) {
      throw this.#failed(host, `copying ${container}:${remote} to ${local}`, error);
    } finally {
      source.destroy();
    }
  }

  #failed(host: ProviderHost, tried: string, error: unknown): Error {
    if (error instanceof Error && error.name === 'AbortError') return error;
    return providerFailed(this.controller, host.name, tried, error);
  }
}

/** The hijacked connection of an exec as the core's channel: two streams in, one stdin out. */
function execChannel(exec: Docker.Exec, stream: Duplex, docker: Docker): ShellChannel {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  docker.modem.demuxStream(stream, stdout, stderr);
  // A write after the command ended fails on the socket: the command is gone, nothing to tell.
  stream.on('error', () => undefined);
  const ended = new Promise<void>((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      stdout.end();
      stderr.end();
      resolve();
    };
    stream.once('end', finish);
    stream.once('close', finish);
  });
  const exit = ended.then(() => exitOf(exec));
  const writable = (): boolean => !stream.destroyed && !stream.writableEnded;
  return {
    stdout,
    stderr,
    write: (line) => {
      if (writable()) stream.write(line);
    },
    // Half-close: the engine closes the process's stdin, and the output still flows back.
    end: () => {
      if (writable()) stream.end();
    },
    exit,
  };
}

/**
 * The started exec's connection, or the abort: a connection that arrives after it is closed, and
 * the command, its stdin at end-of-file, ends (the core's wrapper kills its job on end-of-file).
 */
function untilAborted(starting: Promise<Duplex>, signal: AbortSignal): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const abort = (): void => {
      reject(abortError(signal));
      starting.then((late) => late.destroy()).catch(() => undefined);
    };
    if (signal.aborted) return abort();
    signal.addEventListener('abort', abort, { once: true });
    starting.then(
      (stream) => {
        signal.removeEventListener('abort', abort);
        resolve(stream);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  const message = reason instanceof Error ? reason.message : 'aborted';
  return Object.assign(new Error(message, { cause: reason }), { name: 'AbortError' });
}

/** The engine marks the exec ended a moment after its streams close. */
async function exitOf(exec: Docker.Exec): Promise<ShellExit> {
  for (let i = 0; i < EXIT_POLLS; i++) {
    try {
      const info = await exec.inspect();
      if (!info.Running) return { code: info.ExitCode, signal: null };
    } catch {
      // The container went away with it.
      return { code: null, signal: null };
    }
    await new Promise((r) => setTimeout(r, EXIT_POLL_MS));
  }
  return { code: null, signal: null };
}

/** The uid and gid for copied files: the host's `user` when numeric, else root's. */
function numericOwner(user: string | undefined): [number, number] {
  const match = /^(\d+)(?::(\d+))?$/.exec(user ?? '');
  if (match === null) return [0, 0];
  const uid = Number(match[1]);
  return [uid, match[2] === undefined ? uid : Number(match[2])];
}
