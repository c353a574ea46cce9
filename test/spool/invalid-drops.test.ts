import { execFileSync, spawn } from 'node:child_process';
import {
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobDir, jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { entriesOf, sleep } from '../helpers/spool-checks.ts';

function existsOrLink(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

function wchanOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/wchan`, 'utf8');
  } catch {
    return '';
  }
}

interface Report {
  file: string;
  kept_as: string;
  code: string;
  message: string;
  problems: { field?: string; line?: number; message: string }[];
}

/**
 * One daemon, many bad drops: each must end in rejected/ with an error file naming the file (and
 * line and field where they apply), the original bytes untouched, and the daemon still working.
 */
describe('invalid drops', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let incoming: string;
  let rejected: string;
  const originals = new Map<string, Buffer>();
  /** Written by the job a followed symlink would run; must never appear. */
  let canary: string;

  const dropBytes = (name: string, bytes: string | Buffer): void => {
    const data = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
    originals.set(name, data);
    const tmp = path.join(incoming, `.${name}.tmp`);
    writeFileSync(tmp, data);
    renameSync(tmp, path.join(incoming, name));
  };

  const reportOf = async (name: string): Promise<Report> => {
    const file = path.join(rejected, `${name}.error.yaml`);
    // The error file is written first, then the drop is moved beside it: wait for both.
    await waitFor(
      () => existsSync(file) && existsOrLink(path.join(rejected, name)),
      15_000,
      `${name} to be rejected`,
    );
    return parse(readFileSync(file, 'utf8')) as Report;
  };

  beforeAll(async () => {
    env = makeEnv({
      queues: { default: null },
      config: { storage: { max_job_file_size: 1024, max_task_jobs: 50 } },
      jobTypes: {
        count: { template: 'echo $n', params: [{ name: 'n', type: 'Integer' }] },
      },
    });
    incoming = path.join(env.spool, 'default', 'incoming');
    rejected = path.join(env.spool, 'default', 'rejected');
    canary = path.join(env.root, 'canary');
    mkdirSync(incoming, { recursive: true });
    daemon = await startDaemon(env.etc, env.spool);
  });
  afterAll(async () => {
    await daemon.stop();
    env.cleanup();
  });

  it('rejects malformed YAML with the line of the syntax error, bytes intact', async () => {
    dropBytes('malformed.yaml', 'command: echo hi\nparams: [unclosed, \n  x: : y\n');
    const report = await reportOf('malformed.yaml');
    expect(report.code).toBe('YAML_SYNTAX');
    expect(report.message).toContain('malformed.yaml');
    expect(report.problems[0]?.line).toBe(3);
    expect(report.problems[0]?.message).toContain('YAML syntax');
    expect(readFileSync(path.join(rejected, 'malformed.yaml'))).toEqual(originals.get('malformed.yaml'));
  });

  it('rejects an unknown job type naming the field `type` and its line', async () => {
    dropBytes('unknown-type.yaml', '# a comment\ntype: nosuchtype\n');
    const report = await reportOf('unknown-type.yaml');
    expect(report.code).toBe('UNKNOWN_TYPE');
    expect(report.message).toContain('unknown-type.yaml');
    expect(report.message).toContain('nosuchtype');
    expect(report.problems).toEqual([expect.objectContaining({ field: 'type', line: 2 })]);
    expect(readFileSync(path.join(rejected, 'unknown-type.yaml'))).toEqual(
      originals.get('unknown-type.yaml'),
    );
  });

  it('rejects a parameter of the wrong type naming params.<name> and its line', async () => {
    dropBytes('wrong-type.yaml', 'type: count\nparams:\n  n: many\n');
    const report = await reportOf('wrong-type.yaml');
    expect(report.code).toBe('JOB_INVALID');
    expect(report.message).toContain('wrong-type.yaml');
    expect(report.problems).toEqual([expect.objectContaining({ field: 'params.n', line: 3 })]);
    expect(report.problems[0]?.message).toMatch(/integer/i);
  });

  it('rejects a missing parameter naming params.<name>', async () => {
    dropBytes('missing-param.yaml', 'type: count\n');
    const report = await reportOf('missing-param.yaml');
    expect(report.code).toBe('JOB_INVALID');
    expect(report.problems).toEqual([expect.objectContaining({ field: 'params.n', line: 1 })]);
    expect(report.problems[0]?.message).toMatch(/missing parameter "n"/i);
  });

  it('rejects unknown fields naming the field and its line', async () => {
    dropBytes('unknown-field.yaml', 'command: echo hi\ncolour: blue\n');
    const report = await reportOf('unknown-field.yaml');
    expect(report.code).toBe('JOB_INVALID');
    expect(report.problems).toEqual([expect.objectContaining({ field: 'colour', line: 2 })]);
    expect(report.problems[0]?.message).toContain('colour');
  });

  it('rejects a malformed `after:` id and an `after:` id no queue holds', async () => {
    dropBytes('bad-after.yaml', 'command: echo hi\nafter: not-a-job-id\n');
    dropBytes('unknown-after.yaml', 'command: echo hi\nafter:\n  - 20200101T000000.000Z-abcdef\n');
    const bad = await reportOf('bad-after.yaml');
    expect(bad.code).toBe('JOB_INVALID');
    expect(bad.problems).toEqual([expect.objectContaining({ field: 'after', line: 2 })]);
    const unknown = await reportOf('unknown-after.yaml');
    expect(unknown.problems).toEqual([expect.objectContaining({ field: 'after.0', line: 3 })]);
    expect(unknown.problems[0]?.message).toContain('20200101T000000.000Z-abcdef');
  });

  it('rejects a task that would make more jobs than storage.max_task_jobs', async () => {
    dropBytes('huge-task.yaml', 'type: count\nparams:\n  n: {range: "1..1000"}\n');
    const report = await reportOf('huge-task.yaml');
    expect(report.code).toBe('JOB_INVALID');
    expect(report.problems).toEqual([expect.objectContaining({ field: 'params', line: 3 })]);
    expect(report.message).toContain('1000 jobs');
    expect(readdirSync(path.join(env.spool, 'default', 'tasks'))).toEqual([]);
  });

  it('rejects a file over storage.max_job_file_size without reading it as a job', async () => {
    const big = `command: echo big\nnotes: "${'x'.repeat(2000)}"\n`;
    dropBytes('oversize.yaml', big);
    const report = await reportOf('oversize.yaml');
    expect(report.code).toBe('DROP_TOO_LARGE');
    expect(report.message).toContain('oversize.yaml');
    expect(report.message).toContain('1024');
    expect(readFileSync(path.join(rejected, 'oversize.yaml'))).toEqual(originals.get('oversize.yaml'));
  });

  it('rejects binary content (NUL bytes, invalid UTF-8)', async () => {
    dropBytes('nul.yaml', Buffer.from([0x63, 0x6f, 0x6d, 0x00, 0x01, 0x02, 0xff, 0x0a]));
    dropBytes('latin1.yaml', Buffer.from('command: echo caf\xe9\n', 'latin1'));
    for (const name of ['nul.yaml', 'latin1.yaml']) {
      const report = await reportOf(name);
      expect(report.code).toBe('DROP_BINARY');
      expect(report.message).toContain(name);
      expect(readFileSync(path.join(rejected, name))).toEqual(originals.get(name));
    }
  });

  it('rejects a symlink without following it: still a link to its untouched target', async () => {
    const target = path.join(env.root, 'target.yaml');
    const content = `command: touch ${canary}\n`;
    writeFileSync(target, content);
    const before = statSync(target);
    symlinkSync(target, path.join(incoming, 'link.yaml'));
    const report = await reportOf('link.yaml');
    expect(report.code).toBe('DROP_NOT_REGULAR');
    expect(report.message).toMatch(/link\.yaml.*symbolic link/);
    const kept = path.join(rejected, 'link.yaml');
    expect(lstatSync(kept).isSymbolicLink()).toBe(true);
    expect(readlinkSync(kept)).toBe(target);
    expect(readFileSync(target, 'utf8')).toBe(content);
    expect(statSync(target).mtimeMs).toBe(before.mtimeMs);
    expect(existsSync(target)).toBe(true);
    expect(existsSync(canary)).toBe(false);
  });

  it('rejects a FIFO without ever opening it', async () => {
    // A writer blocks in open() until some process opens the FIFO for reading; it then touches a
    // marker. If the daemon opened the FIFO at any time, the marker appears.
    const fifo = path.join(env.root, 'pipe.yaml');
    const marker = path.join(env.root, 'fifo-opened');
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', 'exec 3>"$1"; touch "$2"', 'sh', fifo, marker], { stdio: 'ignore' });
    try {
      // Only once the writer waits inside open() does the FIFO go into incoming/.
      // (The kernel function it sleeps in: wait_for_partner on Linux 6, fifo_open/pipe_wait before.)
      await waitFor(() => /partner|fifo|pipe/.test(wchanOf(writer.pid ?? -1)), 5000, 'the writer to block');
      renameSync(fifo, path.join(incoming, 'pipe.yaml'));
      const report = await reportOf('pipe.yaml');
      expect(report.code).toBe('DROP_NOT_REGULAR');
      expect(report.message).toMatch(/pipe\.yaml.*named pipe/);
      const kept = path.join(rejected, 'pipe.yaml');
      expect(lstatSync(kept).isFIFO()).toBe(true);
      await sleep(300);
      expect(existsSync(marker)).toBe(false);
      // The check can fail: opening the FIFO for reading releases the writer.
      closeSync(openSync(kept, constants.O_RDONLY | constants.O_NONBLOCK));
      await waitFor(() => existsSync(marker), 5000, 'the FIFO writer to be released');
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('rejects a folder with its contents untouched', async () => {
    const folder = path.join(env.root, 'folder.yaml');
    mkdirSync(folder);
    writeFileSync(path.join(folder, 'inside.yaml'), 'command: echo inside\n');
    renameSync(folder, path.join(incoming, 'folder.yaml'));
    const report = await reportOf('folder.yaml');
    expect(report.code).toBe('DROP_NOT_REGULAR');
    expect(report.message).toMatch(/folder\.yaml.*folder/);
    const kept = path.join(rejected, 'folder.yaml');
    expect(readdirSync(kept)).toEqual(['inside.yaml']);
    expect(readFileSync(path.join(kept, 'inside.yaml'), 'utf8')).toBe('command: echo inside\n');
  });

  it('rejects a file that is not named as a job file', async () => {
    dropBytes('notes.txt', 'command: echo hi\n');
    const report = await reportOf('notes.txt');
    expect(report.code).toBe('DROP_BAD_NAME');
    expect(readFileSync(path.join(rejected, 'notes.txt'))).toEqual(originals.get('notes.txt'));
  });

  it('keeps a second rejected drop of the same name apart from the first', async () => {
    dropBytes('twice.yaml', 'type: [\n');
    await reportOf('twice.yaml');
    const second = 'colour: red\n';
    const tmp = path.join(incoming, '.twice.tmp');
    writeFileSync(tmp, second);
    renameSync(tmp, path.join(incoming, 'twice.yaml'));
    await waitFor(() => existsSync(path.join(rejected, 'twice.yaml.1')), 15_000, 'the second rejection');
    expect(readFileSync(path.join(rejected, 'twice.yaml'))).toEqual(originals.get('twice.yaml'));
    expect(readFileSync(path.join(rejected, 'twice.yaml.1'), 'utf8')).toBe(second);
  });

  it('ignores dotfiles and temporary names, and keeps running valid jobs afterwards', async () => {
    const ignored = ['.hidden.yaml', 'partial.yaml.tmp', 'partial.part', 'editor.yaml~', '.swap.yaml.swp'];
    for (const name of ignored) writeFileSync(path.join(incoming, name), 'command: echo should-not-run\n');
    drop(env.spool, 'default', 'command: echo still-alive\n', 'after-rejects.yaml');
    const [id] = await waitFor(() => {
      const done = jobsIn(env.spool, 'default', 'done');
      return done.length === 1 ? done : undefined;
    });
    expect(
      readFileSync(path.join(jobDir(env.spool, 'default', 'done', id ?? ''), 'stdout.log'), 'utf8'),
    ).toBe('still-alive\n');
    // Past a full rescan (poll_timeout 1 s) the ignored names are still there, untouched.
    await sleep(1500);
    expect(readdirSync(incoming).sort()).toEqual([...ignored].sort());
    for (const name of ignored) expect(existsSync(path.join(rejected, name))).toBe(false);
    expect(daemon.child.exitCode).toBeNull();
    // Every rejected drop is there with its error file, and nothing was accepted but the valid job.
    expect(jobsIn(env.spool, 'default', 'queued')).toEqual([]);
    expect(jobsIn(env.spool, 'default', 'failed')).toEqual([]);
    expect(entriesOf(env.spool, 'default', '.staging')).toEqual([]);
    expect(existsSync(canary)).toBe(false);
  });
});
