// The benchmark's own arithmetic and bookkeeping (bench/lib): the figures it reports are only as
// good as these. The bench itself is run with `npm run bench`, never from the test suite.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, describe, expect, it } from 'vitest';

interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}
interface Verdict {
  measure: string;
  figure: string;
  met: boolean | null;
  why?: string;
}
interface StatsModule {
  quantile(values: number[], q: number): number;
  summarize(values: number[]): Summary;
  percentiles(values: number[]): { p50: number; p99: number; max: number; n: number };
}
interface TargetsModule {
  evaluateTargets(results: Record<string, unknown>): Verdict[];
}
interface ReportModule {
  renderMarkdown(report: Record<string, unknown>): string;
}
interface ProcModule {
  TAG_VAR: string;
  taggedPids(prefix: string): number[];
  killTagged(prefix: string): Promise<number>;
}
interface BatchdModule {
  subfolders(dir: string): number;
}

// Plain ESM without type declarations: imported by a computed path and typed here.
const lib = (name: string): string => path.join(import.meta.dirname, '..', '..', 'bench', 'lib', name);
const stats = (await import(lib('stats.mjs'))) as StatsModule;
const targets = (await import(lib('targets.mjs'))) as TargetsModule;
const report = (await import(lib('report.mjs'))) as ReportModule;
const proc = (await import(lib('proc.mjs'))) as ProcModule;
const batchd = (await import(lib('batchd.mjs'))) as BatchdModule;
const fsProbe = (await import(lib('fs-probe.mjs'))) as {
  probeFileSystem(root: string): Record<string, number>;
  describeProbe(p: Record<string, number> | undefined): string;
};

const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-lib-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function throughputRow(
  name: string,
  medianMs: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const total = { median: medianMs, min: medianMs, max: medianMs, n: 1 };
  return { name, label: name, total, submit: total, drain: total, ...extra };
}

