import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { collectFiles, type RemoteAttempt } from '../../daemon/executors/batch-system-staging.ts';
import { slurmConfig } from '../../plugins/slurm/config.ts';
import { SlurmFiles } from '../../plugins/slurm/files.ts';

/**
 * `staging: copy` brings an attempt's logs back by appending them to the job's own. A daemon killed
 * after that append, before `batch.exit` took its place, collects the attempt again at its next
 * start: the logs must still hold the attempt's output once. The files go through the plugin's
 * real copy commands (`tar` on this machine, as on a login node without `ssh:`).
 */
describe("an attempt's files collected again after a crash", () => {
  let root = '';
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  function setUp(withExit: boolean): {
    files: SlurmFiles;
    attempt: RemoteAttempt;
    job: string;
    remote: string;
  } {
    root = mkdtempSync(path.join(tmpdir(), 'batchd-collect-'));
    const work = path.join(root, 'cluster');
    const remote = path.join(work, 'job-1.1');
    const saved = path.join(root, 'saved');
    mkdirSync(remote, { recursive: true });
    writeFileSync(path.join(remote, 'stdout.log'), 'second attempt out\n');
    writeFileSync(path.join(remote, 'stderr.log'), 'second attempt err\n');
    if (withExit) writeFileSync(path.join(remote, 'batch.exit'), '0\n');
    cpSync(remote, saved, { recursive: true });
    const job = path.join(root, 'job');
    mkdirSync(job);
    writeFileSync(path.join(job, 'stdout.log'), 'first attempt out\n');
    const config = slurmConfig.parse({ staging: 'copy', work_directory: work });
    const files = new SlurmFiles(config, 'cluster', AbortSignal.timeout(60_000));
    const attempt = {
      dir: remote,
      staging: { params: {}, inputs: [], outputs: [] },
      script: { body: 'true', stdout: '', stderr: '' },
    } as unknown as RemoteAttempt;
    return { files, attempt, job, remote };
  }

  /** The attempt's folder on the cluster as it was (a crash came before its removal). */
  const restore = (remote: string): void => cpSync(path.join(root, 'saved'), remote, { recursive: true });
  const warn = (message: string): void => {
    throw new Error(message);
  };

  it('appends the logs once when a crash came between the append and batch.exit', async () => {
    const { files, attempt, job, remote } = setUp(true);
    expect(await collectFiles(files, attempt, job, 'cluster', warn)).toEqual([]);
    const once = readFileSync(path.join(job, 'stdout.log'), 'utf8');
    expect(once).toBe('first attempt out\nsecond attempt out\n');
    // The crash: batch.exit not yet in place, the mark of the append still there.
    rmSync(path.join(job, 'batch.exit'));
    writeFileSync(
      path.join(job, '.batch-append.json'),
      JSON.stringify({ dir: remote, sizes: { 'stdout.log': 18, 'stderr.log': 0 } }),
    );
    restore(remote);
    expect(await collectFiles(files, attempt, job, 'cluster', warn)).toEqual([]);
    expect(readFileSync(path.join(job, 'stdout.log'), 'utf8')).toBe(once);
    expect(readFileSync(path.join(job, 'stderr.log'), 'utf8')).toBe('second attempt err\n');
    expect(readFileSync(path.join(job, 'batch.exit'), 'utf8')).toBe('0\n');
    expect(existsSync(path.join(job, '.batch-append.json'))).toBe(false);
    expect(existsSync(remote)).toBe(false);
  });

  it('appends the logs of an attempt without batch.exit (a cancelled one) once, however often it is collected', async () => {
    const { files, attempt, job, remote } = setUp(false);
    await collectFiles(files, attempt, job, 'cluster', warn);
    restore(remote);
    await collectFiles(files, attempt, job, 'cluster', warn);
    expect(readFileSync(path.join(job, 'stdout.log'), 'utf8')).toBe(
      'first attempt out\nsecond attempt out\n',
    );
    expect(readFileSync(path.join(job, 'stderr.log'), 'utf8')).toBe('second attempt err\n');
  });

  it('takes from a mark only shorter sizes of the two logs: it truncates no other file and grows no log', async () => {
    const { files, attempt, job, remote } = setUp(true);
    writeFileSync(path.join(job, 'job.yaml'), 'kept\n');
    writeFileSync(
      path.join(job, '.batch-append.json'),
      JSON.stringify({ dir: remote, sizes: { 'job.yaml': 0, 'stdout.log': 999_999, 'stderr.log': -1 } }),
    );
    await collectFiles(files, attempt, job, 'cluster', warn);
    expect(readFileSync(path.join(job, 'job.yaml'), 'utf8')).toBe('kept\n');
    expect(readFileSync(path.join(job, 'stdout.log'), 'utf8')).toBe(
      'first attempt out\nsecond attempt out\n',
    );
    expect(readFileSync(path.join(job, 'stderr.log'), 'utf8')).toBe('second attempt err\n');
  });

  it("ignores a mark left by another attempt's collection", async () => {
    const { files, attempt, job } = setUp(true);
    writeFileSync(
      path.join(job, '.batch-append.json'),
      JSON.stringify({ dir: '/elsewhere/job-1.0', sizes: { 'stdout.log': 0, 'stderr.log': 0 } }),
    );
    await collectFiles(files, attempt, job, 'cluster', warn);
    expect(readFileSync(path.join(job, 'stdout.log'), 'utf8')).toBe(
      'first attempt out\nsecond attempt out\n',
    );
  });
});
