import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';

import { BatchdError, type BatchSystem } from '../../daemon/plugins/api.ts';
import { type CommandResult, shellQuote, spawnCollect, sshArgv } from './command.ts';
import type { SlurmConfig } from './config.ts';

type BatchFiles = ReturnType<NonNullable<BatchSystem['files']>>;

/**
 * Job files on the login node (`staging: copy`), each call one short shell command there over
 * `ssh` (or here, without `ssh:`). Every path enters the command single-quoted; file contents
 * travel on the command's stdin or stdout, never in its text. Folders go in and out as `tar`
 * streams, so an attempt's files cost one connection each way.
 */
export class SlurmFiles implements BatchFiles {
  readonly workDirectory: string;
  readonly #config: SlurmConfig;
  readonly #controller: string;
  readonly #signal: AbortSignal;

  constructor(config: SlurmConfig, controller: string, signal: AbortSignal) {
    this.workDirectory = config.work_directory ?? '';
    this.#config = config;
    this.#controller = controller;
    this.#signal = signal;
  }

  /** Where the files are: `user@host`, or `this machine`. */
  get where(): string {
    const ssh = this.#config.ssh;
    if (ssh === undefined) return 'this machine';
    return ssh.user === undefined ? ssh.host : `${ssh.user}@${ssh.host}`;
  }

  async stat(remote: string): Promise<{ isFile(): boolean; isDirectory(): boolean } | undefined> {
    const q = shellQuote(remote);
    const script = `if [ -f ${q} ]; then echo f; elif [ -d ${q} ]; then echo d; elif [ -e ${q} ] || [ -L ${q} ]; then echo o; fi`;
    const { stdout } = await this.#run('stat', remote, script);
    const kind = stdout.trim();
    if (kind === '') return undefined;
    return { isFile: () => kind === 'f', isDirectory: () => kind === 'd' };
  }

  mkdirp(remote: string): Promise<void> {
    return this.mkdirs([remote]);
  }

  async mkdirs(remotes: readonly string[]): Promise<void> {
    if (remotes.length === 0) return;
    const named = remotes.length === 1 ? remotes[0] : `${remotes[0]} (and ${remotes.length - 1} more)`;
    await this.#run('mkdir', named ?? '', `mkdir -p -- ${remotes.map(shellQuote).join(' ')}`);
  }

  /** Written under a temporary name and renamed: a broken copy never has the file's name. */
  async put(local: string, remote: string, mode: number): Promise<void> {
    const q = shellQuote(remote);
    const part = shellQuote(`${remote}.batchd-part`);
    const octal = (mode & 0o777).toString(8);
    await this.#run(
      'upload',
      remote,
      `cat >${part} && chmod ${octal} ${part} && mv -f ${part} ${q}`,
      createReadStream(local),
    );
  }

  async get(remote: string, local: string): Promise<void> {
    const q = shellQuote(remote);
    // Exit 3: not there (staging reports a missing output by ENOENT).
    const result = await this.#exec(
      `[ -f ${q} ] || exit 3; exec cat -- ${q}`,
      undefined,
      createWriteStream(local),
    );
    if (result.code === 3) throw Object.assign(new Error(`no such file: ${remote}`), { code: 'ENOENT' });
    this.#check('download', remote, result);
  }

  async fetch(remote: string, names: readonly string[], into: string): Promise<void> {
    if (names.length === 0) return;
    // `./name`: a name never reads as an option; a missing one is only a warning.
    const members = names.map((n) => shellQuote(`./${n}`)).join(' ');
    const script = `cd -- ${shellQuote(remote)} && exec tar -cf - --ignore-failed-read ${members}`;
    // --ignore-zeros: read to the end; a tar that stops at the archive's end marker would close
    // the pipe on the rest of the stream's padding.
    const untar = spawn('tar', ['-x', '--ignore-zeros', '-f', '-', '-C', into], {
      stdio: ['pipe', 'ignore', 'pipe'],
      signal: this.#signal,
      killSignal: 'SIGKILL',
    });
    const untarErr: Buffer[] = [];
    untar.stderr.on('data', (d: Buffer) => untarErr.push(d));
    const untarred = new Promise<number | null>((resolve, reject) => {
      untar.once('error', reject);
      untar.once('close', resolve);
    });
    const [result, code] = await Promise.all([
      this.#exec(script, undefined, untar.stdin).catch((error: unknown) => {
        untar.kill('SIGKILL');
        throw error;
      }),
      untarred,
    ]);
    this.#check('download', remote, result);
    if (code !== 0)
      throw this.#error(
        'download',
        remote,
        `tar here exited ${code ?? 'on a signal'}: ${Buffer.concat(untarErr).toString('utf8').trim()}`,
      );
  }

  async remove(remotes: readonly string[]): Promise<void> {
    if (remotes.length === 0) return;
    const named = remotes.length === 1 ? remotes[0] : `${remotes[0]} (and ${remotes.length - 1} more)`;
    await this.#run('remove', named ?? '', `rm -rf -- ${remotes.map(shellQuote).join(' ')}`);
  }

  async #run(what: string, remote: string, script: string, input?: Readable): Promise<CommandResult> {
    return this.#check(what, remote, await this.#exec(script, input));
  }

  #exec(script: string, input?: Readable, output?: Writable): Promise<CommandResult> {
    const ssh = sshArgv(this.#config);
    const argv = ssh === undefined ? ['/bin/sh', '-c', script] : [...ssh, script];
    return spawnCollect(argv, input, this.#signal, output).catch((error: unknown) => {
      throw new BatchdError(
        'TRANSFER_FAILED',
        `could not reach ${this.where} for job files (${argv[0] ?? ''}): ${(error as Error).message}`,
        { controller: this.#controller, host: this.where },
        { cause: error },
      );
    });
  }

  #check(what: string, remote: string, result: CommandResult): CommandResult {
    if (result.code === 0) return result;
    throw this.#error(what, remote, result.stderr.slice(-300) || `exited ${result.code}`);
  }

  #error(what: string, remote: string, why: string): BatchdError {
    return new BatchdError('TRANSFER_FAILED', `${what} of ${this.where}:${remote} failed: ${why}`, {
      controller: this.#controller,
      host: this.where,
      path: remote,
    });
  }
}
