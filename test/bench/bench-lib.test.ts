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

  it("judges 1,000 drops against 1.25 × the same run's drop loop into an unwatched folder", () => {
    const run = (batchdMs: number): Record<string, unknown> => ({
      throughput: {
        n: 1000,
        rounds: 1,
        rows: [
          throughputRow('floor-drop', 1000),
          throughputRow('batchd', batchdMs),
          throughputRow('tsp', 1500),
        ],
      },
    });
    expect(verdictOf(run(1200), 'file drops')?.met).toBe(true);
    expect(verdictOf(run(1300), 'file drops')?.met).toBe(false);
    expect(verdictOf(run(1300), 'file drops')?.figure).toBe(
      "1.30 s vs the drop loop alone 1.00 s = 1.30 ×; tsp's loop 1.50 s",
    );
  });

  it('judges acceptance and HTTP as ratios to floors measured in the same run', () => {
    const acceptance = (perSecond: number): Record<string, unknown> => ({
      acceptance: {
        n: 10000,
        rows: [
          { name: 'batchd', perSecond: { median: perSecond } },
          { name: 'floor-spool', perSecond: { median: 2000 } },
        ],
      },
    });
    expect(verdictOf(acceptance(1900), 'drops accepted')?.met).toBe(true);
    expect(verdictOf(acceptance(1700), 'drops accepted')?.figure).toBe('1,700/s vs 2,000/s = 0.85 ×');

    const http = (non2xx: number): Record<string, unknown> => ({
      http: {
        submissions: { perSecond: 1200, p99ms: 40, non2xx: 0 },
        status: { perSecond: 5000, p99ms: 8, non2xx: 0 },
        floors: [
          { kind: 'read', perSecond: 6000, non2xx },
          { kind: 'read-node', perSecond: 9000, non2xx: 0 },
          { kind: 'submit-node', perSecond: 1400, p99ms: 20, non2xx: 0 },
          { kind: 'submit-deferred', perSecond: 1600, p99ms: 25, non2xx },
        ],
      },
    });
    // Reads against the Hono floor; submissions against the faster of the two orders.
    expect(verdictOf(http(0), 'status reads')).toMatchObject({
      met: true,
      figure: '5,000/s vs 6,000/s = 0.83 ×',
    });
    expect(verdictOf(http(0), 'durable submissions')).toMatchObject({
      met: false,
      figure: '1,200/s vs 1,600/s = 0.75 ×',
    });
    // A floor that failed requests would flatter the ratio: left out.
    expect(verdictOf(http(3), 'durable submissions')?.figure).toBe('1,200/s vs 1,400/s = 0.86 ×');
    expect(verdictOf(http(3), 'status reads')).toMatchObject({ met: null });
  });

  it('says why a target was not measured instead of leaving it out', () => {
    const results = {
      throughput: {
        n: 1000,
        rounds: 1,
        rows: [throughputRow('batchd', 1000), { name: 'floor-drop', label: 'floor', error: 'no tmp space' }],
      },
      http: { unavailable: 'the HTTP API is not built yet' },
    };
    const all = targets.evaluateTargets(results);
    expect(verdictOf(results, 'file drops')).toMatchObject({ met: null, why: 'no tmp space' });
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
