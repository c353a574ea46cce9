import { coerceError } from '../errors.ts';
import { shellQuote } from './shell-quote.ts';
import type { Logger } from '../log.ts';
import type { Lease } from './ssh-pool.ts';

/** Paths per `rm` exec, and how long a path may wait for its batch. */
const BATCH = 64;
const DELAY_MS = 500;

/**
 * Removes finished jobs' folders on one host, many per exec (through the host's launcher, empty
 * ones are kept aside for the next jobs instead): an `rm` per job would cost the host a
 * process per job, as much as the job's own. A folder waits at most DELAY_MS; what is still
 * pending when the daemon stops is removed by `flush()`. A folder's name includes its attempt,
 * so a retry never shares a folder with a removal still pending.
 */
export class RemoteSweeper {
  readonly #host: string;
  readonly #lease: (signal: AbortSignal) => Promise<Lease>;
  readonly #log: Logger;
  #pending: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();

  constructor(host: string, lease: (signal: AbortSignal) => Promise<Lease>, log: Logger) {
    this.#host = host;
    this.#lease = lease;
    this.#log = log;
  }

  add(paths: readonly string[]): void {
    this.#pending.push(...paths);
    if (this.#pending.length >= BATCH) void this.flush();
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => void this.flush(), DELAY_MS);
      this.#timer.unref();
    }
  }

  /** Remove everything pending now (batches run one after another). */
  flush(signal: AbortSignal = AbortSignal.timeout(30_000)): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const paths = this.#pending.splice(0);
    if (paths.length === 0) return this.#running;
    this.#running = this.#running.then(() => this.#remove(paths, signal));
    return this.#running;
  }

  async #remove(paths: string[], signal: AbortSignal): Promise<void> {
    let lease: Lease | undefined;
    try {
      lease = await this.#lease(signal);
      for (let i = 0; i < paths.length; i += BATCH) {
        const batch = paths.slice(i, i + BATCH);
        // Through the connection's job launcher when it runs: no exec channel, no shell, and
        // empty folders kept for the next jobs instead of removed.
        const launcher = await lease.runningLauncher();
        const { code, stderr } =
          launcher === undefined
            ? await lease.run(`rm -rf -- ${batch.map(shellQuote).join(' ')}`)
            : await launcher.recycle(batch);
        if (code !== 0)
          this.#log.warn(
            { host: this.#host, stderr: stderr.slice(-500) },
            'could not remove job folders on the host',
          );
      }
    } catch (error) {
      this.#log.warn(
        { host: this.#host, err: coerceError(error), folders: paths.length },
        'job folders left on the host',
      );
    } finally {
      lease?.release();
    }
  }
}
