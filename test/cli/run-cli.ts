import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI_MAIN = path.join(ROOT, 'dist', 'daemon', 'cli', 'main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run `batch` as a real process (from dist/: `npm run build` first). The environment is clean: no
 * BATCH_* variables leak in from the caller's, and HOME is whatever the test says, so no real
 * ~/.config/batchd is read.
 */
export function runCli(
  args: string[],
  options: {
    env?: Record<string, string>;
    home: string;
    input?: string;
    timeoutMs?: number;
    /** Called with all of stdout so far, each time more arrives (to act while the CLI runs). */
    onStdout?: (stdout: string) => void;
  },
): Promise<CliResult> {
  if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} missing: run npm run build first`);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: options.home,
    USER: 'tester',
    LANG: 'C.UTF-8',
    ...options.env,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      options.onStdout?.(stdout);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** The JSON a `--json` run printed; fails the test with the run's output if it is not JSON. */
export function json<T = unknown>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(
      `not JSON (exit ${String(result.code)}):\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
    );
  }
}
