/**
 * Measure (not a test): time to the first render of the web page's job list with 100,000 jobs
 * queued, and the bytes it transfers, against the same list call made straight to the API in the
 * same run. Run after `npm run build`:
 *
 *   npx tsx test/web/measure-first-render.ts [jobs=100000] [folder to keep the spool in]
 *
 * The spool is kept in the folder given (made once: accepting 100,000 jobs takes minutes).
 *
 * The floor, in the same run: the least any page can do to show those 50 jobs. A blank document of
 * the daemon's origin whose one inline script fetches the same list and writes 50 table rows, served
 * by the browser's own request interception (no daemon file, no module, no stylesheet). What the
 * page costs beyond it is the page's own; what the floor costs beyond the API call is Chromium's.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { stringify } from 'yaml';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { TEST_DEFAULTS } from '../helpers/env.ts';
import { launch } from './browser.ts';

const N = Number(process.argv[2] ?? 100_000);
const ROOT = process.argv[3] ?? path.join(tmpdir(), `batchd-web-measure-${N}`);
const QUEUE = 'deep';
const ROUNDS = 5;
const SETTLE_MS = 1000;

const FLOOR_PAGE = (
  list: string,
): string => `<!doctype html><title>floor</title><table class="jobs"><tbody></tbody></table>
<script>
fetch(${JSON.stringify(list)}).then((r) => r.json()).then((d) => {
  const body = document.querySelector('tbody');
  for (const j of d.jobs) {
    const tr = document.createElement('tr');
    for (const v of [j.id, j.status, j.type, j.submitted_at]) {
      const td = document.createElement('td');
      td.textContent = String(v);
      tr.append(td);
    }
    body.append(tr);
  }
});
</script>`;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function boot(): Promise<{ proc: DaemonProcess; url: string }> {
  const urlFile = path.join(ROOT, 'api-url');
  rmSync(urlFile, { force: true });
  const proc = await startDaemon(path.join(ROOT, 'etc'), path.join(ROOT, 'spool'), {
    extraArgs: ['--api-url-file', urlFile],
    readyTimeoutMs: 600_000,
  });
  for (;;) {
    if (existsSync(urlFile)) {
      const url = readFileSync(urlFile, 'utf8').trim();
      if (url !== '') return { proc, url };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function queuedCount(): number {
  try {
    return readdirSync(path.join(ROOT, 'spool', QUEUE, 'queued')).length;
  } catch {
    return 0;
  }
}

async function fill(): Promise<void> {
  mkdirSync(path.join(ROOT, 'etc', 'jobtypes'), { recursive: true });
  mkdirSync(path.join(ROOT, 'spool', QUEUE, 'incoming'), { recursive: true });
  writeFileSync(
    path.join(ROOT, 'etc', 'batchd.yaml'),
    stringify({ ...TEST_DEFAULTS, manager: { enabled: true, host: '127.0.0.1', port: 0 } }),
  );
  writeFileSync(
    path.join(ROOT, 'etc', 'jobtypes', 'frame.yaml'),
    stringify({ template: 'true $n', params: [{ name: 'n', type: 'Integer' }] }),
  );
  writeFileSync(path.join(ROOT, 'spool', QUEUE, 'queue.yaml'), 'enabled: false\n');
  if (queuedCount() >= N) return;
  const { proc } = await boot();
  const started = Date.now();
  const incoming = path.join(ROOT, 'spool', QUEUE, 'incoming');
  writeFileSync(path.join(incoming, '.frames.tmp'), `type: frame\nparams:\n  n: {range: "1..${N}"}\n`);
  renameSync(path.join(incoming, '.frames.tmp'), path.join(incoming, 'frames.yaml'));
  while (!proc.logs().includes('task accepted')) await new Promise((r) => setTimeout(r, 500));
  console.log(`accepted ${queuedCount()} jobs in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await proc.stop();
}

async function measure(): Promise<void> {
  const { proc, url } = await boot();
  const browser = await launch();
  try {
    const list = `/queue/${QUEUE}/jobs?status=queued&limit=50`;
    const api: number[] = [];
    let apiBytes = 0;
    const page: number[] = [];
    const pageBytes: number[] = [];
    const pageRequests: number[] = [];
    const repeat: number[] = [];
    const repeatBytes: number[] = [];
    const floor: number[] = [];
    // Each timed call starts after a pause: Chromium closing the last round's context takes the
    // loaded machine's CPU for a while, which would otherwise be charged to whatever runs next.
    const settle = (): Promise<void> => new Promise((r) => setTimeout(r, SETTLE_MS));
    for (let round = 0; round < ROUNDS + 1; round++) {
      await settle();
      const t0 = performance.now();
      const body = await (await fetch(`${url}${list}`)).arrayBuffer();
      const ms = performance.now() - t0;
      apiBytes = body.byteLength;
      const watched = await browser.page();
      await settle();
      const t1 = performance.now();
      await watched.page.goto(`${url}/#/jobs?queue=${QUEUE}`);
      await watched.page.locator('table.jobs tbody tr').nth(49).waitFor({ timeout: 120_000 });
      const pms = performance.now() - t1;
      const bytes = await watched.page.evaluate<number>(
        `[...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
           .reduce((sum, e) => sum + e.encodedBodySize, 0)`,
      );
      // A repeat visit: the files are revalidated (304 by ETag), only the data travels again.
      const t2 = performance.now();
      await watched.page.reload();
      await watched.page.locator('table.jobs tbody tr').nth(49).waitFor({ timeout: 120_000 });
      const rms = performance.now() - t2;
      const rbytes = await watched.page.evaluate<number>(
        `[...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
           .reduce((sum, e) => sum + e.transferSize, 0)`,
      );
      await watched.context.close();
      const bare = await browser.page();
      await bare.page.route(`${url}/__floor.html`, (r) =>
        r.fulfill({ status: 200, contentType: 'text/html', body: FLOOR_PAGE(list) }),
      );
      await settle();
      const t3 = performance.now();
      await bare.page.goto(`${url}/__floor.html`);
      await bare.page.locator('table.jobs tbody tr').nth(49).waitFor({ timeout: 120_000 });
      const fms = performance.now() - t3;
      await bare.context.close();
      if (round === 0) continue;
      floor.push(fms);
      repeat.push(rms);
      repeatBytes.push(rbytes); // warm-up: the daemon's caches and Chromium's first start
      api.push(ms);
      page.push(pms);
      pageBytes.push(bytes);
      pageRequests.push(watched.requests.length);
    }
    // Server-side sort: newest first, and a page from the middle by cursor: each should cost one page.
    const timed = async (route: string): Promise<number> => {
      const t0 = performance.now();
      await (await fetch(`${url}${route}`)).arrayBuffer();
      return performance.now() - t0;
    };
    // A cursor half-way through the queue, from the folder itself.
    const ids = readdirSync(path.join(ROOT, 'spool', QUEUE, 'queued')).sort();
    const cursor = ids[Math.floor(ids.length / 2)] ?? '';
    const sorted = { newest: [] as number[], deepAsc: [] as number[], deepDesc: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      sorted.newest.push(await timed(`${list}&sort=-submitted`));
      sorted.deepAsc.push(await timed(`${list}&cursor=${cursor}`));
      sorted.deepDesc.push(await timed(`${list}&cursor=${cursor}&sort=-submitted`));
    }
    const result = {
      queued: queuedCount(),
      apiListMs: Math.round(median(api) * 10) / 10,
      apiListBytes: apiBytes,
      pageFirstRenderMs: Math.round(median(page)),
      pageBytes: median(pageBytes),
      pageRequests: median(pageRequests),
      ratioTime: Math.round((median(page) / median(api)) * 10) / 10,
      floorFirstRenderMs: Math.round(median(floor)),
      ratioFloorToApi: Math.round((median(floor) / median(api)) * 10) / 10,
      ratioPageToFloor: Math.round((median(page) / median(floor)) * 100) / 100,
      ratioBytes: Math.round((median(pageBytes) / apiBytes) * 10) / 10,
      repeatVisitMs: Math.round(median(repeat)),
      repeatVisitTransferBytes: median(repeatBytes),
      ratioRepeatTime: Math.round((median(repeat) / median(api)) * 10) / 10,
      apiNewestFirstMs: Math.round(median(sorted.newest) * 10) / 10,
      apiPageAtHalfMs: Math.round(median(sorted.deepAsc) * 10) / 10,
      apiNewestFirstAtHalfMs: Math.round(median(sorted.deepDesc) * 10) / 10,
      rounds: {
        api: api.map(Math.round),
        page: page.map(Math.round),
        floor: floor.map(Math.round),
        repeat: repeat.map(Math.round),
      },
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await browser.close();
    await proc.stop();
  }
}

await fill();
await measure();
