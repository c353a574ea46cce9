import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { Launcher, launcherKind } from '../../daemon/executors/launcher.ts';
import type { LaunchOption, LauncherEvent } from '../../daemon/launcher/protocol.ts';
import { pidAlive } from '../helpers/dispatch.ts';
import { waitFor } from '../helpers/env.ts';

type Exit = Extract<LauncherEvent, { op: 'exit' }>;

/** Values that would do harm if any layer between the daemon and exec used a shell. */
const HOSTILE = [
  'plain',
  'two words',
  "it's",
  '"quoted"',
  '$(touch CANARY)',
  '`touch CANARY`',
  '; touch CANARY',
  'a\nnew line',
  'tab\there',
  '*',
  '',
  'ünïcödé ✓',
  '\\back\\slash',
  '--option=value',
];

/**
 * The launcher process that forks local jobs, in its three forms: native (launcher.c, where the
 * build compiled it), Perl (where perl exists) and Node (the fallback). Each must pass argv and
 * environment through byte for byte, report exit codes, signals and start failures, and kill a
 * job's whole process group.
 */
describe.each(['native', 'perl', 'node'] as const)('the %s launcher', (kind) => {
  let dir: string;
  let launcher: Launcher;
  const saved = process.env.BATCHD_LAUNCHER;

  beforeAll(() => {
    process.env.BATCHD_LAUNCHER = kind;
    expect(launcherKind()).toBe(kind);
    launcher = new Launcher(pino({ level: 'silent' }));
  });

  afterAll(async () => {
    await launcher.close();
    if (saved === undefined) delete process.env.BATCHD_LAUNCHER;
    else process.env.BATCHD_LAUNCHER = saved;
  });

  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const run = (
    file: string,
    args: string[],
    options: { env?: Record<string, string>; cwd?: string; options?: LaunchOption[] } = {},
  ): { pid: Promise<number>; exit: Promise<Exit>; key: number; out: string; err: string } => {
    dir = mkdtempSync(path.join(tmpdir(), `batchd-launcher-${kind}-`));
    const out = path.join(dir, 'stdout.log');
    const err = path.join(dir, 'stderr.log');
    let started: (pid: number) => void = () => undefined;
    let exited: (event: Exit) => void = () => undefined;
    const pid = new Promise<number>((resolve) => (started = resolve));
    const exit = new Promise<Exit>((resolve) => (exited = resolve));
    const key = launcher.spawn(
      {
        file,
        args,
        cwd: options.cwd ?? dir,
        env: options.env ?? {},
        stdout: out,
        stderr: err,
        ...(kind === 'node' || options.options === undefined ? {} : { options: options.options }),
      },
      { onStarted: started, onExit: exited },
    );
    return { pid, exit, key, out, err };
  };

  it('passes every argument and variable through unchanged, with no shell in between', async () => {
    // With -e there is no script path: the arguments start at argv[1].
    const script =
      'process.stdout.write(JSON.stringify({ argv: process.argv.slice(1), env: process.env.V, cwd: process.cwd() }))';
    const job = run(process.execPath, ['-e', script, ...HOSTILE], { env: { V: HOSTILE.join('|') } });
    const exit = await job.exit;
    expect(exit).toMatchObject({ code: 0, signal: null });
    const seen = JSON.parse(readFileSync(job.out, 'utf8')) as { argv: string[]; env: string; cwd: string };
    expect(seen.argv).toEqual(HOSTILE);
    expect(seen.env).toBe(HOSTILE.join('|'));
    expect(seen.cwd).toBe(dir);
    expect(readFileSync(job.err, 'utf8')).toBe('');
    expect(() => readFileSync(path.join(dir, 'CANARY'))).toThrow();
  });

  it('reports the exit code and the start, with output appended to the logs', async () => {
    const job = run('/bin/sh', ['-c', 'echo out; echo err >&2; exit 3']);
    const pid = await job.pid;
    expect(pid).toBeGreaterThan(1);
    expect(await job.exit).toMatchObject({ code: 3, signal: null });
    expect(readFileSync(job.out, 'utf8')).toBe('out\n');
    expect(readFileSync(job.err, 'utf8')).toBe('err\n');
  });

  it('reports a command that does not exist as exit code 127 with ENOENT, and says so in stderr.log', async () => {
    const job = run('no-such-command-batchd', []);
    const exit = await job.exit;
    expect(exit).toMatchObject({ code: 127, errno: 'ENOENT' });
    expect(exit.error).toContain('no-such-command-batchd: command not found');
    expect(readFileSync(job.err, 'utf8')).toContain('command not found');
  });

  it('reports a file that cannot be executed as a start failure (not ENOENT)', async () => {
    const job = run('/', []);
    const exit = await job.exit;
    expect(exit.error).toBeDefined();
    expect(exit.errno).not.toBe('ENOENT');
    expect(exit.code).toBe(126);
  });

  it('reports a missing working folder as exit code 126 naming the folder, not as a missing command', async () => {
    const job = run('/bin/true', [], { cwd: '/nonexistent-batchd-folder' });
    const exit = await job.exit;
    expect(exit.code).toBe(126);
    expect(exit.error).toContain('cannot change to folder /nonexistent-batchd-folder');
    expect(readFileSync(job.err, 'utf8')).toContain('cannot change to folder');
  });

  it('kills the whole process group on request, and reports the signal', async () => {
    const job = run('/bin/sh', ['-c', 'sleep 60 & echo $! > child.pid; wait']);
    await job.pid;
    const childPid = await waitFor(
      () => {
        try {
          return Number(readFileSync(path.join(dir, 'child.pid'), 'utf8')) || undefined;
        } catch {
          return undefined;
        }
      },
      10_000,
      'the background child to start',
    );
    launcher.kill(job.key, 'SIGTERM');
    const exit = await job.exit;
    expect(exit.signal).toBe('SIGTERM');
    expect(exit.code).toBeNull();
    await waitFor(() => !pidAlive(childPid), 5000, 'the background child to be killed');
  });

  it('kills what a job left behind in its group when its first process exits', async () => {
    const job = run('/bin/sh', ['-c', 'sleep 60 > /dev/null 2>&1 & echo $! > child.pid']);
    expect(await job.exit).toMatchObject({ code: 0 });
    const childPid = Number(readFileSync(path.join(dir, 'child.pid'), 'utf8'));
    await waitFor(() => !pidAlive(childPid), 5000, 'the left-behind child to be killed');
  });

  it('gives the job default signal handling (SIGTERM is not ignored)', async () => {
    const job = run('/bin/sh', ['-c', 'exec sleep 60']);
    const pid = await job.pid;
    process.kill(pid, 'SIGTERM');
    expect((await job.exit).signal).toBe('SIGTERM');
  });

  it('finds a command on the PATH the job was given, and runs a script without "#!" with sh', async () => {
    const bin = mkdtempSync(path.join(tmpdir(), `batchd-launcher-bin-`));
    try {
      writeFileSync(path.join(bin, 'batchd-hello'), 'echo "hello from $0 with $1"\n');
      chmodSync(path.join(bin, 'batchd-hello'), 0o755);
      const job = run('batchd-hello', ['world'], { env: { PATH: `${bin}:/usr/bin:/bin` } });
      expect(await job.exit).toMatchObject({ code: 0, signal: null });
      expect(readFileSync(job.out, 'utf8')).toBe(`hello from ${bin}/batchd-hello with world\n`);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('starts the job with no signal blocked and none ignored', async () => {
    const job = run('/bin/sh', ['-c', 'grep -E "^Sig(Blk|Ign)" /proc/self/status']);
    expect(await job.exit).toMatchObject({ code: 0 });
    const masks = readFileSync(job.out, 'utf8');
    expect(masks).toMatch(/^SigBlk:\s+0+$/m);
    expect(masks).toMatch(/^SigIgn:\s+0+$/m);
  });

  it.runIf(kind !== 'node')('creates a log file only when the job writes to it (lazy)', async () => {
    const job = run('/bin/sh', ['-c', 'echo only-out'], { options: ['lazy'] });
    expect(await job.exit).toMatchObject({ code: 0 });
    expect(readFileSync(job.out, 'utf8')).toBe('only-out\n');
    expect(existsSync(job.err)).toBe(false);
  });

  it.runIf(kind !== 'node')('sets the limits it is given (open files)', async () => {
    const job = run('/bin/sh', ['-c', 'ulimit -n'], { options: ['nofile=77'] });
    expect(await job.exit).toMatchObject({ code: 0 });
    expect(readFileSync(job.out, 'utf8').trim()).toBe('77');
  });

  it.runIf(kind !== 'node')('makes the working folder first when asked (mkdir)', async () => {
    dir = mkdtempSync(path.join(tmpdir(), `batchd-launcher-${kind}-`));
    const cwd = path.join(dir, 'a', 'b');
    mkdirSync(dir, { recursive: true });
    let exited: (event: Exit) => void = () => undefined;
    const exit = new Promise<Exit>((resolve) => (exited = resolve));
    launcher.spawn(
      {
        file: '/bin/sh',
        args: ['-c', 'pwd'],
        cwd,
        env: {},
        stdout: path.join(dir, 'out'),
        stderr: path.join(dir, 'err'),
        options: ['mkdir'],
      },
      { onStarted: () => undefined, onExit: exited },
    );
    expect(await exit).toMatchObject({ code: 0 });
    expect(readFileSync(path.join(dir, 'out'), 'utf8')).toBe(`${cwd}\n`);
  });

  it('runs many jobs at once and reports each exactly once', async () => {
    dir = mkdtempSync(path.join(tmpdir(), `batchd-launcher-${kind}-`));
    const reports = Array.from({ length: 40 }, () => 0); // onExit calls per job
    const exits = await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        let done: (e: Exit) => void = () => undefined;
        const exit = new Promise<Exit>((resolve) => (done = resolve));
        const report = (e: Exit): void => {
          reports[i] = (reports[i] ?? 0) + 1;
          done(e);
        };
        launcher.spawn(
          {
            file: '/bin/sh',
            args: ['-c', `exit ${i % 7}`],
            cwd: dir,
            env: {},
            stdout: path.join(dir, `o${i}`),
            stderr: path.join(dir, `e${i}`),
          },
          { onStarted: () => undefined, onExit: report },
        );
        return exit;
      }),
    );
    expect(exits.map((e) => e.code)).toEqual(Array.from({ length: 40 }, (_, i) => i % 7));
    // A duplicate report would come down the launcher's one channel before a later job's exit:
    // one more job, awaited, lets any of them show.
    const last = await new Promise<Exit>((resolve) =>
      launcher.spawn(
        {
          file: '/bin/sh',
          args: ['-c', 'exit 9'],
          cwd: dir,
          env: {},
          stdout: `${dir}/o`,
          stderr: `${dir}/e`,
        },
        { onStarted: () => undefined, onExit: resolve },
      ),
    );
    expect(last.code).toBe(9);
    expect(reports).toEqual(Array.from({ length: 40 }, () => 1));
  });
});
