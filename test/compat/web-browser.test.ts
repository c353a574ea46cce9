import { existsSync, readFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { launch, type TestBrowser } from '../web/browser.ts';
import { original } from './original.ts';

/**
 * batchd's web client (web/batch.html), unchanged, served by the daemon from the folder that
 * `manager.web_client.path` names, in headless Chromium. The page loads jQuery from Google's CDN:
 * the test serves Debian's copy (libjs-jquery) for that one URL and refuses every other outside one.
 */
const JQUERY = '/usr/share/javascript/jquery/jquery.min.js';
const D3 = '/usr/share/javascript/d3/d3.min.js';
const CDN: Record<string, string> = {
  'https://ajax.googleapis.com/ajax/libs/jquery/3.2.1/jquery.min.js': JQUERY,
  'https://d3js.org/d3.v3.min.js': D3,
};

describe("batchd's web client in a browser", () => {
  let d: ApiDaemon;
  let browser: TestBrowser;

  beforeAll(async () => {
    for (const file of [JQUERY, D3])
      if (!existsSync(file)) throw new Error(`${file} missing: apt-get install libjs-jquery libjs-d3`);
    d = await startApiDaemon({
      manager: { web_client: { path: original('web') } },
      jobTypes: {
        echo: {
          title: 'Echo',
          template: "printf '%s\\n' $message",
          params: [{ name: 'message', type: 'String', title: 'Message', default: 'hi' }],
        },
      },
    });
    browser = await launch();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await d?.stop();
  });

  /** A page whose CDN scripts come from Debian's packages; nothing else leaves the daemon. */
  const open = async (): Promise<Awaited<ReturnType<TestBrowser['page']>>> => {
    const watched = await browser.page();
    await watched.page.route('**/*', async (route) => {
      const url = route.request().url();
      if (url.startsWith(d.url)) return route.continue();
      const local = CDN[url];
      if (local !== undefined)
        return route.fulfill({ body: readFileSync(local, 'utf8'), contentType: 'text/javascript' });
      return route.abort();
    });
    return watched;
  };

  it('lists the queue, enqueues through its form, and shows the job row, the stats and the output', async () => {
    const { page, consoleErrors } = await open();
    await page.goto(`${d.url}/batch.html`);
    await page.locator('#queuelist option').first().waitFor({ state: 'attached' });
    expect(await page.locator('#queuelist option').allTextContents()).toEqual(['[*] default']);
    await page.locator('#jobparams input').first().waitFor({ state: 'attached' });
    expect(await page.locator('#selecttype option').allTextContents()).toEqual(['Shell command', 'Echo']);
    await page.selectOption('#selecttype', 'echo');
    await page.locator('#jobparams input[name=message]').waitFor({ state: 'attached' });
    expect(await page.locator('#schedule_name').textContent()).toBe('anytime');
    expect(await page.locator('#selecthost option').allTextContents()).toEqual([
      '<Use default for this queue>',
    ]);

    await page.fill('#jobparams input[name=message]', 'from the browser');
    await page.click('input[value=Enqueue]');
    await page.locator('#jobslist tr.Done').waitFor({ state: 'attached', timeout: 20_000 });
    const cells = await page.locator('#jobslist tr.Done td').allTextContents();
    expect(cells.slice(0, 5)).toEqual([expect.stringMatching(/^\d+$/), cells[0], 'echo', '*', 'Done']);
    expect(cells[7]).toBe('anonymous');
    await page.locator('#queue_stats', { hasText: 'Done: 1' }).waitFor({ state: 'attached' });
    expect(await page.locator('#queue_stats').textContent()).toBe(
      'New: 0, Processing: 0, Done: 1, Failed: 0',
    );

    await page.click('#jobslist tr.Done');
    await page.locator('#stdout pre').first().waitFor({ state: 'attached' });
    expect(await page.locator('#stdout pre').allTextContents()).toEqual(['from the browser\n']);
    expect(await page.locator('#viewjob_status').textContent()).toBe('Done');
    expect(consoleErrors).toEqual([]);
  }, 60_000);

  it("draws monitor.html's charts from /monitor/<prefix>/query", async () => {
    const { page, consoleErrors } = await open();
    await page.goto(`${d.url}/monitor.html`);
    for (const chart of ['#jobs_stats', '#hosts_usage', '#memory_used', '#http_requests'])
      await page.waitForSelector(`${chart} svg`, { timeout: 20_000 });
    // The charts are drawn first, their legends once the first query answers.
    await page.waitForSelector('#jobs_stats .c3-legend-item text', { timeout: 20_000 });
    await page.waitForSelector('#memory_used .c3-legend-item text', { timeout: 20_000 });
    const legend = await page.locator('#jobs_stats .c3-legend-item text').allTextContents();
    expect(legend).toEqual(expect.arrayContaining(['batchd.jobs.New', 'batchd.jobs.Done']));
    expect(await page.locator('#memory_used .c3-legend-item text').allTextContents()).toEqual([
      'rts.gc.current_bytes_used',
    ]);
    expect(consoleErrors).toEqual([]);
  }, 60_000);
});
