import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeUsersFile } from '../api/api-helpers.ts';
import { basic, httpRequest } from '../api/http-client.ts';
import type { DaemonProcess } from '../helpers/daemon-process.ts';
import { makeEnv } from '../helpers/env.ts';
import { MAKE_AHEAD } from '../../daemon/tasks/materialise.ts';
import { freePort } from '../ssh/sshd.ts';
import { bootDaemon, launch, type TestBrowser, type WatchedPage } from './browser.ts';

const PASSWORD = 'web-page-test-password';
const ROOT = basic('root', PASSWORD);
/** Screenshots for a person to look at, and for docs/web.md (docs/images): set BATCHD_SCREENSHOTS=folder. */
const SHOTS = process.env.BATCHD_SCREENSHOTS;
/** The page reacts within a second; a loaded 2-core machine (scrypt, a busy dispatcher) may take longer. */
/** Evaluate an expression in the page (a string: the tests are type-checked without the DOM library). */
const inPage = <T = unknown>(page: Page, expression: string): Promise<T> => page.evaluate<T>(expression);
const rowIds = (page: Page): Promise<string[]> =>
  inPage(page, "[...document.querySelectorAll('table.jobs tbody tr')].map((tr) => tr.dataset.id)");
/** A 50 MB output: a browser must save it to disk, not hold it in the tab. */
const BIG = 50 * 1024 * 1024;
const poll = <T>(check: () => T | Promise<T>) => expect.poll(check, { timeout: 20_000, interval: 100 });

/**
 * The web page in real Chromium against the daemon as a real process on loopback, with basic and
 * token authentication on: root may do everything, alice may look and submit but not manage jobs.
 */
