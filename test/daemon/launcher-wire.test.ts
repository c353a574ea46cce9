import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { perlLauncherSource } from '../../daemon/executors/launcher.ts';
import type { PipedSpawnRequest, WireEvent } from '../../daemon/launcher/protocol.ts';
import { EventReader, encodeRequest } from '../../daemon/launcher/wire.ts';
import { pidAlive } from '../helpers/dispatch.ts';
import { waitFor } from '../helpers/env.ts';

type Exit = Extract<WireEvent, { op: 'exit' }>;

/** This machine's name as the launcher puts it in the names of the folders it keeps. */
const HOST = hostname().replace(/[^A-Za-z0-9.-]/g, '_');

describe('the launcher wire format', () => {
  it('reads the same events whether the bytes come at once or one at a time', () => {
    const payload = Buffer.from('line\n\ttab\0nul\xff', 'latin1');
    const bytes = Buffer.concat([
      Buffer.from('ready\t42\nstarted\t1\t4242\n'),
      Buffer.from(`data\t1\t1\t${payload.length}\n`),
      payload,
      Buffer.from('data\t1\t2\t0\n'),
      Buffer.from('exit\t1\t3\t0\t1\nexit\t2\t\t9\nfailed\t3\t127\tENOENT\tx: command not found\n'),
    ]);
    const whole = new EventReader().push(bytes);
    const reader = new EventReader();
    const bytewise = [...bytes].flatMap((b) => reader.push(Buffer.from([b])));
    expect(bytewise).toEqual(whole);
    expect(whole).toEqual([
      { op: 'ready', pid: 42 },
      { op: 'started', key: 1, pid: 4242 },
      { op: 'data', key: 1, fd: 1, data: payload },
      { op: 'data', key: 1, fd: 2, data: Buffer.alloc(0) },
      { op: 'exit', key: 1, code: 3, signal: null, result: true },
      { op: 'exit', key: 2, code: null, signal: 'SIGKILL' },
      { op: 'exit', key: 3, code: 127, signal: null, error: 'x: command not found', errno: 'ENOENT' },
    ]);
  });

  it('writes options after the environment, and nothing when there are none', () => {
    const base = { key: 7, file: 'f', args: ['a'], cwd: '/', env: { A: '1' }, stdout: null, stderr: 'e' };
    const fields = (request: PipedSpawnRequest): string[] => {
      const frame = encodeRequest({ op: 'spawn', ...request }).toString();
      return frame.slice(frame.indexOf('\n') + 1).split('\0');
    };
    expect(fields(base)).toEqual(['spawn', '7', 'f', '/', '', 'e', '1', 'a', '1', 'A=1']);
    expect(fields({ ...base, options: ['mkdir', 'result'] }).at(-1)).toBe('mkdir,result');
  });
});

/**
 * The Perl launcher as a host runs it (`perl -e <source>` with the output sent back as data
 * events), spoken to over its pipes as the SSH channel would.
 */
