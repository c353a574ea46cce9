// 100,000 queued jobs: the daemon's memory, its start-up time (recovery scan and index of every
// queued job included) and the time to list one page of the queue. The queue is disabled
// (`enabled: false` in queue.yaml), so the jobs stay queued.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

import { freePort, probeApi } from '../lib/api.mjs';
import { BatchdDaemon, subfolders } from '../lib/batchd.mjs';
import { memoryOf, runOk, taggedPids, waitFor } from '../lib/proc.mjs';
import { median, summarize } from '../lib/stats.mjs';

const QUEUE = 'deep';

/** The start-up floor's program: list the folder given, read and parse each job's record. */
const READ_EVERY_RECORD = `
const { readdirSync, readFileSync } = require('node:fs');
const dir = process.argv[1];
let n = 0;
for (const id of readdirSync(dir)) {
  if (id.startsWith('.')) continue;
  JSON.parse(readFileSync(dir + '/' + id + '/state.yaml', 'utf8'));
  n += 1;
}
console.log(n);
`;
const PAGE = 50;

export async function deepQueue(ctx) {
  const n = ctx.opts.quick ? 2000 : 100_000;
  const rounds = ctx.opts.rounds;
  const dir = path.join(ctx.root, 'deep');
  const tag = `${ctx.tag}-deep`;
  const port = await freePort();
  const make = () =>
    new BatchdDaemon({
      dir,
      tag,
      // The manager is on so the page can be read through the HTTP API once it exists.
      config: { manager: { enabled: true, host: '127.0.0.1', port } },
      queues: { [QUEUE]: 'enabled: false\n' },
    });
  const result = { n, rounds };

  // Node's own start-up, and the daemon's on an empty spool: what the figures below are made of.
  const nodeMs = [];
  for (let i = 0; i < 5; i++) nodeMs.push((await runOk(process.execPath, ['-e', '0'])).ms);
  result.nodeStartup = summarize(nodeMs);
  const empty = make();
  await empty.start();
  result.emptyStartupMs = empty.startupMs;
  result.emptyRssMiB = memoryOf(empty.pid).rssMiB;

  // Fill the queue: n job files dropped into incoming/, accepted by the running daemon. (A task of n
  // would not do: its folders are made only as the dispatcher needs them, docs/tasks.md.)
  ctx.log(`deep: dropping ${n} job files`);
  const queued = path.join(empty.queueDir(QUEUE), 'queued');
  const t0 = performance.now();
  for (let i = 1; i <= n; i++) empty.drop(`deep-${i}.yaml`, `type: bench-true\nparams:\n  n: ${i}\n`, QUEUE);
  await waitFor(() => subfolders(queued) === n, {
    everyMs: 1000,
    timeoutMs: 3_600_000,
    what: `the ${n} dropped jobs to be accepted`,
  });
  const acceptedAt = performance.now();
  result.acceptSeconds = (acceptedAt - t0) / 1000;
  result.rssAfterAcceptMiB = memoryOf(empty.pid).rssMiB;
  await empty.stop();
  ctx.log(`  accepted in ${result.acceptSeconds.toFixed(1)} s`);

  // Start-up with n queued, each round a fresh process on the same spool, each after a round of
  // the floor: a bare Node process that lists queued/ and reads and parses every job's state.yaml,
  // the least a start-up that knows each queued job's record must do.
  const startups = [];
  const floors = [];
  const rss = [];
  const peaks = [];
  for (let round = 1; round <= rounds; round++) {
    const floor = await runOk(process.execPath, ['-e', READ_EVERY_RECORD, queued]);
    if (Number(floor.stdout.trim()) !== n)
      throw new Error(`the floor read ${floor.stdout.trim()} records, expected ${n}`);
    floors.push(floor.ms);
    const daemon = make();
    await daemon.start({ timeoutMs: 300_000 });
    const indexed = daemon.readyEntry?.queued;
    if (indexed !== n)
      throw new Error(`the daemon indexed ${indexed} queued jobs at start-up, expected ${n}`);
    startups.push(daemon.startupMs);
    // Settle: what it holds once the start-up garbage is collected or not.
    await new Promise((r) => setTimeout(r, 1000));
    const mem = memoryOf(daemon.pid);
    rss.push(mem.rssMiB);
    peaks.push(mem.peakMiB);
    ctx.log(
      `  start-up ${(daemon.startupMs / 1000).toFixed(2)} s (floor ${(floor.ms / 1000).toFixed(2)} s), RSS ${mem.rssMiB.toFixed(0)} MiB (peak ${mem.peakMiB.toFixed(0)})`,
    );
    if (round === rounds) {
      // The job list's sort values (views/sort-facts.ts) are read in the background after ready.
      await waitFor(async () => (await sortKnownJobs(port)) >= n, {
        everyMs: 1000,
        timeoutMs: 600_000,
        what: 'the sort values of every queued job to be read',
      });
      result.rssAfterSortValuesMiB = memoryOf(daemon.pid).rssMiB;
      ctx.log(`  RSS once the sort values are read ${result.rssAfterSortValuesMiB.toFixed(0)} MiB`);
      const pids = taggedPids(tag);
      result.processes = pids.length;
      result.listing = await listPage(ctx, port, daemon.queueDir(QUEUE));
    }
    await daemon.stop();
  }
  result.startup = summarize(startups);
  result.startupFloor = summarize(floors);
  result.rss = summarize(rss);
  result.peakRss = summarize(peaks);
  rmSync(dir, { recursive: true, force: true });
  return result;
}

/** `batchd_job_sort_known_jobs` from the daemon's metrics (0 before it answers; Infinity without it). */
async function sortKnownJobs(port) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
  if (res === undefined || !res.ok) return 0;
  const line = (await res.text()).split('\n').find((l) => l.startsWith('batchd_job_sort_known_jobs'));
  // A daemon without that index (an older build) has nothing to wait for.
  return line === undefined ? Infinity : Number(line.split(' ').pop());
}

/** A page through the HTTP API if the daemon serves one, else the same work done on the folder. */
async function listPage(ctx, port, queueDir) {
  const api = await probeApi(port);
  if (api.listPath !== undefined) {
    const url = `http://127.0.0.1:${port}${api.listPath.replace('{queue}', QUEUE)}?limit=${PAGE}`;
    const times = [];
    for (let i = 0; i < 21; i++) {
      const t0 = performance.now();
      const res = await fetch(url);
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
      times.push(performance.now() - t0);
    }
    return { via: `HTTP GET ${api.listPath}?limit=${PAGE}`, ms: summarize(times.slice(1)) };
  }
  // No API yet: readdir of queued/, sort by id (= submission order), read and parse 50 state files.
  const queued = path.join(queueDir, 'queued');
  const sortedPage = [];
  for (let i = 0; i < 11; i++) {
    const t0 = performance.now();
    const ids = readdirSync(queued).sort().slice(0, PAGE);
    for (const id of ids) JSON.parse(readFileSync(path.join(queued, id, 'state.yaml'), 'utf8'));
    sortedPage.push(performance.now() - t0);
  }
  ctx.log(
    `  listing: no HTTP API (${api.why}); readdir+sort+read ${PAGE}: ${median(sortedPage).toFixed(1)} ms`,
  );
  return {
    via: `no HTTP API yet (${api.why}): readdir of queued/, sort, read + parse ${PAGE} state.yaml, in the bench process`,
    ms: summarize(sortedPage.slice(1)),
  };
}