describe('the web page (Chromium against a real daemon)', () => {
  const env = makeEnv({
    config: {
      manager: { enabled: true, host: '127.0.0.1', port: 0, auth: { basic: true, token: true } },
      dispatcher: { workers: 3 },
    },
    queues: { default: {}, bulk: { enabled: false }, secret: {} },
    jobTypes: {
      gate: {
        title: 'Gated job',
        // Prints a line, then waits for a file the test creates once it has seen the line on the page.
        template: 'echo "started $tag"; while [ ! -e "$gate" ]; do sleep 0.1; done; echo "finished $tag"',
        params: [
          { name: 'tag', type: 'String' },
          { name: 'gate', type: 'String' },
        ],
      },
      echo: { template: "printf '%s\\n' $message", params: [{ name: 'message', type: 'String' }] },
      square: {
        template: 'echo $(($n * $n))',
        params: [{ name: 'n', type: 'Integer', min: 0, max: 100_000 }],
      },
      sleeper: { template: 'echo sleeping; sleep 60', params: [] },
      big: { template: `mkdir -p outputs && yes batchd | head -c ${BIG} > outputs/big.bin`, params: [] },
      render: {
        template: 'mkdir -p outputs && echo "frame $n" > outputs/frame-$n.txt && echo "$n" > "$out"',
        params: [
          { name: 'n', type: 'Integer' },
          { name: 'out', type: 'OutputFile', default: 'number.txt' },
        ],
      },
    },
  });
  let daemon: DaemonProcess | undefined;
  let url = '';
  let browser: TestBrowser;
  let root: WatchedPage;

  const api = async (method: string, route: string, body?: unknown, auth = ROOT): Promise<unknown> => {
    const res = await httpRequest(url, route, {
      method,
      headers: { ...auth, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (res.status >= 300) throw new Error(`${method} ${route}: ${res.status} ${res.text}`);
    return res.json();
  };
  const submit = async (queue: string, job: unknown): Promise<string> =>
    ((await api('POST', `/queue/${queue}`, job)) as { jobs: string[] }).jobs[0] as string;
  const badge = (page: Page) => page.locator('.job-head h1 .badge');
  const shot = async (page: Page, name: string): Promise<void> => {
    if (SHOTS !== undefined) await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };

  beforeAll(async () => {
    await writeUsersFile(
      env.etc,
      [
        { name: 'root', grants: [{ permission: 'SuperUser' }] },
        {
          name: 'alice',
          grants: [
            { permission: 'ViewQueues', queue_name: 'default' },
            { permission: 'ViewQueues', queue_name: 'bulk' },
            { permission: 'ViewJobs', queue_name: 'default' },
            { permission: 'ViewJobs', queue_name: 'bulk' },
            { permission: 'CreateJobs', queue_name: 'default' },
          ],
        },
      ],
      PASSWORD,
    );
    // A host nobody answers on: its connection failures are what the Hosts view shows.
    const key = path.join(env.root, 'dead_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    writeFileSync(path.join(env.root, 'known_hosts'), '# none\n');
    env.writeConfig('hosts/dead.yaml', {
      host_name: '127.0.0.1',
      port: await freePort(),
      user_name: 'root',
      private_key: key,
      known_hosts: path.join(env.root, 'known_hosts'),
      work_directory: path.join(env.root, 'remote'),
      connect_timeout: 2,
    });
    ({ proc: daemon, url } = await bootDaemon(env));
    browser = await launch();
    root = await browser.page();
  });
  afterAll(async () => {
    await browser?.close();
    await daemon?.stop();
    env.cleanup();
  });

  it('signs in with a password, shows the queues, loads nothing from another origin and logs no error', async () => {
    const { page } = root;
    await page.goto(`${url}/`);
    await page.getByLabel('User name', { exact: true }).fill('root');
    await page.getByLabel('Password', { exact: true }).fill('not the password');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await poll(() => page.locator('#signin-error').textContent()).toContain('Sign-in failed');

    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.locator('article.card h2', { hasText: 'bulk' }).waitFor();
    expect(await page.locator('article.card h2').allTextContents()).toEqual(['bulk', 'default', 'secret']);
    await poll(() => page.locator('#live').textContent()).toContain('live');
    expect(await page.locator('#who').textContent()).toContain('root');
    // The password was exchanged for a token kept in this tab's sessionStorage; no URL carries it.
    const token = await inPage<string | null>(page, "sessionStorage.getItem('batchd.token')");
    expect(token).toMatch(/\S{16,}/);
    expect(root.requests.length).toBeGreaterThan(3);
    expect(root.requests.filter((r) => !r.startsWith(`${url}/`))).toEqual([]);
    expect(root.requests.filter((r) => r.includes(token as string) || /token=/i.test(r))).toEqual([]);
    // The failed sign-in's 401 is the only error the browser reports.
    expect(root.consoleErrors.filter((e) => !e.includes('401'))).toEqual([]);
  });

  it('a job submitted through the form shows its output live while it runs, then finishes', async () => {
    const { page } = root;
    const gate = path.join(env.root, 'gate-1');
    await page.goto(`${url}/#/submit?queue=default&type=gate`);
    await page.getByLabel('tag', { exact: true }).fill('web-1');
    await page.getByLabel('gate', { exact: true }).fill(gate);
    await page.getByText('More: name, notes').click();
    await page.getByLabel('Name', { exact: true }).fill('gated from the form');
    await page.getByRole('button', { name: 'Submit', exact: true }).click();
    await page.waitForURL(/#\/job\//);
    await poll(() => page.locator('#log-stdout').textContent()).toContain('started web-1');
    // The line is on the page while the job still waits for the gate: it came live.
    expect(await badge(page).textContent()).toBe('running');
    expect(await page.locator('#log-stdout').textContent()).not.toContain('finished');
    await shot(page, 'job-running');
    writeFileSync(gate, '');
    await poll(() => page.locator('#log-stdout').textContent()).toContain('finished web-1');
    await poll(() => badge(page).textContent()).toBe('done');
    expect(await page.locator('h1').textContent()).toContain('gated from the form');
    expect(await page.locator('.panel', { hasText: 'Attempts' }).locator('tbody tr').count()).toBe(1);
  });

  it("a bad parameter is refused with the API's message beside its field", async () => {
    const { page } = root;
    await page.goto(`${url}/#/submit?queue=default&type=square`);
    await page.getByLabel('n', { exact: true }).fill('twelve');
    await page.getByRole('button', { name: 'Submit', exact: true }).click();
    await poll(() => page.locator('#p-n-error').textContent()).toContain('Expected an integer');
    expect(await page.getByLabel('n', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    expect(page.url()).toContain('#/submit');
  });

  it('cancels a running job from its page', async () => {
    const { page } = root;
    const id = await submit('default', { type: 'sleeper' });
    await page.goto(`${url}/#/job/${id}`);
    await poll(() => badge(page).textContent()).toBe('running');
    await page.getByRole('button', { name: 'Cancel job' }).click();
    await poll(() => badge(page).textContent()).toBe('cancelled');
    expect(await page.getByRole('button', { name: 'Retry job' }).count()).toBe(1);
  });

  it('pauses and resumes a running job from its page', async () => {
    const { page } = root;
    const id = await submit('default', { type: 'sleeper' });
    const pausedAt = async (): Promise<string | undefined> =>
      ((await api('GET', `/job/${id}`)) as { paused_at?: string }).paused_at;
    await page.goto(`${url}/#/job/${id}`);
    await poll(() => badge(page).first().textContent()).toBe('running');
    await page.getByRole('button', { name: 'Pause job' }).click();
    await page.getByRole('button', { name: 'Resume job' }).waitFor();
    expect(await badge(page).allTextContents()).toEqual(['running', 'paused']);
    expect(await pausedAt()).toMatch(/^\d{4}-/);
    await page.getByRole('button', { name: 'Resume job' }).click();
    await page.getByRole('button', { name: 'Pause job' }).waitFor();
    expect(await pausedAt()).toBeUndefined();
    await page.getByRole('button', { name: 'Cancel job' }).click();
    await poll(() => badge(page).first().textContent()).toBe('cancelled');
  });

  it('a task submitted over a range shows its progress bar moving to done', async () => {
    const { page } = root;
    await page.goto(`${url}/#/submit?queue=default&type=square`);
    await page.getByLabel('n', { exact: true }).fill('1');
    await page.getByLabel('Submit as a task over a range', { exact: true }).check();
    await page.getByLabel('Task name', { exact: true }).fill('squares');
    await page.getByLabel('From', { exact: true }).fill('1');
    await page.getByLabel('To', { exact: true }).fill('6');
    await page.getByRole('button', { name: 'Submit', exact: true }).click();
    await page.waitForURL(/#\/tasks\?queue=default&task=squares/);
    const bar = page.locator('[data-task="squares"] [role="progressbar"]');
    await poll(() => bar.getAttribute('aria-valuemax')).toBe('6');
    await poll(() => bar.getAttribute('aria-valuenow')).toBe('6');
    await poll(() => page.locator('[data-task="squares"] .badge').textContent()).toBe('resolved');
    expect(await page.locator('[data-task="squares"] [data-count="done"]').textContent()).toBe('6');
  });

  it('shows HTML in a name, notes and stdout as text', async () => {
    const { page } = root;
    const id = await submit('default', {
      type: 'echo',
      name: '<img src=x onerror="window.__xss=1">probe',
      notes: '<script>window.__xss=2</script>',
      params: { message: '<b>bold</b><script>window.__xss=3</script>' },
    });
    await page.goto(`${url}/#/job/${id}`);
    await poll(() => page.locator('#log-stdout').textContent()).toContain(
      '<b>bold</b><script>window.__xss=3</script>',
    );
    expect(await page.locator('.job-head h1').textContent()).toContain(
      '<img src=x onerror="window.__xss=1">probe',
    );
    expect(await page.locator('.notes').first().textContent()).toBe('<script>window.__xss=2</script>');
    expect(await page.locator('main img, main b, main script').count()).toBe(0);
    expect(await inPage(page, 'window.__xss')).toBeUndefined();
  });

  it('filters, sorts and pages by cursor through 2,000 queued jobs', async () => {
    const { page } = root;
    for (const n of [1, 2, 3])
      await submit('bulk', { type: 'echo', name: `needle ${n}`, params: { message: 'x' } });
    await api('POST', '/queue/bulk', { type: 'square', task: 'many', params: { n: { range: '1..2000' } } });
    // A task's jobs may still be arriving after the POST answers: page once they are all queued.
    await poll(async () => {
      const queues = (await api('GET', '/queue')) as { name: string; counts: { queued: number } }[];
      return queues.find((q) => q.name === 'bulk')?.counts.queued;
    }).toBe(2003);
    // The job list shows the jobs that have folders: those of a task are made a chunk ahead of the
    // dispatcher (tasks/materialise.ts), all it makes while the queue is disabled. Page once made.
    await poll(
      async () =>
        ((await api('GET', '/queue/bulk/jobs?status=queued&limit=1000')) as { jobs: unknown[] }).jobs.length,
    ).toBeGreaterThanOrEqual(MAKE_AHEAD + 3);
    await page.goto(`${url}/#/jobs?queue=bulk&state=queued`);
    const rows = page.locator('table.jobs tbody tr');
    await poll(() => rows.count()).toBe(50);
    const firstIds = await rowIds(page);
    const timings: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = await rows.first().getAttribute('data-id');
      const started = Date.now();
      await page.getByRole('link', { name: 'Next →' }).click();
      await poll(() => rows.first().getAttribute('data-id')).not.toBe(before);
      timings.push(Date.now() - started);
    }
    const third = await rowIds(page);
    expect(third).toHaveLength(50);
    expect(third.filter((id) => firstIds.includes(id))).toEqual([]);
    for (let i = 0; i < 3; i++) {
      const before = await rows.first().getAttribute('data-id');
      await page.getByRole('link', { name: '← Previous' }).click();
      await poll(() => rows.first().getAttribute('data-id')).not.toBe(before);
    }
    await poll(() => rowIds(page)).toEqual(firstIds);
    console.log(`next page over 2,000 queued jobs: ${timings.join(', ')} ms`);

    await page.getByLabel('Text', { exact: true }).fill('needle');
    await page.getByRole('button', { name: 'Filter' }).click();
    await poll(() => rows.count()).toBe(3);
    const submittedHeader = page.locator('th', { hasText: 'Submitted' });
    expect(await submittedHeader.getAttribute('aria-sort')).toBe('ascending');
    expect(await page.locator('th', { hasText: 'Priority' }).getAttribute('aria-sort')).toBe('none');
    expect(await rows.locator('td.name').allTextContents()).toEqual(['needle 1', 'needle 2', 'needle 3']);
    await page.getByRole('link', { name: /^Submitted/ }).click();
    await poll(() => submittedHeader.getAttribute('aria-sort')).toBe('descending');
    await poll(() => rows.locator('td.name').allTextContents()).toEqual(['needle 3', 'needle 2', 'needle 1']);
    await page.getByRole('link', { name: /^Submitted/ }).click();
    await poll(() => submittedHeader.getAttribute('aria-sort')).toBe('ascending');
    await poll(() => rows.locator('td.name').allTextContents()).toEqual(['needle 1', 'needle 2', 'needle 3']);

    // Newest first is the server's order over every job, not this page's: its pages go back in time.
    await page.goto(`${url}/#/jobs?queue=bulk&state=queued&sort=-submitted`);
    await poll(() => rows.count()).toBe(50);
    const newest = await rowIds(page);
    expect(newest).toEqual([...newest].sort().reverse());
    expect(newest.filter((id) => firstIds.includes(id))).toEqual([]);
    expect(newest[0]).toBe(
      ((await api('GET', '/queue/bulk/jobs?sort=-submitted&limit=1')) as { jobs: { id: string }[] }).jobs[0]
        ?.id,
    );
    await page.getByRole('link', { name: 'Next →' }).click();
    await poll(() => rows.first().getAttribute('data-id')).not.toBe(newest[0]);
    const older = await rowIds(page);
    expect(older.every((id) => id < (newest.at(-1) as string))).toBe(true);

    // Any sortable column orders every page: Priority, then highest first; Next goes on in that order.
    const needles = (await api('GET', '/queue/bulk/jobs?q=needle')) as { jobs: { id: string }[] };
    const [n1, n2] = needles.jobs.map((j) => j.id);
    await api('PUT', `/job/${n1}`, { priority: 5 });
    await api('PUT', `/job/${n2}`, { priority: 9 });
    await page.goto(`${url}/#/jobs?queue=bulk&state=queued&limit=25`);
    await poll(() => rows.count()).toBe(25);
    const priorityHeader = page.locator('th', { hasText: 'Priority' });
    await page.getByRole('link', { name: /^Priority/ }).click();
    await poll(() => priorityHeader.getAttribute('aria-sort')).toBe('ascending');
    expect(await submittedHeader.getAttribute('aria-sort')).toBe('none');
    await page.getByRole('link', { name: /^Priority/ }).click();
    await poll(() => priorityHeader.getAttribute('aria-sort')).toBe('descending');
    await poll(() => rowIds(page).then((ids) => ids.slice(0, 2))).toEqual([n2, n1]);
    const apiPages: string[][] = [];
    let cursor = '';
    for (let i = 0; i < 3; i++) {
      const q = `/queue/bulk/jobs?sort=-priority&limit=25${cursor && `&cursor=${encodeURIComponent(cursor)}`}`;
      const page = (await api('GET', q)) as { jobs: { id: string }[]; next_cursor: string };
      apiPages.push(page.jobs.map((j) => j.id));
      cursor = page.next_cursor;
    }
    expect(await rowIds(page)).toEqual(apiPages[0]);
    expect(await rows.locator('td[data-label="Priority"]').allTextContents()).toEqual([
      '9',
      '5',
      ...Array<string>(23).fill('0'),
    ]);
    for (const expectedIds of apiPages.slice(1)) {
      const before = await rows.first().getAttribute('data-id');
      await page.getByRole('link', { name: 'Next →' }).click();
      await poll(() => rows.first().getAttribute('data-id')).not.toBe(before);
      expect(await rowIds(page)).toEqual(expectedIds);
      expect(await priorityHeader.getAttribute('aria-sort')).toBe('descending');
    }
    // Equal priorities go by id, newest first in this direction, across the pages.
    const rest = apiPages.flat().slice(2);
    expect(rest).toEqual([...rest].sort().reverse());

    await page.goto(`${url}/#/jobs?queue=bulk&state=queued&type=square&limit=25`);
    await poll(() => rows.count()).toBe(25);
    expect(await rows.locator('td[data-label="Type"]').allTextContents()).toEqual(Array(25).fill('square'));
    await shot(page, 'jobs');
  });

  it("downloads a job's output file from its page, and a task's output files as one archive", async () => {
    const { page } = root;
    await api('POST', '/queue/default', {
      type: 'render',
      task: 'renders',
      params: { n: { range: '1..3' } },
    });
    await poll(
      async () => ((await api('GET', '/queue/default/task/renders')) as { resolved: boolean }).resolved,
    ).toBe(true);
    // Jobs made in the same millisecond sort by their random part: pick the task's first by its index.
    const done = (await api('GET', '/queue/default/jobs?status=done&task=renders')) as {
      jobs: { id: string; task_index: number }[];
    };
    const first = done.jobs.find((j) => j.task_index === 0);
    await page.goto(`${url}/#/job/${first?.id}`);
    const button = page.getByRole('button', { name: 'Download outputs/frame-1.txt' });
    await button.waitFor();
    expect(await page.locator('.panel.outputs li').allTextContents()).toEqual([
      'Download outputs/frame-1.txt 8 B',
      'Download number.txt 2 B · parameter out',
    ]);
    const [one] = await Promise.all([page.waitForEvent('download'), button.click()]);
    expect(one.suggestedFilename()).toBe('frame-1.txt');
    expect(readFileSync(await one.path(), 'utf8')).toBe('frame 1\n');
    await shot(page, 'job-outputs');

    await page.goto(`${url}/#/tasks?queue=default&task=renders`);
    const collect = page
      .locator('[data-task="renders"]')
      .getByRole('button', { name: 'Collect output files' });
    const [archive] = await Promise.all([page.waitForEvent('download'), collect.click()]);
    expect(archive.suggestedFilename()).toBe('renders-outputs.tar');
    const listed = execFileSync('tar', ['-tf', await archive.path()], { encoding: 'utf8' });
    expect(listed.trim().split('\n')).toEqual([
      '0/outputs/frame-1.txt',
      '0/number.txt',
      '1/outputs/frame-2.txt',
      '1/number.txt',
      '2/outputs/frame-3.txt',
      '2/number.txt',
    ]);
  });

  it('saves a 50 MB output to disk through a one-use download ticket, with no token in the link', async () => {
    const { page } = root;
    const id = await submit('default', { type: 'big' });
    await poll(async () => ((await api('GET', `/job/${id}`)) as { status: string }).status).toBe('done');
    await page.goto(`${url}/#/job/${id}`);
    const button = page.getByRole('button', { name: /^Download outputs\/big\.bin/ });
    await button.waitFor();
    const [saved] = await Promise.all([page.waitForEvent('download'), button.click()]);
    expect(saved.suggestedFilename()).toBe('big.bin');
    const link = new URL(saved.url());
    expect(link.pathname).toMatch(/^\/download\/[\w-]{43}$/);
    expect(link.search).toBe('');
    const token = await inPage<string | null>(page, "sessionStorage.getItem('batchd.token')");
    expect(token).not.toBeNull();
    expect(saved.url()).not.toContain(token);
    const onDisk = await saved.path();
    expect(statSync(onDisk).size).toBe(BIG);
    const expected = createHash('sha256').update(Buffer.alloc(BIG, 'batchd\n')).digest('hex');
    expect(createHash('sha256').update(readFileSync(onDisk)).digest('hex')).toBe(expected);
    // The link served once: it is spent.
    expect((await httpRequest(url, link.pathname)).status).toBe(404);
  });

  it("shows a host's state, its running jobs and its last error", async () => {
    const { page } = root;
    await submit('default', { type: 'echo', host: 'dead', params: { message: 'nowhere' } });
    await page.goto(`${url}/#/hosts`);
    const card = page.locator('article.card[data-host="dead"]');
    await poll(() => card.locator('.badge').textContent()).toBe('failed');
    await poll(() => card.locator('details.errors summary').textContent()).toContain('Last error');
    expect(await card.locator('details.errors li').first().textContent()).toMatch(/ECONNREFUSED/);
    expect(await card.locator('p.state').textContent()).toMatch(/ECONNREFUSED.* · since /);
    expect(await card.textContent()).toContain('0 running jobs');
    await shot(page, 'hosts');
  });

  it('a user without ManageJobs sees no job actions, and the API refuses a forged cancel', async () => {
    const created = (await api('POST', '/token', { name: 'alice web' }, basic('alice', PASSWORD))) as {
      token: string;
    };
    const alice = await browser.page();
    const { page } = alice;
    await page.goto(`${url}/`);
    await page.getByLabel('Token (from batch token or POST /token)', { exact: true }).fill(created.token);
    await page.getByRole('button', { name: 'Sign in with token' }).click();
    await page.locator('article.card h2', { hasText: 'default' }).waitFor();
    expect(await page.locator('article.card h2').allTextContents()).toEqual(['bulk', 'default']);
    expect(await page.getByRole('button', { name: /^(Pause|Resume)/ }).count()).toBe(0);

    const queued = ((await api('GET', '/queue/bulk/jobs?limit=1')) as { jobs: { id: string }[] }).jobs[0]?.id;
    await page.goto(`${url}/#/job/${queued}`);
    await page.locator('.job-head h1').waitFor();
    await page.locator('.panel.wait').waitFor();
    expect(await page.locator('.panel.wait').textContent()).toContain('the queue is paused');
    expect(await page.getByRole('button', { name: /Cancel|Retry|Set|Move|Save notes/ }).count()).toBe(0);
    const forged = await inPage<{ status: number; code: string }>(
      page,
      `fetch('/job/${queued}/cancel', {
         method: 'POST',
         headers: { Authorization: 'Bearer ' + sessionStorage.getItem('batchd.token') },
       }).then(async (res) => ({ status: res.status, code: (await res.json()).error.code }))`,
    );
    expect(forged.status).toBe(403);
    expect(forged.code).toBe('FORBIDDEN');

    // A view the user may not see says so plainly.
    await page.goto(`${url}/#/jobs?queue=secret`);
    await page.locator('.panel.error').waitFor();
    expect(await page.locator('.panel.error h1').textContent()).toBe('Not permitted');
    expect(await page.locator('.panel.error').textContent()).toContain('lacks the ViewJobs permission');
    expect(alice.requests.filter((r) => !r.startsWith(`${url}/`))).toEqual([]);
  });

  it('fits a phone-width screen without sideways scrolling', async () => {
    const token = await inPage<string | null>(root.page, "sessionStorage.getItem('batchd.token')");
    const phone = await browser.page({ width: 390, height: 844 });
    const { page } = phone;
    await page.goto(`${url}/`);
    await page.getByLabel('Token (from batch token or POST /token)', { exact: true }).fill(token ?? '');
    await page.getByRole('button', { name: 'Sign in with token' }).click();
    await page.locator('article.card').first().waitFor();
    for (const view of ['#/queues', '#/jobs?state=all', '#/submit', '#/tasks', '#/hosts']) {
      await page.goto(`${url}/${view}`);
      await page.locator('main h1').waitFor();
      expect(await inPage<number>(page, 'document.documentElement.scrollWidth'), view).toBeLessThanOrEqual(
        390,
      );
    }
    expect(phone.consoleErrors).toEqual([]);
  });
});
