import type { HostShell, ProviderHost } from '../hosts/provider.ts';
import { shellRun } from '../hosts/shell-run.ts';
import { shellQuote } from '../hosts/shell-quote.ts';
import type { RemoteFiles } from './staging.ts';

/** File staging through a provider's shell: copies by its own calls, the rest by short commands. */
export class ShellFiles implements RemoteFiles {
  readonly #shell: HostShell;
  readonly #host: ProviderHost;
  readonly #signal: AbortSignal;

  constructor(shell: HostShell, host: ProviderHost, signal: AbortSignal) {
    this.#shell = shell;
    this.#host = host;
    this.#signal = signal;
  }

  async stat(remote: string): Promise<{ isFile(): boolean; isDirectory(): boolean } | undefined> {
    const q = shellQuote(remote);
    const { code, stdout } = await this.#run(
      `if [ -f ${q} ]; then echo f; elif [ -d ${q} ]; then echo d; elif [ -e ${q} ] || [ -L ${q} ]; then echo o; fi`,
    );
    if (code !== 0) throw new Error(`cannot look at ${remote} (exit ${code})`);
    const kind = stdout.trim();
    if (kind === '') return undefined;
    return { isFile: () => kind === 'f', isDirectory: () => kind === 'd' };
  }

  async mkdirp(remote: string): Promise<void> {
    const { code, stderr } = await this.#run(`mkdir -p -- ${shellQuote(remote)}`);
    if (code !== 0) throw new Error(`mkdir -p ${remote}: ${stderr.trim().slice(-200) || `exit ${code}`}`);
  }

  put(local: string, remote: string, mode: number): Promise<void> {
    return this.#shell.put(this.#host, local, remote, mode, this.#signal);
  }

  async get(remote: string, local: string): Promise<void> {
    if (!(await this.#shell.get(this.#host, remote, local, this.#signal)))
      throw Object.assign(new Error(`no such file: ${remote}`), { code: 'ENOENT' });
  }

  /** Remove paths on the host; best effort (a later attempt's folder has another name). */
  async remove(paths: readonly string[]): Promise<void> {
    if (paths.length === 0) return;
    await this.#run(`rm -rf -- ${paths.map(shellQuote).join(' ')}`).catch(() => undefined);
  }

  #run(script: string): ReturnType<typeof shellRun> {
    return shellRun(this.#shell, this.#host, script, this.#signal);
  }
}
