import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import type { JobInfo } from '../../daemon/protocol/jobs.ts';
import { openOutput } from '../../daemon/views/outputs.ts';
import { type Auth, eventually, type InProcessApi, startApi, writeUsersFile } from '../api/api-helpers.ts';

const PASSWORD = 'outputs test password';
const ROOT: Auth = { basic: ['root', PASSWORD] };
const ALICE: Auth = { basic: ['alice', PASSWORD] };
const SECRET = 'a secret outside every job folder';

interface Listing {
  files: { name: string; size: number; param?: string }[];
  elsewhere: { param: string; path: string }[];
}

/**
 * A job's output files through the API: what is listed (its `outputs/` folder and OutputFile
 * parameters inside its folder), what is served (only those, as attachments), and what never is
 * (links, FIFOs, `..`, the daemon's own files, another queue's job).
 */
describe("a job's output files", () => {
  let t: InProcessApi;
  let outside: string;
  let jobId = '';

  const done = async (id: string): Promise<JobInfo> =>
    eventually(async () => {
      const job = (await t.json<JobInfo>('GET', `/job/${id}`, { auth: ROOT })).body;
      return ['done', 'failed'].includes(job.status) && job;
    }, 30_000);
  const submit = async (queue: string, job: unknown): Promise<string[]> => {
    const res = await t.json<{ jobs: string[] }>('POST', `/queue/${queue}`, { auth: ROOT, body: job });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.jobs;
  };
  const file = (id: string, name: string, auth = ROOT) =>
    t.request('GET', `/job/${id}/outputs/${encodeURIComponent(name)}`, { auth });

  beforeAll(async () => {
    outside = mkdtempSync(path.join(tmpdir(), 'batchd-outside-'));
    writeFileSync(path.join(outside, 'secret.txt'), SECRET);
    t = await startApi({
      auth: { basic: true, token: false },
      queues: { default: {}, secret: {} },
      jobTypes: {
        render: {
          // Publishes two files under outputs/, writes its declared output, and leaves traps: a link
          // to a file outside, a link to a folder outside, a FIFO and a dotfile.
          template: [
            'mkdir -p outputs/sub',
            'echo "frame $n" > outputs/frame-$n.txt',
            'echo nested > outputs/sub/b.txt',
            'echo declared > "$out"',
            `ln -s ${outside}/secret.txt outputs/link.txt`,
            `ln -s ${outside} outputs/dirlink`,
            'mkfifo outputs/pipe',
            'echo hidden > outputs/.hidden',
          ].join('\n'),
          params: [
            { name: 'n', type: 'Integer', default: 1 },
            { name: 'out', type: 'OutputFile', default: 'declared.txt' },
            { name: 'far', type: 'OutputFile', default: '../../../escape.txt' },
          ],
        },
      },
    });
    await writeUsersFile(
      t.env.etc,
      [
        { name: 'root', grants: [{ permission: 'SuperUser' }] },
        {
          name: 'alice',
          grants: (['ViewJobs', 'ViewQueues'] as const).map((permission) => ({
            permission,
            queue_name: 'default',
          })),
        },
      ],
      PASSWORD,
    );
    await eventually(async () => (await t.request('GET', '/whoami', { auth: ROOT })).status === 200);
    [jobId = ''] = await submit('default', { type: 'render', params: { n: 7 } });
    expect((await done(jobId)).status).toBe('done');
  });
  afterAll(async () => {
    await t?.close();
    rmSync(outside, { recursive: true, force: true });
  });

  it('lists the files under outputs/ and the declared ones inside the job folder, nothing else', async () => {
    const res = await t.json<Listing>('GET', `/job/${jobId}/outputs`, { auth: ROOT });
    expect(res.status).toBe(200);
    expect(res.body.files.map((f) => [f.name, f.size, f.param])).toEqual([
      ['outputs/frame-7.txt', 'frame 7\n'.length, undefined],
      ['outputs/sub/b.txt', 'nested\n'.length, undefined],
      ['declared.txt', 'declared\n'.length, 'out'],
    ]);
    expect(res.body.elsewhere).toEqual([{ param: 'far', path: '../../../escape.txt' }]);
  });

  it('serves a listed file as an attachment with its exact bytes', async () => {
    const res = await file(jobId, 'outputs/frame-7.txt');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe(
      `attachment; filename="frame-7.txt"; filename*=UTF-8''frame-7.txt`,
    );
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toContain('sandbox');
    expect(await res.text()).toBe('frame 7\n');
    expect(await (await file(jobId, 'declared.txt')).text()).toBe('declared\n');
  });

  it('refuses links, a FIFO, dotfiles, `..` and the daemon’s own files with a 404', async () => {
    for (const name of [
      'outputs/link.txt',
      'outputs/dirlink/secret.txt',
      'outputs/pipe',
      'outputs/.hidden',
      'outputs/../job.yaml',
      'outputs/sub/../../state.yaml',
      `../../../../../../..${outside}/secret.txt`,
      `${outside}/secret.txt`,
      'job.yaml',
      'stdout.log',
      '../escape.txt',
      'outputs',
    ]) {
      const res = await file(jobId, name);
      expect(res.status, name).toBe(404);
      expect(await res.text(), name).not.toContain(SECRET);
    }
    // The same through a raw `..` in the path, which never reaches the route as a file name.
    const raw = await t.request('GET', `/job/${jobId}/outputs/../../../../etc/passwd`, { auth: ROOT });
    expect(raw.status).toBe(404);
  });

  it('never opens through a folder swapped for a link after it was listed', async () => {
    const where = t.daemon.locate(jobId);
    if (where === undefined) throw new Error('job not found');
    const opened = await openOutput(where.dir, 'outputs/sub/b.txt');
    await opened.handle.close();
    // The race: outputs/sub becomes a link to a folder outside that holds a b.txt of its own.
    mkdirSync(path.join(outside, 'sub'));
    writeFileSync(path.join(outside, 'sub', 'b.txt'), SECRET);
    rmSync(path.join(where.dir, 'outputs', 'sub'), { recursive: true });
    symlinkSync(path.join(outside, 'sub'), path.join(where.dir, 'outputs', 'sub'));
    await expect(openOutput(where.dir, 'outputs/sub/b.txt')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const res = await file(jobId, 'outputs/sub/b.txt');
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain(SECRET);
  });

  it('answers a job of a queue the caller may not view exactly as a missing job, as GET /job/:id does', async () => {
    const [hidden = ''] = await submit('secret', { type: 'render', params: { n: 2 } });
    await done(hidden);
    const missing = `${hidden.slice(0, -4)}zzzz`;
    const answers = await Promise.all(
      [
        `/job/${hidden}`,
        `/job/${hidden}/outputs`,
        `/job/${hidden}/outputs/${encodeURIComponent('outputs/frame-2.txt')}`,
        `/job/${missing}/outputs`,
        `/job/${missing}/outputs/${encodeURIComponent('outputs/frame-2.txt')}`,
      ].map(async (route) => {
        const res = await t.json<{ error: { code: string } }>('GET', route, { auth: ALICE });
        return [res.status, res.body.error.code];
      }),
    );
    expect(answers).toEqual(Array(5).fill([404, 'UNKNOWN_JOB']));
    expect((await file(hidden, 'outputs/frame-2.txt')).status).toBe(200);
    expect((await file(jobId, 'outputs/frame-7.txt', ALICE)).status).toBe(200);
  });

  it("collects a task's outputs into one tar in the task's order, which tar(1) reads", async () => {
    await submit('default', { type: 'render', task: 'frames', params: { n: { range: '1..3' } } });
    const status = await eventually(async () => {
      const s = (await t.json<{ resolved: boolean }>('GET', '/queue/default/task/frames', { auth: ROOT }))
        .body;
      return s.resolved && s;
    }, 30_000);
    expect(status.resolved).toBe(true);
    const res = await t.request('GET', '/queue/default/task/frames/outputs', { auth: ROOT });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    expect(res.headers.get('content-disposition')).toContain('attachment; filename="frames-outputs.tar"');
    const dir = mkdtempSync(path.join(tmpdir(), 'batchd-tar-'));
    try {
      writeFileSync(path.join(dir, 'all.tar'), Buffer.from(await res.arrayBuffer()));
      const listed = spawnSync('tar', ['-tf', 'all.tar'], { cwd: dir, encoding: 'utf8' });
      expect(listed.status, listed.stderr).toBe(0);
      expect(listed.stdout.trim().split('\n')).toEqual(
        ['0', '1', '2'].flatMap((i) => [
          `${i}/outputs/frame-${Number(i) + 1}.txt`,
          `${i}/outputs/sub/b.txt`,
          `${i}/declared.txt`,
        ]),
      );
      expect(spawnSync('tar', ['-xf', 'all.tar'], { cwd: dir }).status).toBe(0);
      expect(readFileSync(path.join(dir, '2/outputs/frame-3.txt'), 'utf8')).toBe('frame 3\n');
      // Alice may not view the queue "secret": its task's archive is refused.
      expect((await t.request('GET', '/queue/secret/task/frames/outputs', { auth: ALICE })).status).toBe(403);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves a file through a download ticket: once, within its minute, to its own user, without credentials', async () => {
    const name = encodeURIComponent('outputs/frame-7.txt');
    const ticket = async (route: string, auth: Auth = ALICE) => {
      const res = await t.json<{ url: string; expires_at: string }>('POST', `${route}/ticket`, { auth });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body;
    };
    const one = await ticket(`/job/${jobId}/outputs/${name}`);
    expect(one.url).toMatch(/^\/download\/[\w-]{43}$/);
    const ttl = Date.parse(one.expires_at) - Date.now();
    expect(ttl).toBeGreaterThan(30_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    // A plain GET with no Authorization header, as a browser's navigation.
    const got = await t.request('GET', one.url);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-disposition')).toContain('attachment; filename="frame-7.txt"');
    expect(got.headers.get('content-security-policy')).toContain('sandbox');
    expect(await got.text()).toBe('frame 7\n');
    // Used: gone.
    expect((await t.request('GET', one.url)).status).toBe(404);

    // Presented by another user: refused, and spent.
    const two = await ticket(`/job/${jobId}/outputs/${name}`);
    const stolen = await t.json<{ error: { message: string } }>('GET', two.url, { auth: ROOT });
    expect(stolen.status).toBe(404);
    expect(stolen.body.error.message).not.toContain(two.url.slice('/download/'.length));
    expect((await t.request('GET', two.url, { auth: ALICE })).status).toBe(404);

    // Past its minute: refused.
    const three = await ticket(`/job/${jobId}/outputs/${name}`);
    const later = Date.now() + 61_000;
    const clock = vi.spyOn(Date, 'now').mockReturnValue(later);
    try {
      expect((await t.request('GET', three.url)).status).toBe(404);
    } finally {
      clock.mockRestore();
    }

    // No ticket without credentials, for a file that is not an output, or for a job the user may not view.
    expect((await t.request('POST', `/job/${jobId}/outputs/${name}/ticket`)).status).toBe(401);
    expect((await t.request('POST', `/job/${jobId}/outputs/job.yaml/ticket`, { auth: ALICE })).status).toBe(
      404,
    );
    const [hidden = ''] = (
      await t.json<{ jobs: JobInfo[] }>('GET', '/queue/secret/jobs?status=done', { auth: ROOT })
    ).body.jobs.map((j) => j.id);
    expect(hidden).not.toBe('');
    const refused = await t.request(
      'POST',
      `/job/${hidden}/outputs/${encodeURIComponent('outputs/frame-2.txt')}/ticket`,
      {
        auth: ALICE,
      },
    );
    expect(refused.status).toBe(404);

    // A task's archive by ticket too; not for a queue the user may not view.
    const tar = await ticket('/queue/default/task/frames/outputs');
    const archive = await t.request('GET', tar.url);
    expect(archive.status).toBe(200);
    expect(archive.headers.get('content-type')).toBe('application/x-tar');
    expect((await archive.arrayBuffer()).byteLength % 512).toBe(0);
    expect(
      (await t.request('POST', '/queue/secret/task/frames/outputs/ticket', { auth: ALICE })).status,
    ).toBe(403);
  });
});
