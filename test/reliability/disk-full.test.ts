import { execFileSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { DaemonProcess } from '../helpers/daemon-process.ts';
import { jobDir, jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { audit, clip, snapshot } from './audit.ts';
import {
  countStates,
  killMarked,
  ledgerJobType,
  listAll,
  readLedger,
  sleep,
  startMarked,
  Submissions,
} from './harness.ts';
import { type HttpAnswer, send } from './http-corpus.ts';

const SIZE = '4m';

/** Mount a size-limited tmpfs (or, where tmpfs is refused, a loop-mounted ext4 image) on `dir`. */
function mountSmall(dir: string, image: string): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch {
    execFileSync('truncate', ['-s', '8M', image], { stdio: 'pipe' });
    execFileSync('mkfs.ext4', ['-q', '-F', image], { stdio: 'pipe' });
    execFileSync('mount', ['-o', 'loop', image, dir], { stdio: 'pipe' });
  }
}

/** Why this machine cannot make a small file system, or undefined if it can. */
function mountProblem(): string | undefined {
  const dir = mkdtempSync(path.join(tmpdir(), 'batchd-mount-probe-'));
  try {
    mountSmall(dir, `${dir}.img`);
    execFileSync('umount', [dir], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return `cannot mount a small file system here (needs root and mount(2)): ${(error as Error).message.split('\n')[0]}`;
  } finally {
    rmSync(`${dir}.img`, { force: true });
    rmdirSync(dir);
  }
}

// Not a skip: a machine where this cannot run fails these tests, saying why (CI runs as root).
const problem = mountProblem();

/** Fill the file system holding `file` until it refuses another byte. */
function fill(file: string): number {
  const fd = openSync(file, 'w');
  let written = 0;
  try {
    for (const size of [65_536, 4096, 512, 1]) {
      const chunk = Buffer.alloc(size, 0x78);
      for (;;) {
        try {
          written += writeSync(fd, chunk);
        } catch {
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

describe('a full spool file system', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let mounted: string | undefined;
  const submissions = new Submissions();
  const held = new Map<string, Buffer>();
  let filler: string;
  let ledger: string;
  let long: string;
  let api: string;
  const submit = (n: string): Promise<HttpAnswer> =>
    send(api, {
      method: 'POST',
      path: '/queue/default',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'ledger', name: n, params: { pause: 0 } }),
    });

  beforeAll(async () => {
    if (problem !== undefined) throw new Error(problem);
    env = makeEnv({
      config: {
        dispatcher: { workers: 2, poll_timeout: 0.5 },
        manager: { enabled: true, port: 0, host: '127.0.0.1' },
      },
    });
    ledger = path.join(env.root, 'ledger');
    env.writeConfig('jobtypes/ledger.yaml', ledgerJobType(ledger, 'retry'));
    mountSmall(env.spool, path.join(env.root, 'spool.img'));
    mounted = env.spool;
    filler = path.join(env.spool, '.filler');
    daemon = await startMarked(env);
    api = await waitFor(
      () =>
        daemon
          .records()
          .find((r) => typeof r.url === 'string' && String(r.msg).includes('HTTP API listening'))?.url as
          string | undefined,
      20_000,
      'the API to listen',
    );
  });

  afterAll(async () => {
    daemon?.kill('SIGKILL');
    await daemon?.exited;
    if (env !== undefined) killMarked(env.root);
    if (mounted !== undefined) execFileSync('umount', [mounted]);
    env?.cleanup();
  });

  const doneCount = (): number => jobsIn(env.spool, 'default', 'done').length;

  it('runs jobs on the small file system', async () => {
    const key = submissions.drop(env.spool, 'default', 0);
    await waitFor(() => doneCount() === 1, 15_000, 'the first job to finish');
    const [id] = jobsIn(env.spool, 'default', 'done');
    const spec = parse(
      readFileSync(jobDir(env.spool, 'default', 'done', id as string) + '/job.yaml', 'utf8'),
    ) as { name?: string };
    expect(spec.name).toBe(key);
  });

  it('keeps drops that arrive while the disk is full intact in incoming/, refuses HTTP submissions with 507 DISK_FULL, writes no half job, and logs why', async () => {
    // A job that is running when the disk fills up cannot record its end until space returns.
    long = submissions.drop(env.spool, 'default', 1.5);
    await waitFor(
      () => jobsIn(env.spool, 'default', 'running').length === 1,
      15_000,
      'the long job to start',
    );
    // Drops are written before the disk fills (a hidden folder is no queue) and moved in after.
    const hold = path.join(env.spool, '.hold');
    mkdirSync(hold);
    for (let i = 0; i < 20; i++) {
      const name = `full-${i}.yaml`;
      const bytes = Buffer.from(stringify({ type: 'ledger', name: `f${i}`, params: { pause: 0 } }));
      writeFileSync(path.join(hold, name), bytes);
      held.set(name, bytes);
      submissions.expected.set(`f${i}`, { jobs: 1, task: false });
    }
    const queuedBefore = jobsIn(env.spool, 'default', 'queued').length;
    expect(fill(filler)).toBeGreaterThan(1_000_000);
    for (const name of held.keys())
      renameSync(path.join(hold, name), path.join(env.spool, 'default', 'incoming', name));

    await waitFor(
      () => daemon.records().some((r) => (r.err as { code?: string } | undefined)?.code === 'DISK_FULL'),
      15_000,
      'a DISK_FULL error in the log',
    );
    // Past the long job's end and a few rescans, nothing has changed.
    await waitFor(
      () =>
        readLedger(ledger)
          .get(idOf(long))
          ?.some((l) => l.event === 'end'),
      15_000,
      'the long job to end',
    );
    await sleep(1500);
    expect(daemon.child.exitCode).toBeNull();
    for (const [name, bytes] of held)
      expect(readFileSync(path.join(env.spool, 'default', 'incoming', name))).toEqual(bytes);
    expect(jobsIn(env.spool, 'default', 'queued').length).toBe(queuedBefore);
    // The daemon keeps trying: an acceptance may be under way (and undone) at any moment, but none stays.
    const staging = path.join(env.spool, 'default', '.staging');
    const before = listAll(staging);
    await sleep(700);
    expect(listAll(staging).filter((entry) => before.includes(entry))).toEqual([]);
    expect(listAll(path.join(env.spool, 'default', 'rejected'))).toEqual([]);
    // Whatever is in a state folder is whole: both files there and readable.
    for (const job of snapshot(env.spool).jobs) expect(job.unreadable).toBeUndefined();
    // A submission over HTTP is refused with the same clear error, and leaves nothing behind.
    const refused = await submit('http-while-full');
    expect(refused.status).toBe(507);
    expect(refused.json?.error?.code).toBe('DISK_FULL');
    expect(refused.json?.error?.message).toContain('No space left');
    expect(jobsIn(env.spool, 'default', 'queued').length).toBe(queuedBefore);
    const full = daemon
      .records()
      .filter((r) => (r.err as { code?: string } | undefined)?.code === 'DISK_FULL');
    const message = (full[0]?.err as { message?: string } | undefined)?.message ?? '';
    expect(message).toContain('No space left');
    expect(message).toContain(env.spool);
  });

  it('accepts and runs the waiting drops once space returns, and records the end of the job that finished meanwhile', async () => {
    rmSync(filler);
    const accepted = await submit('http-after');
    expect(accepted.status, accepted.text).toBe(201);
    submissions.expected.set('http-after', { jobs: 1, task: false });
    await waitFor(
      () => {
        const c = countStates(env.spool, ['default']);
        return c.incoming === 0 && c.queued === 0 && c.running === 0 && c.done === submissions.jobs;
      },
      30_000,
      'every job to finish after space returned',
    );
    expect(daemon.child.exitCode).toBeNull();
    const result = audit(snapshot(env.spool), {
      submitted: submissions.expected,
      ledger: readLedger(ledger),
      onFail: 'retry',
    });
    expect(clip(result.problems)).toEqual([]);
    expect(result.stats.done).toBe(23);
    // The job that ended while the disk was full kept its outcome until it could be written: it
    // ran once, and its one attempt is recorded as the success it was.
    const job = snapshot(env.spool).jobs.find((j) => j.key === long);
    expect(job?.state?.results.map((r) => r.outcome)).toEqual(['success']);
    expect(
      readLedger(ledger)
        .get(job?.id ?? '')
        ?.filter((l) => l.event === 'start'),
    ).toHaveLength(1);
  });

  /** A ledger job's id, from the ledger (its key is in the job file's name). */
  function idOf(key: string): string {
    for (const job of snapshot(env.spool).jobs) if (job.key === key) return job.id;
    return '';
  }
});
