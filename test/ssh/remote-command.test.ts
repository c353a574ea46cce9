import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  newNonce,
  type WrapperReport,
  wrapperScript,
  WrapperStderr,
} from '../../daemon/executors/remote-command.ts';
import { shellQuote } from '../../daemon/hosts/shell-quote.ts';
import { waitFor } from '../helpers/env.ts';
import { processesWith } from './sshd.ts';

const HOSTILE = [
  '; touch PWNED',
  '$(touch PWNED)',
  '`touch PWNED`',
  "it's",
  '"quoted"',
  'two\nlines',
  '-rf',
  '--',
  '\\',
  "'\\''",
  '$HOME',
  ' spaced ',
];

/** A job folder, made as the daemon makes it (over SFTP) before the wrapper runs. */
function made(dir: string, name: string): string {
  mkdirSync(path.join(dir, name));
  return path.join(dir, name);
}

/** Run the wrapper as sshd would: /bin/sh -c in a new session, stdin a pipe we hold. */
function runWrapper(
  script: string,
  cwd: string,
): {
  child: ChildProcessWithoutNullStreams;
  done: Promise<{ code: number | null; signal: string | null; out: string; err: string }>;
} {
  const child = spawn('setsid', ['/bin/sh', '-c', script], { cwd, stdio: 'pipe' });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number | null; signal: string | null; out: string; err: string }>(
    (resolve) => child.on('close', (code, signal) => resolve({ code, signal, out, err })),
  );
  return { child, done };
}

/** The wrapper's stderr as the daemon reads it: its start line, its report, the job's stderr. */
function readStderr(
  err: string,
  nonce: string,
): { pausable: boolean | undefined; report: WrapperReport | undefined; rest: Buffer } {
  let pausable: boolean | undefined;
  const stderr = new WrapperStderr(nonce, (can) => (pausable = can));
  const head = stderr.push(Buffer.from(err));
  const { report, rest } = stderr.end();
  return { pausable, report, rest: Buffer.concat([head, rest]) };
}

describe('the remote wrapper, run by a real /bin/sh', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'batchd-wrapper-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('shellQuote gives back every hostile value verbatim and runs none of it', async () => {
    for (const value of HOSTILE) {
      const { done } = runWrapper(`printf '%s' ${shellQuote(value)}`, dir);
      expect((await done).out).toBe(value);
    }
    expect(existsSync(path.join(dir, 'PWNED'))).toBe(false);
  });

  it('exports values as inert variables, runs the job in its folder and reports the exit status', async () => {
    const nonce = newNonce();
    const env = Object.fromEntries(HOSTILE.map((v, i) => [`BATCHD_PARAM_v${i}`, v]));
    const show = HOSTILE.map((_, i) => `"$BATCHD_PARAM_v${i}"`).join(' ');
    const jobDir = made(dir, 'job-1');
    const script = wrapperScript({
      nonce,
      jobDir,
      env,
      command: `/bin/sh -c 'printf "<%s>" ${show}; echo; pwd; exit 3'`,
    });
    const { done } = runWrapper(script, dir);
    const { code, out, err } = await done;
    expect(code).toBe(3);
    expect(out).toBe(HOSTILE.map((v) => `<${v}>`).join('') + `\n${jobDir}\n`);
    const { pausable, report, rest } = readStderr(err, nonce);
    expect(pausable).toBe(true);
    expect(report).toEqual({ kind: 'exit', status: 3, result: false });
    expect(rest.toString()).toBe('');
    expect(existsSync(path.join(dir, 'PWNED'))).toBe(false);
  });

  it('TERM on the control line stops the whole process group, grandchildren included', async () => {
    const nonce = newNonce();
    const script = wrapperScript({
      nonce,
      jobDir: made(dir, 'job-2'),
      env: {},
      command: "/bin/sh -c 'sleep 331 & sleep 332; wait'",
    });
    const { child, done } = runWrapper(script, dir);
    await waitFor(
      () => processesWith('sleep 331').length > 0 && processesWith('sleep 332').length > 0,
      5000,
      'both sleeps',
    );
    child.stdin.write('TERM\n');
    const { err } = await done;
    expect(readStderr(err, nonce).report).toEqual({ kind: 'exit', status: 143, result: false });
    await waitFor(
      () => processesWith('sleep 331').length === 0 && processesWith('sleep 332').length === 0,
      5000,
      'no sleeps left',
    );
  });

  it('end of file on stdin (the connection went away) kills the job', async () => {
    const script = wrapperScript({
      nonce: newNonce(),
      jobDir: made(dir, 'job-3'),
      env: {},
      command: 'sleep 333',
    });
    const { child, done } = runWrapper(script, dir);
    await waitFor(() => processesWith('sleep 333').length > 0, 5000, 'the sleep');
    child.stdin.end();
    const { signal } = await done;
    expect(signal).toBe('SIGKILL');
    await waitFor(() => processesWith('sleep 333').length === 0, 5000, 'no sleep left');
  });

  it('says when the job wrote $BATCHD_RESULT, and keeps stderr without a final newline intact', async () => {
    const nonce = newNonce();
    const jobDir = made(dir, 'job-4');
    const script = wrapperScript({
      nonce,
      jobDir,
      env: {},
      command: `/bin/sh -c 'echo "{}" > "$BATCHD_RESULT"; printf partial >&2'`,
    });
    const { err } = await runWrapper(script, dir).done;
    const { report, rest } = readStderr(err, nonce);
    expect(report).toEqual({ kind: 'exit', status: 0, result: true });
    expect(rest.toString()).toBe('partial');
    expect(existsSync(path.join(jobDir, 'result.json'))).toBe(true);
  });

  it('reports a job folder that is not there', async () => {
    const nonce = newNonce();
    const script = wrapperScript({
      nonce,
      jobDir: '/proc/no/such/place',
      env: {},
      command: 'true',
    });
    const { code, err } = await runWrapper(script, dir).done;
    expect(code).toBe(125);
    expect(readStderr(err, nonce).report).toMatchObject({ kind: 'setup' });
  });

  it('refuses an environment name that is not a plain identifier', () => {
    expect(() =>
      wrapperScript({
        nonce: 'n',
        jobDir: '/tmp/x',
        env: { 'A;rm -rf ~': 'x' },
        command: 'true',
      }),
    ).toThrow(/not a valid environment variable name/);
  });
});
