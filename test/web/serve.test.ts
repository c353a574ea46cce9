import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { HostInfo } from '../../daemon/protocol/config.ts';
import type { JobPage } from '../../daemon/protocol/jobs.ts';
import type { QueueInfo } from '../../daemon/protocol/queues.ts';
import { freePort } from '../ssh/sshd.ts';
import { eventually, type InProcessApi, startApi } from '../api/api-helpers.ts';

/** A window that opens two hours from now (UTC), so the queue on it is closed now. */
const opensHour = (new Date().getUTCHours() + 2) % 24;
const two = (n: number): string => String(n).padStart(2, '0');
const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../daemon/web');

describe('the daemon serves the web page', () => {
  let t: InProcessApi;
  beforeAll(async () => {
    t = await startApi({
      queues: {
        default: {},
        held: { enabled: false, schedule_name: 'never' },
        later: { schedule_name: 'later' },
      },
      schedules: {
        never: { weekdays: [] },
        later: { time: [{ begin: `${two(opensHour)}:00`, end: `${two(opensHour)}:30` }], timezone: 'UTC' },
      },
    });
  });
  afterAll(() => t.close());

  it('answers / with the page, a CSP that allows only its own scripts, and an ETag', async () => {
    const res = await t.request('GET', '/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const etag = res.headers.get('etag');
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect(await res.text()).toContain('<script type="module" src="/ui/app.js">');
    const again = await t.request('GET', '/', { headers: { 'if-none-match': etag ?? '' } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
  });

  it('serves each file gzipped to a client that takes gzip, with its own ETag, and as it is otherwise', async () => {
    const onDisk = readFileSync(path.join(WEB, 'jobs.js'));
    const zipped = await t.request('GET', '/ui/jobs.js', {
      headers: { 'accept-encoding': 'gzip, deflate, br' },
    });
    expect(zipped.status).toBe(200);
    expect(zipped.headers.get('content-encoding')).toBe('gzip');
    expect(zipped.headers.get('vary')).toBe('Accept-Encoding');
    const body = Buffer.from(await zipped.arrayBuffer());
    expect(body.length).toBeLessThan(onDisk.length / 2);
    expect(gunzipSync(body).equals(onDisk)).toBe(true);
    const zippedTag = zipped.headers.get('etag') ?? '';

    const plain = await t.request('GET', '/ui/jobs.js', {
      headers: { 'accept-encoding': 'gzip;q=0, identity' },
    });
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(Buffer.from(await plain.arrayBuffer()).equals(onDisk)).toBe(true);
    const plainTag = plain.headers.get('etag') ?? '';
    expect(plainTag).not.toBe(zippedTag);

    // A revalidation answers 304 for the encoding asked for, and sends the file for the other.
    const again = { 'accept-encoding': 'gzip', 'if-none-match': zippedTag };
    expect((await t.request('GET', '/ui/jobs.js', { headers: again })).status).toBe(304);
    const other = { 'if-none-match': zippedTag };
    expect((await t.request('GET', '/ui/jobs.js', { headers: other })).status).toBe(200);
    const list = { 'accept-encoding': 'gzip', 'if-none-match': `"stale", ${zippedTag}` };
    expect((await t.request('GET', '/ui/jobs.js', { headers: list })).status).toBe(304);
  });

  it('serves the assets under /ui/ with their content types, and nothing else', async () => {
    const js = await t.request('GET', '/ui/app.js');
    expect([js.status, js.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8']);
    const css = await t.request('GET', '/ui/style.css');
    expect([css.status, css.headers.get('content-type')]).toEqual([200, 'text/css; charset=utf-8']);
    for (const probe of ['/ui/nosuch.js', '/ui/..%2Fapi%2Fapp.ts', '/ui/%2E%2E%2Fweb.ts', '/ui/'])
      expect((await t.request('GET', probe)).status, probe).toBe(404);
  });

  it('has no inline script, no other origin and no HTML parsing of data in its files', () => {
    const files = readdirSync(WEB);
    expect(files).toEqual(expect.arrayContaining(['index.html', 'app.js', 'style.css']));
    const html = readFileSync(path.join(WEB, 'index.html'), 'utf8');
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="/ui/app.js">']);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    for (const file of files) {
      const text = readFileSync(path.join(WEB, file), 'utf8');
      expect(text, file).not.toMatch(/\b(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i);
      expect(text, file).not.toMatch(
        /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/,
      );
    }
  });

  it("tells whether a queue's schedule is open, and when a closed one opens", async () => {
    const queues = (await t.json<QueueInfo[]>('GET', '/queue')).body;
    expect(queues.find((q) => q.name === 'default')).toMatchObject({ schedule_open: true, opens_at: null });
    expect(queues.find((q) => q.name === 'held')).toMatchObject({ schedule_open: false, opens_at: null });
    const later = queues.find((q) => q.name === 'later');
    expect(later?.schedule_open).toBe(false);
    const opens = new Date(later?.opens_at ?? 0);
    expect([opens.getUTCHours(), opens.getUTCMinutes(), opens.getUTCSeconds()]).toEqual([opensHour, 0, 0]);
    expect(opens.getTime() - Date.now()).toBeGreaterThan(3_600_000);
    expect(opens.getTime() - Date.now()).toBeLessThanOrEqual(2 * 3_600_000);
  });

  it('filters the job list by type, owner, task and free text, paging by cursor', async () => {
    const post = async (job: unknown) =>
      expect((await t.request('POST', '/queue/held', { body: job })).status).toBe(201);
    await post({ type: 'echo', name: 'first needle', params: { message: 'a' } });
    await post({ type: 'sleep', params: { seconds: 2 }, notes: 'A NEEDLE in the notes' });
    await post({ type: 'echo', task: 'batch', params: { message: { range: '1..5' } } });
    const list = async (query: string) => (await t.json<JobPage>('GET', `/queue/held/jobs?${query}`)).body;
    const names = (page: JobPage) => page.jobs.map((j) => j.type + (j.task === null ? '' : `:${j.task}`));

    expect(names(await list('q=needle'))).toEqual(['echo', 'sleep']);
    expect(names(await list('type=sleep'))).toEqual(['sleep']);
    const batch = (await list('task=batch')).jobs;
    expect(batch.map((j) => j.task_index).sort()).toEqual([0, 1, 2, 3, 4]);
    expect((await list('user=nobody')).jobs).toEqual([]);
    expect((await list('user=anonymous')).jobs).toHaveLength(7);
    const first = await list('task=batch&limit=2');
    expect(first.jobs).toHaveLength(2);
    const second = await list(`task=batch&limit=2&cursor=${first.next_cursor}`);
    expect(second.jobs.map((j) => j.id)).toEqual(batch.slice(2, 4).map((j) => j.id));
    // Messages are matched as text too.
    expect((await list('q=4')).jobs.map((j) => j.params.message)).toContain('4');
    expect((await t.json('GET', '/queue/held/jobs?type=no%20such')).status).toBe(400);
  });

  it('sorts the job list newest first on the server, and the cursor pages through all of it either way', async () => {
    const queue = 'held';
    for (let i = 0; i < 3; i++)
      expect(
        (
          await t.request('POST', `/queue/${queue}`, {
            body: { type: 'echo', task: `sorted${i}`, params: { message: { range: '1..4' } } },
          })
        ).status,
      ).toBe(201);
    const all = async (query: string, limit: number): Promise<string[]> => {
      const ids: string[] = [];
      let cursor = '';
      for (let pages = 0; pages < 100; pages++) {
        const page = (
          await t.json<JobPage>(
            'GET',
            `/queue/${queue}/jobs?${query}&limit=${limit}${cursor && `&cursor=${cursor}`}`,
          )
        ).body;
        ids.push(...page.jobs.map((j) => j.id));
        if (page.next_cursor === null) return ids;
        cursor = page.next_cursor;
      }
      throw new Error('more than 100 pages');
    };
    const oldestFirst = await all('sort=submitted', 1000);
    expect(oldestFirst.length).toBeGreaterThanOrEqual(12);
    expect(oldestFirst).toEqual([...oldestFirst].sort());
    expect(await all('', 5)).toEqual(oldestFirst);
    expect(await all('sort=-submitted', 5)).toEqual([...oldestFirst].reverse());
    expect(await all('sort=-submitted', 1)).toEqual([...oldestFirst].reverse());
    // With a filter, and over every queue.
    const task1 = (await all('task=sorted1', 100)).reverse();
    expect(await all('task=sorted1&sort=-submitted', 3)).toEqual(task1);
    const everywhere = (await t.json<JobPage>('GET', '/jobs?sort=-submitted&limit=3')).body.jobs;
    expect(everywhere.map((j) => j.id)).toEqual(oldestFirst.slice(-3).reverse());
    expect((await t.json('GET', `/queue/${queue}/jobs?sort=name`)).status).toBe(400);
  });

  it("reports a failing host's state, since when, and its last errors", async () => {
    const port = await freePort(); // nothing listens there: every connection is refused
    const key = path.join(t.env.root, 'dead_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    writeFileSync(path.join(t.env.root, 'known_hosts'), '# none\n');
    t.env.writeConfig('hosts/dead.yaml', {
      host_name: '127.0.0.1',
      port,
      user_name: 'root',
      private_key: key,
      known_hosts: path.join(t.env.root, 'known_hosts'),
      work_directory: path.join(t.env.root, 'remote'),
      connect_timeout: 2,
      backoff: { initial: 0.2, max: 0.4 },
    });
    await eventually(async () =>
      (await t.json<HostInfo[]>('GET', '/host')).body.some((h) => h.name === 'dead'),
    );
    // Two jobs, one after the other's failure: two connection failures, one error each.
    const errorsOf = async (n: number) =>
      eventually(async () => {
        const host = (await t.json<HostInfo[]>('GET', '/host')).body.find((h) => h.name === 'dead');
        return (host?.errors?.length ?? 0) >= n && host;
      }, 30_000);
    for (const n of [1, 2]) {
      const job = { type: 'echo', host: 'dead', params: { message: `never ${n}` } };
      expect((await t.request('POST', '/queue/default', { body: job })).status).toBe(201);
      await errorsOf(n);
      await new Promise((r) => setTimeout(r, 500)); // the host's back-off (0.2 s) is over
    }
    const dead = await errorsOf(2);
    expect(dead.state).toBe('failed');
    expect(dead.reason).toMatch(/ECONNREFUSED|refused/i);
    expect(Date.parse(dead.since ?? '')).toBeGreaterThan(Date.now() - 60_000);
    expect(dead.errors?.[0]?.reason).toMatch(/ECONNREFUSED|refused/i);
    expect(dead.errors?.length).toBeLessThanOrEqual(5);
    const times = (dead.errors ?? []).map((e) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });
});
