import { posix } from 'node:path';

import type { SFTPWrapper, Stats } from 'ssh2';

/** Promise forms of the few SFTP calls file staging needs. */
export class Sftp {
  readonly #sftp: SFTPWrapper;

  constructor(sftp: SFTPWrapper) {
    this.#sftp = sftp;
  }

  stat(remote: string): Promise<Stats | undefined> {
    return new Promise((resolve, reject) => {
      this.#sftp.stat(remote, (error, stats) => {
        if (error === undefined || error === null) resolve(stats);
        else if (isMissing(error)) resolve(undefined);
        else reject(error);
      });
    });
  }

  /** A new folder: one request when its parent exists (the usual case), else like `mkdir -p`. */
  async mkdir(remote: string): Promise<void> {
    const made = await new Promise<boolean>((resolve) =>
      this.#sftp.mkdir(remote, (error) => resolve(error === undefined || error === null)),
    );
    if (!made) await this.mkdirp(remote);
  }

  async mkdirp(remote: string): Promise<void> {
    const stats = await this.stat(remote);
    if (stats?.isDirectory() === true) return;
    const parent = posix.dirname(remote);
    if (parent !== remote) await this.mkdirp(parent);
    await new Promise<void>((resolve, reject) => {
      this.#sftp.mkdir(remote, (error) => {
        if (error === undefined || error === null) return resolve();
        // Made meanwhile by a job of the same host.
        this.stat(remote).then((s) => (s?.isDirectory() === true ? resolve() : reject(error)), reject);
      });
    });
  }

  put(local: string, remote: string, mode: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#sftp.fastPut(local, remote, { mode }, (error) =>
        error === undefined || error === null ? resolve() : reject(error),
      );
    });
  }

  writeFile(remote: string, data: string, mode: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#sftp.writeFile(remote, data, { mode }, (error) =>
        error === undefined || error === null ? resolve() : reject(error),
      );
    });
  }

  get(remote: string, local: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#sftp.fastGet(remote, local, (error) =>
        error === undefined || error === null ? resolve() : reject(error),
      );
    });
  }
}

function isMissing(error: Error & { code?: unknown }): boolean {
  // SSH_FX_NO_SUCH_FILE
  return error.code === 2;
}
