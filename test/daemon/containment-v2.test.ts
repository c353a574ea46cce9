import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LocalExecutor } from '../../daemon/executors/local.ts';
import { pidAlive } from '../helpers/dispatch.ts';
import { waitFor } from '../helpers/env.ts';
import { ContainmentJobs, ESCAPES, ESCAPES_THEN_EXIT, pidsIn, size } from './containment-jobs.ts';

/**
 * cgroup v2 for real on a machine whose controllers are bound to v1: a private cgroup2 mount (root
 * can mount one on any 5.14+ kernel) has no controllers, but `cgroup.kill` and `cgroup.freeze` are
 * core files of every group, so kill and freeze are the real v2 code paths. `memory.max` and
 * `pids.max` need their controllers and cannot be tested here (they are bound to v1).
 */
const root = mkdtempSync(path.join(tmpdir(), 'batchd-cgroup2-'));
const mountPoint = path.join(root, 'cgroup2');
const jobsRoot = path.join(root, 'jobs');

/** Mount a cgroup2 hierarchy at `mountPoint`; why not, if it cannot be. */
function mountCgroup2(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: mounting a cgroup2 hierarchy needs CAP_SYS_ADMIN';
  try {
    execFileSync('mkdir', ['-p', mountPoint, jobsRoot]);
    execFileSync('mount', ['-t', 'cgroup2', 'none', mountPoint], { stdio: 'pipe' });
  } catch (error) {
    return `mount -t cgroup2 none ${mountPoint} failed: ${(error as { stderr?: Buffer }).stderr?.toString().trim() ?? String(error)}`;
  }
  if (!existsSync(path.join(mountPoint, 'cgroup.procs'))) return 'the mount is not a cgroup2 hierarchy';
  return undefined;
}

const unavailable = mountCgroup2();
if (unavailable !== undefined) console.warn(`cgroup v2 tests skipped: ${unavailable}`);

const silent = pino({ level: 'silent' });
const jobs = new ContainmentJobs(jobsRoot);
const tag = `v2test${process.pid}`;
const parent = path.join(mountPoint, `batchd-${tag}-${process.pid}`);
let executor: LocalExecutor;

/** The job cgroups under this daemon's parent folder. */
function jobGroups(): string[] {
  return existsSync(parent) ? readdirSync(parent).filter((name) => name.startsWith('job-')) : [];
}