describe('bench statistics', () => {
  it('interpolates quantiles between ranks and ignores non-numbers', () => {
    expect(stats.quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(stats.quantile([10, 20], 0.99)).toBeCloseTo(19.9);
    expect(stats.summarize([3, Number.NaN, 1, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3 });
    expect(Number.isNaN(stats.summarize([]).median)).toBe(true);
  });

  it('puts p99 of 100 samples next to the largest, not at it', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    const p = stats.percentiles(values);
    expect(p.p50).toBe(50.5);
    expect(p.p99).toBeCloseTo(99.01);
    expect(p.max).toBe(100);
  });
});

describe('bench targets', () => {
  const verdictOf = (results: Record<string, unknown>, prefix: string): Verdict | undefined =>
    targets.evaluateTargets(results).find((t) => t.measure.includes(prefix));

  it('judges the 1,000-job run against 0.7 × task-spooler from the same run', () => {
    const run = (batchdMs: number): Record<string, unknown> => ({
      throughput: {
        n: 1000,
        rounds: 1,
        rows: [throughputRow('batchd', batchdMs), throughputRow('tsp', 1500)],
      },
    });
    expect(verdictOf(run(1000), 'one drop per job')?.met).toBe(true);
    expect(verdictOf(run(1100), 'one drop per job')?.met).toBe(false);
    expect(verdictOf(run(1100), 'one drop per job')?.figure).toContain('0.73 ×');
  });

  it("says what a daemon that cost nothing would reach, from the same run's floors", () => {
    const run = (dropLoopMs: number): Record<string, unknown> => ({
      throughput: {
        n: 1000,
        rounds: 1,
        rows: [
          throughputRow('floor-drop', dropLoopMs),
          throughputRow('batchd', 3000),
          throughputRow('tsp', 1500),
        ],
      },
    });
    const reachable = verdictOf(run(900), 'one drop per job')?.figure;
    expect(reachable).toContain('the drop loop alone (printf + `mv`, no daemon) 0.90 s = 0.60 ×');
    expect(reachable).not.toContain('already past the target');
    expect(verdictOf(run(1200), 'one drop per job')?.figure).toContain(
      '0.80 ×, already past the target with no daemon at all',
    );

    const latency = (mvP50: number): Record<string, unknown> => ({
      latency: {
        rows: [
          { name: 'floor', total: { p50: 2 } },
          { name: 'batchd', total: { p50: 6 }, submit: { p50: mvP50 }, own: { p50: 3 } },
          { name: 'tsp', total: { p50: 4 } },
        ],
      },
    });
    expect(verdictOf(latency(1.5), 'submit → start p50')?.figure).toBe(
      "6.00 ms vs tsp 4.00 ms; the `mv` alone 1.50 ms + the stamp's own cost 2.00 ms = 3.50 ms",
    );
    expect(verdictOf(latency(2.5), 'submit → start p50')?.figure).toContain(
      '= 4.50 ms, already past the target with no daemon at all',
    );
    // No floor row, no bound: the figure alone.
    expect(verdictOf(run(Number.NaN), 'one drop per job')?.figure).toBe('3.00 s vs tsp 1.50 s = 2.00 ×');

    const reads = (floorPerSecond: number, non2xx = 0): Record<string, unknown> => ({
      http: {
        submissions: { perSecond: 900, p99ms: 40, non2xx: 0 },
        status: { perSecond: 5000, p99ms: 8, non2xx: 0 },
        floors: [
          { kind: 'hono', perSecond: 14_000, non2xx: 0 },
          { kind: 'read', perSecond: floorPerSecond - 500, non2xx },
          { kind: 'read-node', perSecond: floorPerSecond, non2xx },
        ],
      },
    });
    const under = verdictOf(reads(8500), 'status reads/s');
    expect(under?.figure).toContain(
      'the least an authenticated read does, with no daemon (the faster of Hono and bare Node), 8,500/s',
    );
    expect(under?.figure).toContain('already under the target before any of batchd runs');
    expect(under?.met).toBe(false);
    expect(verdictOf(reads(12_000), 'status reads/s')?.figure).not.toContain('already under');
    // A floor that failed requests (its stat or token check) would flatter the bound: left out.
    expect(verdictOf(reads(20_000, 5), 'status reads/s')?.figure).toBe('5,000/s');

    const submissions = (
      perSecond: number,
      p99ms: number,
      non2xx = 0,
      deferred?: { perSecond: number; p99ms: number; non2xx: number },
    ): Record<string, unknown> => ({
      http: {
        submissions: { perSecond: 1200, p99ms: 40, non2xx: 0 },
        status: { perSecond: 5000, p99ms: 8, non2xx: 0 },
        floors: [
          { kind: 'submit-node', perSecond, p99ms, non2xx },
          ...(deferred === undefined ? [] : [{ kind: 'submit-deferred', ...deferred }]),
        ],
      },
    });
    const slow = submissions(1800, 14);
    expect(verdictOf(slow, 'durable submissions/s')?.figure).toBe(
      "1,200/s; the least a durable submission does, with no daemon (bare Node, the spool's folder and a journal, the faster of folder-then-answer and answer-then-folder), 1,800/s, already under the target before any of batchd runs",
    );
    expect(verdictOf(slow, 'HTTP p99')?.figure).toBe(
      '40.0 ms; the least a durable submission does, with no daemon, p99 14.0 ms (the lower of its two orders), already over the target before any of batchd runs',
    );
    const fast = submissions(4000, 6);
    expect(verdictOf(fast, 'durable submissions/s')?.figure).not.toContain('already under');
    expect(verdictOf(fast, 'HTTP p99')?.figure).toContain('p99 6.00 ms');
    expect(verdictOf(fast, 'HTTP p99')?.figure).not.toContain('already over');
    expect(verdictOf(submissions(1000, 14, 3), 'durable submissions/s')?.figure).toBe('1,200/s');
    // Two orders: the kinder bound of each, so a slow order cannot make the target look out of reach.
    const both = submissions(1800, 30, 0, { perSecond: 2600, p99ms: 12, non2xx: 0 });
    expect(verdictOf(both, 'durable submissions/s')?.figure).toContain('2,600/s');
    expect(verdictOf(both, 'durable submissions/s')?.figure).not.toContain('already under');
    expect(verdictOf(both, 'HTTP p99')?.figure).toContain('p99 12.0 ms (the lower of its two orders)');
    const failing = submissions(1800, 30, 0, { perSecond: 9000, p99ms: 2, non2xx: 7 });
    expect(verdictOf(failing, 'durable submissions/s')?.figure).toContain('1,800/s, already under');
    expect(verdictOf(failing, 'HTTP p99')?.figure).toContain('p99 30.0 ms');
  });

  it('says why a target was not measured instead of leaving it out', () => {
    const results = {
      throughput: {
        n: 1000,
        rounds: 1,
        rows: [
          throughputRow('batchd', 1000),
          { name: 'tsp', label: 'tsp', unavailable: 'tsp is not installed' },
        ],
      },
      http: { unavailable: 'the HTTP API is not built yet' },
    };
    const all = targets.evaluateTargets(results);
    expect(verdictOf(results, 'one drop per job')).toMatchObject({ met: null, why: 'tsp is not installed' });
    expect(
      all
        .filter((t) => t.measure.startsWith('HTTP'))
        .every((t) => t.met === null && t.why === 'the HTTP API is not built yet'),
    ).toBe(true);
  });

  it('reports an unavailable peer in the table with its reason', () => {
    const results = {
      throughput: {
        n: 1000,
        rounds: 1,
        rows: [
          throughputRow('batchd', 1000),
          { name: 'slurm', label: 'Slurm', unavailable: 'munged exited', total: { median: Number.NaN } },
        ],
      },
    };
    const markdown = report.renderMarkdown({
      command: 'npm run bench',
      startedAt: '2026-11-21T10:00:00.000Z',
      seconds: 1,
      options: { quick: false },
      machine: {
        cpu: '2 × test',
        memoryGiB: 1,
        os: 'test',
        kernel: 'x',
        filesystem: 'ext4',
        node: 'v20',
        loadavgAtStart: [0, 0, 0],
        versions: {},
      },
      results,
      targets: targets.evaluateTargets(results),
    });
    expect(markdown).toMatch(/\| Slurm \| unavailable: munged exited \|/);
  });
});

describe('bench process and spool bookkeeping', () => {
  it('counts and kills the processes that carry a run tag, and only those', async () => {
    const tag = `benchlibtest${process.pid}`;
    const tagged = spawn('sleep', ['30'], {
      env: { ...process.env, [proc.TAG_VAR]: `${tag}-x` },
      stdio: 'ignore',
    });
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await sleep(100);
      expect(proc.taggedPids(tag)).toEqual([tagged.pid]);
      expect(await proc.killTagged(tag)).toBe(1);
      expect(proc.taggedPids(tag)).toEqual([]);
      expect(other.exitCode).toBeNull();
    } finally {
      tagged.kill('SIGKILL');
      other.kill('SIGKILL');
    }
  });

  it('counts job folders from the link count the same as by reading the folder', () => {
    const dir = path.join(tmp, 'queued');
    mkdirSync(dir);
    for (let i = 0; i < 25; i++) mkdirSync(path.join(dir, `job${i}`));
    writeFileSync(path.join(dir, 'not-a-job.txt'), '');
    const byReading = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).length;
    expect(batchd.subfolders(dir)).toBe(byReading);
    expect(batchd.subfolders(path.join(tmp, 'missing'))).toBe(0);
  });

  it('probes the cost of each file-system call in a folder of its own, which it leaves for the run to remove', () => {
    const root = path.join(tmp, 'probe');
    mkdirSync(root);
    const p = fsProbe.probeFileSystem(root);
    expect(Object.keys(p).sort()).toEqual(
      ['createFile', 'mkdir', 'overwriteFile', 'renameFile', 'renameFolder'].sort(),
    );
    for (const v of Object.values(p)) expect(Number.isFinite(v) && v > 0, String(v)).toBe(true);
    // Removing its files at once would slow the run's own file creations for 30 s (fs-probe.mjs).
    const [folder, ...more] = readdirSync(root);
    expect(more).toEqual([]);
    expect(folder).toMatch(/^fs-probe-/);
    expect(readdirSync(path.join(root, folder ?? '')).sort()).toEqual(['a', 'b']);
    expect(fsProbe.describeProbe(p)).toContain(`create a file ${p.createFile} µs`);
    expect(fsProbe.describeProbe(undefined)).toBe('?');
  });
});
