import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** $BATCHD_TEST_DAEMON runs the process tests against another build of the daemon. */
export const DAEMON_MAIN = process.env.BATCHD_TEST_DAEMON ?? path.join(ROOT, 'dist', 'daemon', 'batchd.cjs');

export interface DaemonProcess {
  child: ChildProcess;
  pid: number;
  /** Everything the daemon logged (JSON lines on stderr) so far. */
  logs(): string;
  /** Log records parsed from the JSON lines. */
  records(): Record<string, unknown>[];
  /** Resolves with the exit code/signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
}

/**
 * Start `batchd` as a separate process (from dist/: run `npm run build` first) and wait until it
 * logs that it is ready.
 */
export async function startDaemon(
  etc: string,
  spool: string,
  /** `waitReady: false` returns at once (to kill a daemon while it boots). */
  options: {
    readyTimeoutMs?: number;
    env?: NodeJS.ProcessEnv;
    extraArgs?: string[];
    waitReady?: boolean | undefined;
    /** A command that execs its arguments (the same pid), e.g. `unshare --uts …`. */
    wrapper?: readonly string[];
  } = {},
): Promise<DaemonProcess> {
  if (!existsSync(DAEMON_MAIN)) throw new Error(`${DAEMON_MAIN} missing: run npm run build first`);
  const [file, ...args] = [
    ...(options.wrapper ?? []),
    process.execPath,
    DAEMON_MAIN,
    '--config',
    etc,
    '--spool',
    spool,
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(file ?? process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const records = (): Record<string, unknown>[] =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  const deadline = Date.now() + (options.readyTimeoutMs ?? 20_000);
  while (options.waitReady !== false && !output.includes('batchd ready')) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`batchd exited before it was ready:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`batchd not ready in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    child,
    pid: child.pid ?? -1,
    logs: () => output,
    records,
    exited,
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
