import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * portnov/batchd's own clients and configs, unchanged, beside the project (`../shared/batchd-original`
 * from its root). The tests drive them as they are; nothing of them is copied into the repository.
 */
export const ORIGINAL = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'shared',
  'batchd-original',
);

/** The original's folder, or a clear failure when the checkout lacks it. */
export function original(...parts: string[]): string {
  if (!existsSync(path.join(ORIGINAL, 'python', 'batchd', 'client.py'))) {
    throw new Error(
      `The original batchd's clients are missing: expected them in ${ORIGINAL} (../shared/batchd-original beside the project, from portnov/batchd)`,
    );
  }
  return path.join(ORIGINAL, ...parts);
}

/** Debian's interpreter: python3-requests and python3-pyqt5 install there (a pyenv python may come first on the PATH). */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export interface PythonResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a Python script with the original's `python/` folder importable (its client library and GUI modules). */
export function runPython(
  script: string,
  env: Record<string, string>,
  timeoutMs = 40_000,
): Promise<PythonResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', script], {
      cwd: original('python'),
      env: { ...process.env, PYTHONPATH: original('python'), PYTHONDONTWRITEBYTECODE: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The last line of a script's stdout, parsed (scripts print their findings as one JSON line at the end). */
export function lastJson<T>(result: PythonResult): T {
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`The script printed no JSON (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
}