describe('the Perl launcher with output sent back', () => {
  let dir: string;
  let child: ChildProcessWithoutNullStreams;
  const events: WireEvent[] = [];
  const waiting = new Map<number, (exit: Exit) => void>();
  let nextKey = 1;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'batchd-wire-'));
    child = spawn('perl', ['-e', perlLauncherSource()], { stdio: 'pipe' });
    const reader = new EventReader();
    child.stdout.on('data', (chunk: Buffer) => {
      for (const event of reader.push(chunk)) {
        events.push(event);
        if (event.op === 'exit') waiting.get(event.key)?.(event);
      }
    });
    await waitFor(() => events.find((e) => e.op === 'ready'), 10_000, 'the launcher to be ready');
  });

  afterAll(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (request: Omit<PipedSpawnRequest, 'key'>): { key: number; exit: Promise<Exit> } => {
    const key = nextKey++;
    const exit = new Promise<Exit>((resolve) => waiting.set(key, resolve));
    child.stdin.write(encodeRequest({ op: 'spawn', key, ...request }));
    return { key, exit };
  };
  const recycle = (paths: string[]): Promise<Exit> => {
    const key = nextKey++;
    const exit = new Promise<Exit>((resolve) => waiting.set(key, resolve));
    child.stdin.write(encodeRequest({ op: 'recycle', key, paths }));
    return exit;
  };
  const output = (key: number, fd: 1 | 2): string =>
    Buffer.concat(
      events.flatMap((e) => (e.op === 'data' && e.key === key && e.fd === fd ? [e.data] : [])),
    ).toString();
  const piped = { cwd: '/', env: {}, stdout: null, stderr: null } as const;

  it('reports ready with its pid first', () => {
    expect(events[0]).toEqual({ op: 'ready', pid: child.pid });
  });

  it('sends stdout and stderr back in order, all of it before the exit', async () => {
    const { key, exit } = run({
      ...piped,
      file: '/bin/sh',
      args: ['-c', 'printf "a\\n"; printf e >&2; seq 1 200000; printf z'],
    });
    expect(await exit).toMatchObject({ code: 0, signal: null });
    const expected = `a\n${Array.from({ length: 200_000 }, (_, i) => i + 1).join('\n')}\nz`;
    expect(output(key, 1)).toBe(expected);
    expect(output(key, 2)).toBe('e');
    const last = events.findLastIndex((e) => e.op === 'data' && e.key === key);
    expect(last).toBeLessThan(events.findIndex((e) => e.op === 'exit' && e.key === key));
  });

  it('reports a command that is not there in the sent-back stderr, as exit code 127', async () => {
    const { key, exit } = run({ ...piped, file: 'no-such-command-batchd', args: [] });
    expect(await exit).toMatchObject({ code: 127, errno: 'ENOENT' });
    expect(output(key, 2)).toBe('batchd: no-such-command-batchd: command not found\n');
  });

  it('makes the working folder with the mkdir option, and says so when it cannot', async () => {
    const cwd = path.join(dir, 'a', 'b', 'job.1');
    const made = run({ ...piped, cwd, options: ['mkdir'], file: '/bin/sh', args: ['-c', 'pwd'] });
    expect(await made.exit).toMatchObject({ code: 0 });
    expect(output(made.key, 1)).toBe(`${cwd}\n`);
    writeFileSync(path.join(dir, 'plain-file'), '');
    const blocked = path.join(dir, 'plain-file', 'job.1');
    const refused = run({ ...piped, cwd: blocked, options: ['mkdir'], file: '/bin/true', args: [] });
    const exit = await refused.exit;
    expect(exit).toMatchObject({ code: 126, errno: 'ENOTDIR' });
    expect(exit.error).toContain(`cannot create the job's folder ${blocked}`);
  });

  it('with the result option, says whether the job left a non-empty BATCHD_RESULT', async () => {
    const result = path.join(dir, 'result.json');
    const env = { BATCHD_RESULT: result };
    const shell = (script: string): ReturnType<typeof run> =>
      run({ ...piped, env, options: ['result'], file: '/bin/sh', args: ['-c', script] });
    const wrote = shell('echo {} > "$BATCHD_RESULT"');
    expect(await wrote.exit).toMatchObject({ code: 0, result: true });
    rmSync(result);
    const empty = shell(': > "$BATCHD_RESULT"');
    expect(await empty.exit).toMatchObject({ code: 0, result: false });
    const plain = run({ ...piped, env, file: '/bin/true', args: [] });
    expect((await plain.exit).result).toBeUndefined();
  });

  it('with the lazy option, creates a log file only once the job writes to it', async () => {
    const out = path.join(dir, 'lazy-out.log');
    const err = path.join(dir, 'lazy-err.log');
    const lazy = { cwd: dir, env: {}, stdout: out, stderr: err, options: ['lazy' as const] };
    const silent = run({ ...lazy, file: '/bin/true', args: [] });
    expect(await silent.exit).toMatchObject({ code: 0 });
    expect(existsSync(out) || existsSync(err)).toBe(false);
    const talks = run({ ...lazy, file: '/bin/sh', args: ['-c', 'seq 1 100000; echo oops >&2'] });
    expect(await talks.exit).toMatchObject({ code: 0 });
    expect(readFileSync(out, 'utf8')).toBe(
      `${Array.from({ length: 100_000 }, (_, i) => i + 1).join('\n')}\n`,
    );
    expect(readFileSync(err, 'utf8')).toBe('oops\n');
    // Appended, as across attempts; and a start failure is written to the stderr file.
    const missing = run({ ...lazy, file: 'no-such-command-batchd', args: [] });
    expect(await missing.exit).toMatchObject({ code: 127 });
    expect(readFileSync(err, 'utf8')).toBe('oops\nbatchd: no-such-command-batchd: command not found\n');
    // Nothing of it came back as data events.
    expect(events.some((e) => e.op === 'data' && [silent.key, talks.key, missing.key].includes(e.key))).toBe(
      false,
    );
  });

  it('gives each job its own variables, none left over from the job before, and every signal at its default', async () => {
    const show =
      'echo "A=${A-unset} B=${B-unset} HOME=${HOME-unset}"; grep -E "^Sig(Ign|Blk)" /proc/self/status';
    const first = run({
      ...piped,
      env: { A: 'one', HOME: '/job-home' },
      file: '/bin/sh',
      args: ['-c', show],
    });
    expect(await first.exit).toMatchObject({ code: 0 });
    const second = run({ ...piped, env: { B: 'two' }, file: '/bin/sh', args: ['-c', show] });
    expect(await second.exit).toMatchObject({ code: 0 });
    expect(output(first.key, 1).split('\n')[0]).toBe('A=one B=unset HOME=/job-home');
    // The launcher's own HOME is back, and A is gone.
    expect(output(second.key, 1).split('\n')[0]).toBe(`A=unset B=two HOME=${process.env.HOME ?? 'unset'}`);
    // The launcher drops INT, TERM, HUP and PIPE itself; its jobs neither ignore nor block any.
    for (const key of [first.key, second.key]) {
      expect(output(key, 1)).toMatch(/^SigBlk:\s+0+$/m);
      expect(output(key, 1)).toMatch(/^SigIgn:\s+0+$/m);
    }
  });

  it('reports a stdout file it cannot open in the stderr file, and starts nothing', async () => {
    const err = path.join(dir, 'unopenable-err.log');
    const marker = path.join(dir, 'should-not-exist');
    const { exit } = run({
      cwd: dir,
      env: {},
      stdout: path.join(dir, 'no-such-folder', 'out.log'),
      stderr: err,
      file: '/bin/sh',
      args: ['-c', `touch ${marker}`],
    });
    const failed = await exit;
    expect(failed).toMatchObject({ code: 126, errno: 'ENOENT' });
    expect(failed.error).toContain(`cannot open ${path.join(dir, 'no-such-folder', 'out.log')}`);
    expect(readFileSync(err, 'utf8')).toMatch(
      /^batchd: cannot open .*out\.log: No such file or directory\n$/,
    );
    expect(existsSync(marker)).toBe(false);
  });

  it('keeps an empty finished folder for the next job made there, removes the rest, never follows a link', async () => {
    const work = path.join(dir, 'work');
    const target = path.join(dir, 'link-target');
    mkdirSync(path.join(work, 'empty.1'), { recursive: true });
    chmodSync(path.join(work, 'empty.1'), 0o700); // as a job may leave it
    mkdirSync(path.join(work, 'full.1', 'sub'), { recursive: true });
    writeFileSync(path.join(work, 'full.1', 'sub', 'out.txt'), 'x');
    mkdirSync(target);
    writeFileSync(path.join(target, 'keep.txt'), 'keep');
    symlinkSync(target, path.join(work, 'link.1'));
    const kept = statSync(path.join(work, 'empty.1')).ino;

    const paths = ['empty.1', 'full.1', 'link.1', 'missing.1'].map((name) => path.join(work, name));
    expect(await recycle(paths)).toMatchObject({ code: 0, signal: null });
    const spares = readdirSync(work);
    expect(spares).toHaveLength(1);
    expect(spares[0]).toMatch(new RegExp(`^\\.batchd-spare-${HOST}-${child.pid}-\\d+$`));
    expect(statSync(path.join(work, spares[0] ?? '')).ino).toBe(kept);
    expect(readFileSync(path.join(target, 'keep.txt'), 'utf8')).toBe('keep');

    // The next job made in that folder gets it, with a new folder's mode.
    const cwd = path.join(work, 'next.1');
    const next = run({
      ...piped,
      cwd,
      options: ['mkdir'],
      file: '/bin/sh',
      args: ['-c', 'stat -c "%i %a" .'],
    });
    expect(await next.exit).toMatchObject({ code: 0 });
    const mode = (0o777 & ~process.umask()).toString(8);
    expect(output(next.key, 1)).toBe(`${kept} ${mode}\n`);
    expect(readdirSync(work)).toEqual(['next.1']);
    // Nothing to remove: the exit comes at once.
    expect(await recycle([cwd])).toMatchObject({ code: 0 });
    const [spare = ''] = readdirSync(work);
    expect(spare).toMatch(/^\.batchd-spare-/);
    // A process that left its job's group still writes there: that folder is not handed out again
    // (it goes when the launcher ends), and the next job gets a new one.
    writeFileSync(path.join(work, spare, 'late.txt'), 'late');
    const after = run({
      ...piped,
      cwd,
      options: ['mkdir'],
      file: '/bin/sh',
      args: ['-c', 'stat -c %i .; ls -A'],
    });
    expect(await after.exit).toMatchObject({ code: 0 });
    expect(output(after.key, 1)).not.toContain(String(kept));
    expect(output(after.key, 1)).not.toContain('late.txt');
    expect(readdirSync(work).sort()).toEqual([spare, 'next.1'].sort());
  });

  it('reports the exit of a job whose escaped child holds its output open, within seconds', async () => {
    const pidFile = path.join(dir, 'escaped.pid');
    const started = Date.now();
    const { key, exit } = run({
      ...piped,
      file: '/bin/sh',
      args: ['-c', `echo before; setsid sh -c 'echo $$ > ${pidFile}; exec sleep 60' & sleep 0.2; exit 4`],
    });
    expect(await exit).toMatchObject({ code: 4 });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(output(key, 1)).toBe('before\n');
    // It left its group, so it is not the launcher's to kill.
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
  });

  it('kills its running jobs, removes the folders it kept, and exits when its input closes', async () => {
    const work = path.join(dir, 'work');
    mkdirSync(path.join(work, 'last.1'));
    // A dead launcher's spare (killed before it could remove it) goes with the first recycle in its
    // folder; a live one's stays.
    const other = path.join(dir, 'other');
    const dead = `.batchd-spare-${HOST}-${spawnSync('true').pid}-0`;
    const live = `.batchd-spare-${HOST}-${process.pid}-0`;
    for (const name of [dead, live, 'last.1']) mkdirSync(path.join(other, name), { recursive: true });
    expect(await recycle([path.join(work, 'last.1'), path.join(other, 'last.1')])).toMatchObject({ code: 0 });
    const kept = readdirSync(other);
    expect(kept).toHaveLength(2);
    expect(kept).toContain(live);
    expect(kept).not.toContain(dead);
    const { key } = run({ ...piped, file: '/bin/sleep', args: ['61'] });
    const started = await waitFor(
      () =>
        events.find((e): e is Extract<WireEvent, { op: 'started' }> => e.op === 'started' && e.key === key),
      10_000,
      'the job to start',
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdin.end();
    await exited;
    await waitFor(() => !pidAlive(started.pid), 5_000, 'the job to be killed');
    expect(readdirSync(other)).toEqual([live]);
    expect(readdirSync(work).filter((name) => name.startsWith('.batchd-spare-'))).toEqual([]);
  });
});
