import { execFileSync } from 'node:child_process';
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { copiesOf, NOT_YAML_PRINTABLE, sleep } from '../helpers/spool-checks.ts';

/**
 * One daemon (a separate process: a blocked read would hang the test runner too) in a spool where
 * someone has left FIFOs, symlinks, hard links and huge files where the daemon reads, and symlinked
 * queue folders. The daemon must keep working, never read what a link points to, never quote it,
 * and never build or take anything outside the spool.
 */
describe('a hostile spool tree', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let queuedId: string;
  const canary = `SECRET-CANARY-${process.pid}`;
  /** A file the writer of the spool may not read (think users.yaml): the daemon can. */
  let secret: string;
  /** A folder outside the spool that a symlinked queue folder points to. */
  let outsideQueue: string;
  let jobCount = 0;

  const requests = (): string => path.join(env.spool, 'held', 'requests');

  /** The daemon still takes and runs a drop: nothing blocks it. */
  const stillWorking = async (): Promise<void> => {
    const name = `alive-${++jobCount}.yaml`;
    drop(env.spool, 'open', 'command: "true"\n', name);
    await waitFor(
      () => jobsIn(env.spool, 'open', 'done').some((id) => id.endsWith(`-alive-${jobCount}`)),
      20_000,
      `${name} to run`,
    );
  };

  const setAside = async (file: string): Promise<string> => {
    await waitFor(() => existsSync(`${file}.error`), 15_000, `${path.basename(file)} to be set aside`);
    await waitFor(() => {
      try {
        lstatSync(`${file}.rejected`);
        return true;
      } catch {
        return false;
      }
    });
    return readFileSync(`${file}.error`, 'utf8');
  };

  beforeAll(async () => {
    env = makeEnv({ queues: { held: { enabled: false }, open: {} } });
    secret = path.join(env.root, 'secret.yaml');
    writeFileSync(secret, `command: echo\nhost: ${canary}\n`, { mode: 0o600 });
    // A queue folder that is a symlink to a folder outside the spool, holding a job.
    outsideQueue = path.join(env.root, 'outside-queue');
    mkdirSync(path.join(outsideQueue, 'incoming'), { recursive: true });
    writeFileSync(
      path.join(outsideQueue, 'incoming', 'job.yaml'),
      `command: touch ${env.root}/ran-outside\n`,
    );
    symlinkSync(outsideQueue, path.join(env.spool, 'linked'));
    daemon = await startDaemon(env.etc, env.spool);
    drop(env.spool, 'held', 'command: "true"\n', 'held-job.yaml');
    queuedId = await waitFor(() => jobsIn(env.spool, 'held', 'queued')[0], 15_000, 'the held job');
  });

  afterAll(async () => {
    await daemon?.stop();
    env?.cleanup();
  });

  it('never reads the target of a symlinked request file, nor quotes it in a file or log line', async () => {
    const file = path.join(requests(), `${queuedId}.host`);
    symlinkSync(secret, file);
    const error = await setAside(file);
    expect(error).toMatch(/symbolic link/);
    expect(lstatSync(`${file}.rejected`).isSymbolicLink()).toBe(true);
    await stillWorking();
    expect(copiesOf(env.spool, canary, secret)).toEqual([]);
    expect(daemon.logs()).not.toContain(canary);
  });

  it('sets aside a hard-linked request file unread', async () => {
    const file = path.join(requests(), `${queuedId}.priority`);
    linkSync(secret, file);
    const error = await setAside(file);
    expect(error).toMatch(/2 hard links/);
    expect(copiesOf(env.spool, canary, secret)).toEqual([]);
    expect(daemon.logs()).not.toContain(canary);
  });

  it('sets aside a huge request file without reading it, once', async () => {
    const file = path.join(requests(), `${queuedId}.cancel`);
    const made = path.join(env.root, 'huge.cancel');
    writeFileSync(made, '');
    truncateSync(made, 700 * 1024 * 1024); // sparse: costs no disk
    renameSync(made, file);
    const error = await setAside(file);
    expect(error).toMatch(/over the limit/);
    await stillWorking();
    // The daemon never held the file in memory.
    const peakKb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${daemon.pid}/status`, 'utf8'))?.[1]);
    expect(peakKb).toBeLessThan(400 * 1024);
    expect(jobsIn(env.spool, 'held', 'queued')).toContain(queuedId);
  });

  it('never writes through a link planted under the temp name of an error file', async () => {
    const victim = path.join(env.root, 'victim.txt');
    writeFileSync(victim, 'untouched\n');
    const file = path.join(requests(), 'not-a-request.cancel');
    symlinkSync(victim, path.join(requests(), `.not-a-request.cancel.error.${daemon.pid}.tmp`));
    writeFileSync(file, '');
    const error = await setAside(file);
    expect(error).toMatch(/Request files are named/);
    expect(readFileSync(victim, 'utf8')).toBe('untouched\n');
  });

  it('sets aside a FIFO request file without blocking', async () => {
    const file = path.join(requests(), `${queuedId}.retry`);
    execFileSync('mkfifo', [file]);
    const error = await setAside(file);
    expect(error).toMatch(/named pipe/);
    expect(lstatSync(`${file}.rejected`).isFIFO()).toBe(true);
    await stillWorking();
  });

  it('refuses a symlinked or FIFO queue.yaml unread and keeps running the queue', async () => {
    mkdirSync(path.join(env.spool, 'linkyaml'));
    symlinkSync(secret, path.join(env.spool, 'linkyaml', 'queue.yaml'));
    mkdirSync(path.join(env.spool, 'fifoyaml'));
    execFileSync('mkfifo', [path.join(env.spool, 'fifoyaml', 'queue.yaml')]);
    await waitFor(
      () =>
        /queue\.yaml: is a symbolic link/.test(daemon.logs()) &&
        /queue\.yaml: is a named pipe/.test(daemon.logs()),
      15_000,
      'both queue.yaml files to be refused',
    );
    await stillWorking();
    drop(env.spool, 'fifoyaml', 'command: "true"\n', 'in-fifoyaml.yaml');
    await waitFor(() => jobsIn(env.spool, 'fifoyaml', 'done').length === 1, 15_000, 'a job of that queue');
    expect(daemon.logs()).not.toContain(canary);
  });

  it('refuses a symlinked queue folder: nothing created, taken or run outside the spool', async () => {
    await waitFor(
      () => daemon.logs().includes(`queue refused: ${path.join(env.spool, 'linked')} is a symbolic link`),
      15_000,
      'the symlinked queue to be refused',
    );
    await sleep(2500); // rescans run every second
    expect(readdirSync(outsideQueue)).toEqual(['incoming']);
    expect(readdirSync(path.join(outsideQueue, 'incoming'))).toEqual(['job.yaml']);
    expect(existsSync(path.join(env.root, 'ran-outside'))).toBe(false);
    // Warned once, not at every rescan.
    expect(daemon.logs().split('queue refused: ').length - 1).toBeLessThanOrEqual(2);
  });

  it('refuses a queue whose incoming/ is a symlink: the folder it points to is not emptied', async () => {
    const outside = path.join(env.root, 'outside-incoming');
    mkdirSync(outside);
    writeFileSync(path.join(outside, 'victim.yaml'), 'command: "true"\n');
    writeFileSync(path.join(outside, 'junk.txt'), 'not a job\n');
    // The queue folder is made outside and renamed in, so it appears with its link in place.
    const made = path.join(env.root, 'halflinked');
    mkdirSync(made);
    symlinkSync(outside, path.join(made, 'incoming'));
    const queue = path.join(env.spool, 'halflinked');
    renameSync(made, queue);
    await waitFor(
      () => daemon.logs().includes(`queue refused: ${path.join(queue, 'incoming')} is a symbolic link`),
      15_000,
      'the queue with a symlinked incoming/ to be refused',
    );
    await sleep(2500);
    expect(readdirSync(outside).sort()).toEqual(['junk.txt', 'victim.yaml']);
    expect(existsSync(path.join(queue, 'queued'))).toBe(false);
  });

  it('does not quote a hard-linked drop it cannot accept', async () => {
    const incoming = path.join(env.spool, 'open', 'incoming');
    linkSync(secret, path.join(incoming, 'linked.yaml'));
    const reportFile = path.join(env.spool, 'open', 'rejected', 'linked.yaml.error.yaml');
    await waitFor(() => existsSync(reportFile), 15_000, 'the hard-linked drop to be rejected');
    const report = parse(readFileSync(reportFile, 'utf8')) as { message: string };
    expect(report.message).toMatch(/\d hard links/);
    expect(copiesOf(env.spool, canary, secret)).toEqual([]);
    expect(daemon.logs()).not.toContain(canary);
  });

  it('writes valid YAML error files quoting a short escaped excerpt of the drop', async () => {
    const key = `k\x7fe\x9by\x1b${'x'.repeat(5000)}`;
    drop(env.spool, 'open', JSON.stringify({ command: 'true', [key]: 1 }), 'controls.json');
    const reportFile = path.join(env.spool, 'open', 'rejected', 'controls.json.error.yaml');
    await waitFor(() => existsSync(reportFile), 15_000, 'the drop to be rejected');
    const text = readFileSync(reportFile, 'utf8');
    expect(text).not.toMatch(NOT_YAML_PRINTABLE);
    const report = parse(text) as { code: string; message: string; problems: { message: string }[] };
    expect(report.code).toBe('JOB_INVALID');
    expect(report.message).toContain('k\\x7fe\\x9by\\x1b');
    expect(report.message.length).toBeLessThan(1000);
    const logged = daemon
      .records()
      .find((r) => String(r.msg).startsWith('drop rejected') && r.file === 'controls.json');
    expect(String(logged?.msg).length).toBeLessThan(1000);
    expect(String(logged?.msg)).not.toMatch(NOT_YAML_PRINTABLE);
  });
});
