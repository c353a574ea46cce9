import { execFileSync, spawn } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ContainmentMode } from '../../daemon/executors/cgroup-detect.ts';
import { LocalExecutor } from '../../daemon/executors/local.ts';
import type { RunOutcome } from '../../daemon/jobs/executor.ts';
import { pidAlive } from '../helpers/dispatch.ts';
import { waitFor } from '../helpers/env.ts';
import { ContainmentJobs, ESCAPES, ESCAPES_THEN_EXIT, pidsIn, size } from './containment-jobs.ts';

/** This machine kind: cgroup v1 with a freezer root may write (docs TESTING.md). */
const FREEZER = '/sys/fs/cgroup/freezer';
const CGROUP_V1 = (() => {
  try {
    accessSync(FREEZER, constants.W_OK);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();

const silent = pino({ level: 'silent' });
let root: string;
let jobs: ContainmentJobs;
const job: ContainmentJobs['job'] = (script, extra) => jobs.job(script, extra);

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'batchd-containment-'));
  jobs = new ContainmentJobs(root);
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe.each([
  ['cgroup', CGROUP_V1],
  ['group', true],
] as const)('local jobs with containment: %s', (mode, available) => {
  let executor: LocalExecutor;

  beforeAll(() => {
    if (!available) return;
    executor = new LocalExecutor(silent, { containment: mode as ContainmentMode, tag: `test${process.pid}` });
  });

  afterAll(async () => {
    await executor?.close();
  });

  it.runIf(available)('says how it contains jobs', () => {
    expect(executor.containmentKind).toBe(mode === 'cgroup' ? 'cgroup-v1' : 'group');
    expect(executor.containment).toMatch(mode === 'cgroup' ? /^cgroup v1 \(freezer/ : /^process group/);
  });

  it.runIf(available)(
    mode === 'cgroup'
      ? 'cancel kills every process the job started, a setsid child and a double-forked one too'
      : 'cancel kills the job and what stayed in its process group',
    async () => {
      const { request, file } = job(ESCAPES);
      const abort = new AbortController();
      const outcome = executor.run(request, abort.signal);
      const escaped = await pidsIn(file('escaped'), 2);
      const [stayed] = await pidsIn(file('stayed'), 1);
      abort.abort('cancel');
      expect((await outcome).outcome).toBe('cancelled');
      // The one that stayed in the group goes either way; the escaped ones only with a cgroup.
      await waitFor(() => !pidAlive(stayed as number) || undefined, 5_000);
      if (mode === 'cgroup') {
        for (const pid of escaped) expect(pidAlive(pid), `escaped pid ${pid}`).toBe(false);
      } else {
        for (const pid of escaped) process.kill(pid, 'SIGKILL');
      }
    },
  );

  // Only a cgroup can reach processes that left the job's group (the fallback is the case above).
  const withCgroup = mode === 'cgroup' ? it.runIf(available) : undefined;
  withCgroup?.(
    'a timeout kills a setsid child and a double-forked one, and so does the end of the job',
    async () => {
      const timed = job(ESCAPES, { timeoutMs: 1_500 });
      const running = executor.run(timed.request, new AbortController().signal);
      const pids = [...(await pidsIn(timed.file('escaped'), 2)), ...(await pidsIn(timed.file('stayed'), 1))];
      const outcome = await running;
      expect(outcome.outcome).toBe('timeout');
      for (const pid of pids) expect(pidAlive(pid), `pid ${pid} after the timeout`).toBe(false);

      // A job that ends by itself (exit 0) leaves nothing behind either.
      const ends = job(ESCAPES_THEN_EXIT);
      expect((await executor.run(ends.request, new AbortController().signal)).outcome).toBe('success');
      const left = [...(await pidsIn(ends.file('escaped'), 2)), ...(await pidsIn(ends.file('stayed'), 1))];
      for (const pid of left) expect(pidAlive(pid), `pid ${pid} after the job's end`).toBe(false);
    },
  );

  it.runIf(available)(
    'pause stops a job (no output while paused) and its timeout; after resume it finishes',
    async () => {
      // 12 lines, one every 0.1 s: about 1.2 s of running, far less than the 5 s timeout, which the
      // pause (longer than the timeout) must not use up.
      const { request, file } = job('i=0; while [ $i -lt 12 ]; do i=$((i+1)); echo $i; sleep 0.1; done', {
        timeoutMs: 5_000,
      });
      const running = executor.run(request, new AbortController().signal);
      const out = file('stdout.log');
      await waitFor(() => size(out) >= 4 || undefined, 10_000);
      expect(await executor.pause(request.jobId)).toBe(true);
      expect(await executor.pause(request.jobId)).toBe(false);
      await new Promise((r) => setTimeout(r, 400));
      const atPause = size(out);
      await new Promise((r) => setTimeout(r, 5_500));
      expect(size(out), 'output while paused').toBe(atPause);
      expect(await executor.resume(request.jobId)).toBe(true);
      const outcome: RunOutcome = await running;
      expect(outcome.outcome).toBe('success');
      expect(readFileSync(out, 'utf8').trim().split('\n').at(-1)).toBe('12');
      expect(await executor.resume(request.jobId)).toBe(false);
    },
  );

  it.runIf(available)('a job cancelled while paused is thawed and stopped', async () => {
    const { request, file } = job('while :; do echo x; sleep 0.1; done');
    const abort = new AbortController();
    const running = executor.run(request, abort.signal);
    await waitFor(() => size(file('stdout.log')) > 0 || undefined, 10_000);
    expect(await executor.pause(request.jobId)).toBe(true);
    abort.abort('cancel');
    expect((await running).outcome).toBe('cancelled');
  });
});

describe.runIf(CGROUP_V1)('a paused job when its daemon goes away', () => {
  it('is thawed and killed with everything it started, a setsid child too', async () => {
    const executor = new LocalExecutor(silent, { containment: 'cgroup', tag: `gone${process.pid}` });
    const { request, file } = job(ESCAPES);
    const running = executor.run(request, new AbortController().signal);
    const pids = [...(await pidsIn(file('escaped'), 2)), ...(await pidsIn(file('stayed'), 1))];
    expect(await executor.pause(request.jobId)).toBe(true);
    // Its launcher's input closes (as when the daemon is killed): it kills its jobs and exits.
    await executor.close();
    await running;
    await waitFor(
      () => pids.every((pid) => !pidAlive(pid)) || undefined,
      5_000,
      'the paused job to be killed',
    );
  });
});

describe.runIf(CGROUP_V1)('resource limits in a job cgroup (v1)', () => {
  let executor: LocalExecutor;

  beforeAll(() => {
    executor = new LocalExecutor(silent, { containment: 'cgroup', tag: `limits${process.pid}` });
  });

  afterAll(async () => {
    await executor?.close();
  });

  it('a memory limit stops a job that exceeds it, and the attempt says why', async () => {
    const { request } = job(`perl -e '$x = "a" x (200 * 1024 * 1024); print length($x), "\\n"'`, {
      limits: { memory: 64 * 1024 * 1024 },
    });
    const outcome = await executor.run(request, new AbortController().signal);
    expect(outcome.outcome).not.toBe('success');
    expect(outcome.error).toMatch(/^memory limit 64M exceeded/);
    expect(outcome.limitHit).toEqual(['memory']);
  });

  it('the same job without a limit allocates its 200M', async () => {
    const { request, file } = job(`perl -e '$x = "a" x (200 * 1024 * 1024); print length($x), "\\n"'`);
    expect((await executor.run(request, new AbortController().signal)).outcome).toBe('success');
    expect(readFileSync(file('stdout.log'), 'utf8')).toBe(`${200 * 1024 * 1024}\n`);
  });

  it('a processes limit makes forks fail past it, and the attempt says why', async () => {
    const { request } = job('for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait', {
      limits: { processes: 4 },
    });
    const outcome = await executor.run(request, new AbortController().signal);
    expect(outcome.outcome).toBe('exit-code');
    expect(outcome.error).toMatch(/^processes limit 4 reached/);
    expect(outcome.limitHit).toEqual(['processes']);
  });

  it('a job that exits 0 after a fork was refused at its processes limit is marked as having hit it', async () => {
    const { request } = job("sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait' 2>/dev/null; exit 0", {
      limits: { processes: 4 },
    });
    const outcome = await executor.run(request, new AbortController().signal);
    expect(outcome.outcome).toBe('success');
    expect(outcome.error).toBeUndefined();
    expect(outcome.limitHit).toEqual(['processes']);
  });

  it('a job that exits 0 after its memory was reclaimed at the limit is marked as having hit it', async () => {
    // 96M written through the page cache, which is charged to the job's 32M group: the kernel
    // reclaims at the limit (memory.failcnt) instead of killing.
    const { request } = job('dd if=/dev/zero of="$DIR/big" bs=1M count=96 2>/dev/null; rm "$DIR/big"', {
      limits: { memory: 32 * 1024 * 1024 },
    });
    const outcome = await executor.run(request, new AbortController().signal);
    expect(outcome.outcome).toBe('success');
    expect(outcome.limitHit).toEqual(['memory']);
    // Under its limit, the same job is not marked.
    const roomy = job('dd if=/dev/zero of="$DIR/big" bs=1M count=8 2>/dev/null; rm "$DIR/big"', {
      limits: { memory: 512 * 1024 * 1024, processes: 100 },
    });
    const free = await executor.run(roomy.request, new AbortController().signal);
    expect(free.outcome).toBe('success');
    expect(free.limitHit).toBeUndefined();
  });

  it('an open-files limit and a CPU-time limit apply to the job (setrlimit)', async () => {
    const files = job('ulimit -n', { limits: { open_files: 17 } });
    expect((await executor.run(files.request, new AbortController().signal)).outcome).toBe('success');
    expect(readFileSync(files.file('stdout.log'), 'utf8')).toBe('17\n');
    const cpu = job('exec perl -e "1 while 1"', { limits: { cpu_time: 1_000 }, timeoutMs: 30_000 });
    const outcome = await executor.run(cpu.request, new AbortController().signal);
    expect(outcome.signal).toBe('SIGXCPU');
    expect(outcome.error).toBe('CPU time limit 1 s exceeded: killed by SIGXCPU');
    expect(outcome.limitHit).toEqual(['cpu_time']);
  });
});

describe.runIf(CGROUP_V1)('cgroups a crashed daemon left', () => {
  it('are emptied and removed when the next daemon starts; a live daemon’s are left alone', async () => {
    const tag = `stale${process.pid}`;
    // A pid that is not running: a short-lived child's, after it ended.
    const dead = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
    const stale = path.join(FREEZER, `batchd-${tag}-${dead}`);
    const job1 = path.join(stale, 'job-x-1');
    mkdirSync(job1, { recursive: true });
    const orphan = spawn('sleep', ['303'], { detached: true, stdio: 'ignore' });
    orphan.unref();
    const pid = orphan.pid as number;
    writeFileSync(path.join(job1, 'cgroup.procs'), String(pid));
    const executor = new LocalExecutor(silent, { containment: 'cgroup', tag });
    try {
      // The sweep runs before the first job: run one to wait for it.
      const { request } = job('true');
      expect((await executor.run(request, new AbortController().signal)).outcome).toBe('success');
      await waitFor(() => !pidAlive(pid) || undefined, 5_000);
      expect(existsSync(stale)).toBe(false);
      expect(existsSync(path.join(FREEZER, `batchd-${tag}-${process.pid}`))).toBe(true);
    } finally {
      await executor.close();
    }
    expect(existsSync(path.join(FREEZER, `batchd-${tag}-${process.pid}`))).toBe(false);
  });
});
