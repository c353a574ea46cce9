/**
 * The launcher: a small process that forks the daemon's local jobs. Fork costs grow with the
 * forking process's memory, and the daemon may hold a large index; this process stays small.
 * Each job gets its own process group so it can be killed as a tree. When the daemon goes away
 * (even by kill -9) the IPC channel closes and every job here is killed, so no orphan keeps
 * running while recovery queues the job again.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, statSync, writeSync } from 'node:fs';

import type { LauncherEvent, LauncherRequest } from '../launcher/protocol.ts';
import { shellQuote } from '../hosts/shell-quote.ts';

const groups = new Map<number, number>();

function send(event: LauncherEvent): void {
  process.send?.(event);
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function launch(req: Extract<LauncherRequest, { op: 'spawn' }>): void {
  let out: number | undefined;
  let err: number | undefined;
  // Node's spawn reports a missing cwd as ENOENT, the same as a missing command: say which it is.
  if (!isFolder(req.cwd)) {
    const message = `cannot change to folder ${req.cwd}: no such folder`;
    appendLine(req.stderr, `batchd: ${message}`);
    send({ op: 'exit', key: req.key, code: 126, signal: null, error: message, errno: 'ENOENT' });
    return;
  }
  try {
    out = openSync(req.stdout, 'a');
    err = openSync(req.stderr, 'a');
    const { file, args } = contained(req);
    const child = spawn(file, args, {
      cwd: req.cwd,
      env: { ...process.env, ...req.env },
      stdio: ['ignore', out, err],
      detached: true,
    });
    const errFd = err;
    let reported = false;
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (reported) return;
      reported = true;
      groups.delete(req.key);
      const message =
        error.code === 'ENOENT' ? `${req.file}: command not found` : `${req.file}: ${error.message}`;
      appendLine(req.stderr, `batchd: ${message}`);
      send({
        op: 'exit',
        key: req.key,
        code: error.code === 'ENOENT' ? 127 : 126,
        signal: null,
        error: message,
        errno: error.code,
      });
    });
    if (child.pid !== undefined) {
      const pid = child.pid;
      groups.set(req.key, pid);
      send({ op: 'started', key: req.key, pid });
      child.once('exit', (code, signal) => {
        if (reported) return;
        reported = true;
        groups.delete(req.key);
        // Whatever the job left behind in its group goes with it.
        killGroup(pid, 'SIGKILL');
        send({ op: 'exit', key: req.key, code, signal });
      });
    }
    void errFd;
  } catch (error) {
    send({ op: 'exit', key: req.key, code: null, signal: null, error: (error as Error).message });
  } finally {
    if (out !== undefined) closeSync(out);
    if (err !== undefined) closeSync(err);
  }
}

/** ulimit's flags (dash and bash alike) for the rlimit options; `as` is in KiB there. */
const ULIMIT_FLAGS: Record<string, string> = { cpu: '-t', nofile: '-n', nproc: '-u', as: '-v' };

/**
 * The job's command, entering its cgroups and setting its rlimits first when it has any: Node's
 * spawn runs nothing between fork and exec, so a shell does it (the Perl launcher needs none).
 */
function contained(req: Extract<LauncherRequest, { op: 'spawn' }>): { file: string; args: string[] } {
  const steps: string[] = [];
  for (const procs of req.join ?? []) steps.push(`echo 0 > ${shellQuote(procs)} || exit 126`);
  for (const option of req.options ?? []) {
    const [name = '', text = ''] = option.split('=');
    const flag = ULIMIT_FLAGS[name];
    if (flag === undefined) continue;
    const value = name === 'as' ? Math.floor(Number(text) / 1024) : Number(text);
    // The hard CPU limit a second later: SIGXCPU first, so the job may say why it stops.
    const hard = name === 'cpu' ? value + 1 : value;
    // Both limits at once (a hard one below the soft one is refused), then the soft one.
    steps.push(`ulimit ${flag} ${hard} && ulimit -S ${flag} ${value} || exit 126`);
  }
  if (steps.length === 0) return { file: req.file, args: req.args };
  return { file: '/bin/sh', args: ['-c', `${steps.join('\n')}\nexec "$@"`, 'sh', req.file, ...req.args] };
}

function isFolder(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

function appendLine(file: string, line: string): void {
  try {
    const fd = openSync(file, 'a');
    writeSync(fd, `${line}\n`);
    closeSync(fd);
  } catch {
    // the job folder is gone
  }
}

process.on('message', (message: LauncherRequest) => {
  if (message.op === 'spawn') launch(message);
  else {
    const pid = groups.get(message.key);
    if (pid !== undefined) killGroup(pid, message.signal);
  }
});

process.on('disconnect', () => {
  for (const pid of groups.values()) killGroup(pid, 'SIGKILL');
  process.exit(0);
});

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  // The daemon decides when jobs stop; a terminal's Ctrl-C reaches this process too.
  process.on(signal, () => undefined);
}
