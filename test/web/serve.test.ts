import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobPage } from '../../daemon/protocol/jobs.ts';
import type { QueueInfo } from '../../daemon/protocol/queues.ts';
import { type InProcessApi, startApi } from '../api/api-helpers.ts';

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
});