describe.skipIf(unavailable !== undefined)('local jobs in cgroup v2 (a private cgroup2 mount)', () => {
  beforeAll(() => {
    executor = new LocalExecutor(silent, { containment: 'cgroup', tag, cgroupV2Mount: mountPoint });
  });

  afterAll(async () => {
    await executor?.close();
    // The daemon removed its folders at close; a failed test may have left some.
    try {
      execFileSync('umount', [mountPoint], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', mountPoint], { stdio: 'pipe' });
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('says it contains jobs in cgroup v2 with kill and freeze and no controller', () => {
    expect(executor.containmentKind).toBe('cgroup-v2');
    expect(executor.containment).toBe('cgroup v2 (kill, freeze)');
    expect(existsSync(parent)).toBe(true);
  });

  it('cancel kills a setsid child and a double-forked one (cgroup.kill), and removes the job’s group', async () => {
    const { request, file } = jobs.job(ESCAPES);
    const abort = new AbortController();
    const outcome = executor.run(request, abort.signal);
    const pids = [...(await pidsIn(file('escaped'), 2)), ...(await pidsIn(file('stayed'), 1))];
    // Every one of them is in the job's v2 group, whatever session it started.
    const group = path.join(parent, `job-${request.jobId}-1`);
    const members = readFileSync(path.join(group, 'cgroup.procs'), 'utf8').split('\n').map(Number);
    for (const pid of pids) expect(members, `pid ${pid} in the job's group`).toContain(pid);
    abort.abort('cancel');
    expect((await outcome).outcome).toBe('cancelled');
    for (const pid of pids) expect(pidAlive(pid), `pid ${pid} after cancel`).toBe(false);
    expect(existsSync(group)).toBe(false);
  });

  it('a timeout and the end of a job kill what escaped its process group', async () => {
    const timed = jobs.job(ESCAPES, { timeoutMs: 1_500 });
    const running = executor.run(timed.request, new AbortController().signal);
    const pids = [...(await pidsIn(timed.file('escaped'), 2)), ...(await pidsIn(timed.file('stayed'), 1))];
    expect((await running).outcome).toBe('timeout');
    for (const pid of pids) expect(pidAlive(pid), `pid ${pid} after the timeout`).toBe(false);

    const ends = jobs.job(ESCAPES_THEN_EXIT);
    expect((await executor.run(ends.request, new AbortController().signal)).outcome).toBe('success');
    const left = [...(await pidsIn(ends.file('escaped'), 2)), ...(await pidsIn(ends.file('stayed'), 1))];
    for (const pid of left) expect(pidAlive(pid), `pid ${pid} after the job's end`).toBe(false);
    expect(jobGroups()).toEqual([]);
  });

  it('pause freezes the whole job (cgroup.freeze; no output, its timeout held) and resume thaws it', async () => {
    const { request, file } = jobs.job('i=0; while [ $i -lt 12 ]; do i=$((i+1)); echo $i; sleep 0.1; done', {
      timeoutMs: 5_000,
    });
    const running = executor.run(request, new AbortController().signal);
    const out = file('stdout.log');
    await waitFor(() => size(out) >= 4 || undefined, 10_000);
    expect(await executor.pause(request.jobId)).toBe(true);
    const events = path.join(parent, `job-${request.jobId}-1`, 'cgroup.events');
    expect(readFileSync(events, 'utf8')).toMatch(/^frozen 1$/m);
    const atPause = size(out);
    await new Promise((r) => setTimeout(r, 5_500));
    expect(size(out), 'output while frozen').toBe(atPause);
    expect(await executor.resume(request.jobId)).toBe(true);
    expect(readFileSync(events, 'utf8')).toMatch(/^frozen 0$/m);
    expect((await running).outcome).toBe('success');
    expect(readFileSync(out, 'utf8').trim().split('\n').at(-1)).toBe('12');
  });

  it('a job cancelled while frozen is thawed and killed with everything it started', async () => {
    const { request, file } = jobs.job(ESCAPES);
    const abort = new AbortController();
    const running = executor.run(request, abort.signal);
    const pids = [...(await pidsIn(file('escaped'), 2)), ...(await pidsIn(file('stayed'), 1))];
    expect(await executor.pause(request.jobId)).toBe(true);
    abort.abort('cancel');
    expect((await running).outcome).toBe('cancelled');
    for (const pid of pids) expect(pidAlive(pid), `pid ${pid}`).toBe(false);
  });

  it('without controllers, memory and processes limits fall back to setrlimit', async () => {
    const { request, file } = jobs.job(
      "awk '/^Max processes/ { print $3 } /^Max address space/ { print $4 }' /proc/self/limits",
      {
        limits: { processes: 4000, memory: 512 * 1024 * 1024 },
      },
    );
    const outcome = await executor.run(request, new AbortController().signal);
    expect(outcome.error).toBeUndefined();
    expect(outcome.outcome).toBe('success');
    expect(readFileSync(file('stdout.log'), 'utf8')).toBe(`4000\n${512 * 1024 * 1024}\n`);
  });

  it('groups a killed daemon left are emptied (cgroup.kill) and removed when the next one starts', async () => {
    const staleTag = `v2stale${process.pid}`;
    // A pid that is not running: a short-lived child's, after it ended.
    const dead = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
    const stale = path.join(mountPoint, `batchd-${staleTag}-${dead}`);
    mkdirSync(path.join(stale, 'job-x-1'), { recursive: true });
    const orphan = spawn('sleep', ['304'], { detached: true, stdio: 'ignore' });
    orphan.unref();
    const pid = orphan.pid as number;
    writeFileSync(path.join(stale, 'job-x-1', 'cgroup.procs'), String(pid));
    const next = new LocalExecutor(silent, {
      containment: 'cgroup',
      tag: staleTag,
      cgroupV2Mount: mountPoint,
    });
    try {
      // The sweep runs before the first job: run one to wait for it.
      const { request } = jobs.job('true');
      expect((await next.run(request, new AbortController().signal)).outcome).toBe('success');
      await waitFor(() => !pidAlive(pid) || undefined, 5_000, 'the orphan to be killed');
      expect(existsSync(stale)).toBe(false);
      // This daemon's own parent (another live daemon's) is left alone.
      expect(existsSync(parent)).toBe(true);
    } finally {
      await next.close();
    }
  });

  it('at close the daemon removes its parent group', async () => {
    await executor.close();
    expect(existsSync(parent)).toBe(false);
  });
});
