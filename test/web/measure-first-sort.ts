/**
 * Measure (not a test): the first sorted page of the job list with 100,000 queued jobs, by each
 * column, for one or more builds of the daemon in the same run (e.g. the one before a change and
 * the one after it). Run after `npm run build`:
 *
 *   npx tsx test/web/measure-first-sort.ts [jobs=100000] [folder to keep the spool in] [batchd.cjs …]
 *
 * The jobs (types, owners and priorities that vary) are written straight into the queue's folder
 * once, and kept. For each build: the daemon is started, then, once it knows every job's values
 * (its background pass; a build without one is not waited for), the first page (50 jobs) of each
 * sort, and the median of the next 7 pages by cursor, are timed: requests made straight to the API.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { stringify } from 'yaml';

import { DAEMON_MAIN } from '../helpers/daemon-process.ts';
import { TEST_DEFAULTS } from '../helpers/env.ts';
import { writeJobs } from './deep-queue.ts';

const N = Number(process.argv[2] ?? 100_000);
const ROOT = process.argv[3] ?? path.join(tmpdir(), `batchd-sort-measure-${N}`);
const BUILDS = process.argv.length > 4 ? process.argv.slice(4) : [DAEMON_MAIN];
const QUEUE = 'deep';
const SORTS = ['type', 'user', '-priority', 'started', 'state'];
const SPOOL = path.join(ROOT, 'spool');
/** Pages read after the first, by cursor; their median is reported. */
const NEXT_PAGES = 7;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const ETC = path.join(ROOT, 'etc');

function prepare(): void {
  mkdirSync(path.join(ETC, 'jobtypes'), { recursive: true });
  writeFileSync(
    path.join(ETC, 'batchd.yaml'),
    stringify({
      ...TEST_DEFAULTS,
      logging: { ...TEST_DEFAULTS.logging, level: 'warn' },
      manager: { enabled: true, host: '127.0.0.1', port: 0 },
    }),
  );
  writeFileSync(path.join(ETC, 'jobtypes', 'render.yaml'), stringify({ template: 'true' }));
  mkdirSync(path.join(SPOOL, QUEUE), { recursive: true });
  writeFileSync(path.join(SPOOL, QUEUE, 'queue.yaml'), 'enabled: false\n');
  const queued = path.join(SPOOL, QUEUE, 'queued');
  const have = existsSync(queued) ? readdirSync(queued).length : 0;
  if (have >= N) return;
  const t0 = performance.now();
  writeJobs(SPOOL, QUEUE, { queued: N - have }, have + 1);
  console.log(`wrote ${N - have} jobs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

async function boot(main: string): Promise<{ child: ChildProcess; url: string; readyMs: number }> {
  const urlFile = path.join(ROOT, 'api-url');
  rmSync(urlFile, { force: true });
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [main, '--config', ETC, '--spool', SPOOL, '--api-url-file', urlFile],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  for (;;) {
    if (existsSync(urlFile)) {
      const url = readFileSync(urlFile, 'utf8').trim();
      if (url !== '') return { child, url, readyMs: performance.now() - t0 };
    }
    if (child.exitCode !== null) throw new Error(`${main} exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function metric(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?(?:e\\+\\d+)?)$`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}

async function timed(url: string, route: string): Promise<{ ms: number; next: string | null }> {
  const t0 = performance.now();
  const res = await fetch(`${url}${route}`);
  const body = (await res.json()) as { next_cursor: string | null };
  if (res.status !== 200) throw new Error(`${route}: ${res.status} ${JSON.stringify(body)}`);
  return { ms: performance.now() - t0, next: body.next_cursor };
}

async function measure(main: string): Promise<Record<string, unknown>> {
  const { child, url, readyMs } = await boot(main);
  try {
    const t0 = performance.now();
    let backgroundMs: number | undefined;
    if ((await metric(url, 'batchd_job_sort_known_jobs')) !== undefined) {
      while (((await metric(url, 'batchd_job_sort_known_jobs')) ?? 0) < N)
        await new Promise((r) => setTimeout(r, 200));
      backgroundMs = Math.round(performance.now() - t0);
    }
    const rssBeforeSorts = (await metric(url, 'batchd_process_resident_memory_bytes')) ?? 0;
    const sorts: Record<string, { firstPageMs: number; nextPageMs: number }> = {};
    for (const sort of SORTS) {
      const list = `/queue/${QUEUE}/jobs?sort=${sort}&limit=50`;
      const first = await timed(url, list);
      const next: number[] = [];
      let cursor = first.next;
      for (let i = 0; i < NEXT_PAGES && cursor !== null; i++) {
        const page = await timed(url, `${list}&cursor=${encodeURIComponent(cursor)}`);
        next.push(page.ms);
        cursor = page.next;
      }
      sorts[sort] = { firstPageMs: Math.round(first.ms), nextPageMs: Math.round(median(next) * 10) / 10 };
    }
    return {
      build: main,
      queued: N,
      readyMs: Math.round(readyMs),
      backgroundPassMs: backgroundMs ?? 'none',
      requestReads: await metric(url, 'batchd_job_sort_file_reads_total\\{for="request"\\}'),
      backgroundReads: await metric(url, 'batchd_job_sort_file_reads_total\\{for="background"\\}'),
      rssBeforeSortsMiB: Math.round(rssBeforeSorts / 1048576),
      rssAfterSortsMiB: Math.round(
        ((await metric(url, 'batchd_process_resident_memory_bytes')) ?? 0) / 1048576,
      ),
      sorts,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

prepare();
for (const main of BUILDS) console.log(JSON.stringify(await measure(main), null, 2));
