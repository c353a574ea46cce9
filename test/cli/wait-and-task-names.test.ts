import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { blockUntil, touch } from '../helpers/dispatch.ts';
import { waitFor } from '../helpers/env.ts';
import { type ApiDaemon, enqueueJob, startApiDaemon } from './api-daemon.ts';

/** `HH:MM` in UTC, `minutes` from now. */
const utcClock = (minutes: number): string =>
  new Date(Date.now() + minutes * 60_000).toISOString().slice(11, 16);

/**
 * A queued job says why it waits (GET /job/:id `waiting`, `batch job`, one log line per new
 * reason), and a task's jobs can be named by the task and their number wherever an id goes.
 */
let d: ApiDaemon;
let gate: string;
/** When the schedule `later` opens (HH:MM, UTC). */
let opens: string;
beforeAll(async () => {
  opens = utcClock(120);
  d = await startApiDaemon({
    config: { dispatcher: { workers: 1 } },
    schedules: { later: { timezone: 'UTC', time: [{ begin: opens, end: utcClock(180) }] } },
    queues: { default: null, nightly: { schedule_name: 'later' } },
  });
  gate = path.join(d.env.root, 'go');
});
afterAll(async () => {
  touch(gate);
  await d?.stop();
});

interface Waiting {
  reason: string;
  message: string;
  until?: string;
  job?: string;
}

const jobOf = async (
  ref: string,
): Promise<{ status: number; body: { id?: string; waiting?: Waiting | null } }> => {
  const response = await fetch(`${d.url}/job/${encodeURIComponent(ref)}`);
  return {
    status: response.status,
    body: (await response.json()) as { id?: string; waiting?: Waiting | null },
  };
};

/** Submit over HTTP (cheaper than a CLI process where the CLI is not the point); the job's id. */
const submit = async (queue: string, job: Record<string, unknown>): Promise<string> => {
  const response = await fetch(`${d.url}/queue/${queue}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(job),
  });
  const id = ((await response.json()) as { jobs?: string[] }).jobs?.[0];
  if (id === undefined) throw new Error(`submission refused: ${response.status}`);
  return id;
};

/** A job's status, by GET /job/:id. */
const statusOf = async (id: string): Promise<string> =>
  ((await (await fetch(`${d.url}/job/${id}`)).json()) as { status: string }).status;

/** Poll an async check (waitFor takes synchronous ones). */
const eventually = async (check: () => Promise<boolean>, what: string): Promise<void> => {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

const waitLines = (id: string): Record<string, unknown>[] =>
  d.daemon.records().filter((r) => String(r.msg).startsWith(`job ${id} waits: `));

describe('a queued job’s wait reason', () => {
  it('is the closed schedule, until it opens: in GET /job/:id, batch job, and one log line', async () => {
    const id = await enqueueJob(d, ['-q', 'nightly', '--', 'true']);
    const { body } = await jobOf(id);
    expect(body.waiting).toMatchObject({
      reason: 'schedule_closed',
      message: 'schedule later of queue nightly is closed',
    });
    expect(body.waiting?.until?.slice(11, 16)).toBe(opens);
    expect(Date.parse(body.waiting?.until ?? '')).toBeGreaterThan(Date.now());

    const shown = await d.batch(['job', id]);
    expect(shown.stdout).toMatch(
      /waiting for: schedule later of queue nightly is closed until \d{4}-\d\d-\d\d \d\d:\d\d:00/,
    );

    // Passes of the dispatcher (other jobs coming and going) do not repeat the line.
    for (let i = 0; i < 3; i++) {
      const passer = await submit('default', { command: 'true' });
      await eventually(async () => (await statusOf(passer)) === 'done', 'a job to pass');
    }
    const lines = await waitFor(
      () => (waitLines(id).length > 0 ? waitLines(id) : undefined),
      5_000,
      'the line',
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 30,
      job: { id, queue: 'nightly' },
      msg: `job ${id} waits: schedule later of queue nightly is closed until ${body.waiting?.until ?? ''}`,
    });
  });

  it('names the dependency, then the busy worker once the dependency is done', async () => {
    const blocker = await submit('default', { command: blockUntil(gate) });
    const dependent = await enqueueJob(d, ['--after', blocker, '--', 'true']);
    const other = await submit('default', { command: 'true' });
    await waitFor(
      () => d.daemon.records().some((r) => String(r.msg).startsWith(`job ${blocker} started`)),
      10_000,
      'start',
    );

    expect((await jobOf(dependent)).body.waiting).toEqual({
      reason: 'dependency',
      message: `dependency ${blocker} is not done yet`,
      job: blocker,
    });
    expect((await d.batch(['job', dependent])).stdout).toContain(
      `waiting for: dependency ${blocker} is not done yet`,
    );
    expect(waitLines(dependent)).toEqual([
      expect.objectContaining({
        level: 30,
        msg: `job ${dependent} waits: dependency ${blocker} is not done yet`,
      }),
    ]);
    expect((await jobOf(other)).body.waiting).toMatchObject({
      reason: 'workers',
      message: 'all 1 workers are busy (dispatcher.workers)',
    });
    touch(gate);
    await eventually(async () => (await statusOf(dependent)) === 'done', 'the dependent job');
    expect((await jobOf(dependent)).body.waiting).toBeUndefined(); // done: no wait reason
  });
});

describe('task-relative names', () => {
  let jobs: string[];
  beforeAll(async () => {
    const result = await d.batch(['enqueue', '--each', '-', '--task', 'shots', '--json'], {
      input: 'echo zero\necho one\necho two\n',
    });
    expect(result.code).toBe(0);
    jobs = (JSON.parse(result.stdout) as { jobs: string[] }).jobs;
    for (const id of jobs) await eventually(async () => (await statusOf(id)) === 'done', 'the task');
  });

  it('name a task’s job by its number (from 0, as batch job shows it) wherever an id goes', async () => {
    const [zero = '', one = '', two = ''] = jobs;
    const shown = (await d.batch(['job', 'shots#1'])).stdout;
    expect(shown).toMatch(new RegExp(`^id: +${one}$`, 'm'));
    expect(shown).toMatch(/^task: +shots #1$/m);
    expect((await d.batch(['logs', 'shots/2'])).stdout).toBe('two\n');
    expect((await d.batch(['logs', 'default/shots/0'])).stdout).toBe('zero\n');
    expect((await d.batch(['wait', 'shots#0', 'shots#2'])).stdout).toContain(`${two}  done`);
    // The API takes them in the path, URL-encoded.
    expect(await jobOf('shots#0')).toMatchObject({ status: 200, body: { id: zero } });
    expect((await fetch(`${d.url}/job/${encodeURIComponent('shots/2')}/results/last`)).status).toBe(200);
  });

  it('say what is wrong with a number past the task’s end or an unknown task', async () => {
    const past = await d.batch(['job', 'shots#3']);
    expect(past.code).toBe(3);
    expect(past.stderr).toContain(
      'Task "shots" in queue "default" has 3 job(s), numbered from 0 to 2; there is no #3',
    );
    const unknown = await d.batch(['job', 'nosuchtask/1']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('No task "nosuchtask" in the queues you may see');
    expect((await jobOf('nightly/shots/1')).status).toBe(404);
  });
});
