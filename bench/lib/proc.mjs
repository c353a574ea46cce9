// Processes for the benchmark: one-shot commands, long-running services stopped by PID, and
// process counting by an environment tag that every descendant inherits.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** The tag variable: each tool's processes carry `<run tag>-<tool>` so they can be counted and cleaned up. */
export const TAG_VAR = 'BATCHD_BENCH_TAG';

/**
 * Run a command to its end. Resolves with exit code, output and wall time (ms); rejects only when
 * it cannot be started or runs past `timeoutMs` (then it is killed by PID).
 *
 * With `outputFile`, output goes to that file and the command is done when it exits: a submit
 * loop's clients may leave daemons behind (tsp, nq) that inherited its stdout, and with pipes the
 * loop would only count as done once the last of them closed them.
 */
export function run(file, args = [], options = {}) {
  const { env, cwd, input, timeoutMs = 600_000, outputFile } = options;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const out = outputFile === undefined ? 'pipe' : openSync(outputFile, 'w');
    const child = spawn(file, args, { env: env ?? process.env, cwd, stdio: ['pipe', out, out] });
    if (typeof out === 'number') closeSync(out);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      killTree(child.pid, 'SIGKILL');
      reject(new Error(`${file} ${args.join(' ')}: still running after ${timeoutMs} ms; killed`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on(outputFile === undefined ? 'close' : 'exit', (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      if (outputFile !== undefined) stderr = readFileSync(outputFile, 'utf8');
      resolve({ code, signal, stdout, stderr, ms });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** Like `run`, but a non-zero exit is an error carrying the command's stderr. */
export async function runOk(file, args = [], options = {}) {
  const result = await run(file, args, options);
  if (result.code !== 0) {
    const tail = (result.stderr || result.stdout).trim().split('\n').slice(-5).join(' | ');
    throw new Error(`${file} ${args.join(' ')} exited ${result.code ?? result.signal}: ${tail}`);
  }
  return result;
}

export function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killTree(pid, signal) {
  if (pid === undefined) return;
  for (const p of [...descendants(pid), pid]) {
    try {
      process.kill(p, signal);
    } catch {
      // gone
    }
  }
}

/** Stop one process by PID: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopPid(pid, graceMs = 3000) {
  if (pid === undefined || !pidAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    if (!pidAlive(pid) || isZombie(pid)) return;
    await sleep(20);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

function isZombie(pid) {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

function allPids() {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** Parent PID of every live process. */
function parents() {
  const map = new Map();
  for (const pid of allPids()) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      map.set(pid, Number(rest[1]));
    } catch {
      // exited meanwhile
    }
  }
  return map;
}

/** Every live descendant of `root`. */
export function descendants(root) {
  const byParent = new Map();
  for (const [pid, ppid] of parents()) {
    if (!byParent.has(ppid)) byParent.set(ppid, []);
    byParent.get(ppid).push(pid);
  }
  const out = [];
  const stack = [root];
  while (stack.length > 0) {
    const p = stack.pop();
    for (const child of byParent.get(p) ?? []) {
      out.push(child);
      stack.push(child);
    }
  }
  return out;
}

/** Live (non-zombie) processes whose environment holds `TAG_VAR=<value starting with prefix>`. */
export function taggedPids(prefix) {
  const needle = Buffer.from(`${TAG_VAR}=${prefix}`);
  const out = [];
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    let environ;
    try {
      environ = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue;
    }
    if (environ.indexOf(needle) === -1) continue;
    if (isZombie(pid)) continue;
    out.push(pid);
  }
  return out;
}

/** Short names of processes, e.g. {"tsp": 1001, "sleep": 1}. */
export function commandsOf(pids) {
  const counts = {};
  for (const pid of pids) {
    let comm;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    counts[comm] = (counts[comm] ?? 0) + 1;
  }
  return counts;
}

/** Kill every process still carrying a tag (each one we started, directly or not), by PID. */
export async function killTagged(prefix) {
  const pids = taggedPids(prefix);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (pids.length > 0) await sleep(50);
  return pids.length;
}

/** VmRSS and VmHWM (peak) of a process, in MiB. */
export function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
}

/** Poll `check` every `everyMs` until it returns a truthy value; rejects after `timeoutMs`. */
export async function waitFor(check, { everyMs = 10, timeoutMs = 120_000, what = 'condition' } = {}) {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (performance.now() > until)
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}
