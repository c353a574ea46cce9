import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ERROR_CODES } from '../../daemon/errors.ts';
import type { DaemonProcess } from '../helpers/daemon-process.ts';
import { findJob, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { CORPUS_TYPES } from './corpus.ts';
import { killMarked, SEED, startMarked } from './harness.ts';
import { writeUsersFile } from '../api/api-helpers.ts';
import {
  fuzzedRequests,
  type HttpAnswer,
  type HttpCase,
  handWrittenRequests,
  perJobRequests,
  send,
} from './http-corpus.ts';

/**
 * Bad HTTP requests against a live daemon (its API on a free loopback port, authentication off):
 * every one is refused with a 4xx and an error body that names the problem, never a 5xx; the
 * valid submissions sent between them are all accepted and run; the daemon stays up.
 */
describe('a corpus of bad HTTP requests against a live daemon', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let base: string;
  let target: string;
  const submitted: string[] = [];

  const submitValid = async (n: number): Promise<void> => {
    const answer = await send(base, {
      method: 'POST',
      path: '/queue/default',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'typed', params: { s: `valid-${n}` } }),
    });
    expect(answer.status, answer.text).toBe(201);
    submitted.push(...(answer.json?.jobs ?? []));
  };

  beforeAll(async () => {
    env = makeEnv({
      queues: { default: null },
      config: { manager: { enabled: true, port: 0, host: '127.0.0.1' }, storage: { max_task_jobs: 50 } },
    });
    for (const [name, type] of Object.entries(CORPUS_TYPES)) env.writeConfig(`jobtypes/${name}.yaml`, type);
    daemon = await startMarked(env);
    base = await waitFor(
      () =>
        daemon
          .records()
          .find((r) => typeof r.url === 'string' && String(r.msg).includes('HTTP API listening'))?.url as
          string | undefined,
      20_000,
      'the API to listen',
    );
    // A job for the update cases to aim at, kept queued so they have something to change.
    const answer = await send(base, {
      method: 'POST',
      path: '/queue/default',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'typed', params: { s: 'target' }, not_before: '2999-01-01T00:00:00Z' }),
    });
    target = answer.json?.jobs?.[0] ?? '';
  });

  afterAll(async () => {
    await daemon?.stop();
    if (env !== undefined) killMarked(env.root);
    env?.cleanup();
  });

  const run = async (
    cases: HttpCase[],
  ): Promise<{ problems: string[]; answers: Map<string, HttpAnswer> }> => {
    const problems: string[] = [];
    const answers = new Map<string, HttpAnswer>();
    for (const [i, c] of cases.entries()) {
      const answer = await send(base, c);
      answers.set(c.label, answer);
      problems.push(...judge(c, answer));
      if (i % 20 === 19) await submitValid(i);
    }
    return { problems, answers };
  };

  it('refuses each hand-written bad request with a 4xx whose error names the problem', async () => {
    const cases = handWrittenRequests(target);
    const { problems } = await run(cases);
    expect(problems).toEqual([]);
    expect(cases.length).toBeGreaterThanOrEqual(100);
  });

  it('answers every fuzzed submission and path with 201 or a 4xx that names the problem, never a 5xx', async () => {
    const cases = fuzzedRequests(SEED, 160);
    const { problems, answers } = await run(cases);
    const accepted = [...answers.values()].filter((a) => a.status === 201);
    submitted.push(...accepted.flatMap((a) => a.json?.jobs ?? []));
    console.log(
      `HTTP fuzz: ${cases.length} requests, ${accepted.length} accepted, ${cases.length - accepted.length} refused (seed ${SEED})`,
    );
    expect(problems).toEqual([]);
  });

  it('lost nothing: every accepted submission is a job in the spool, and the daemon is alive', async () => {
    expect(submitted.length).toBeGreaterThan(10);
    for (const id of submitted) expect(findJob(env.spool, id), id).toHaveLength(1);
    // Accepted means run: each one ends in a final state (the held target is not among them).
    const ran = (id: string): boolean => ['done', 'failed'].includes(findJob(env.spool, id)[0]?.state ?? '');
    await waitFor(() => submitted.every(ran), 30_000, 'every accepted submission to run');
    expect(submitted.filter((id) => !ran(id))).toEqual([]);
    expect((await send(base, { method: 'GET', path: '/whoami' })).status).toBe(200);
    expect(findJob(env.spool, target)).toEqual([{ queue: 'default', state: 'queued' }]);
    expect(daemon.child.exitCode).toBeNull();
    expect(
      daemon
        .records()
        .filter((r) => typeof r.level === 'number' && r.level >= 50 && r.msg === 'request failed'),
    ).toEqual([]);
  });
});

/**
 * With authentication on, a job of a queue the caller may not view must not show through any
 * per-job request: each is answered exactly as for an id that no queue holds.
 */
describe('per-job requests about a job the caller may not view, against a live daemon', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let base: string;
  const password = 'corpus-password';
  const basic = (user: string): Record<string, string> => ({
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  });

  beforeAll(async () => {
    env = makeEnv({
      queues: { default: null, hidden: { enabled: false }, mine: { enabled: false } },
      config: {
        manager: { enabled: true, port: 0, host: '127.0.0.1', auth: { basic: true, token: false } },
      },
    });
    await writeUsersFile(
      env.etc,
      [
        { name: 'root', grants: [{ permission: 'SuperUser' }] },
        {
          name: 'alice',
          grants: ['CreateJobs', 'ViewJobs', 'ManageJobs'].map((permission) => ({
            permission: permission as 'CreateJobs',
            queue_name: 'mine',
          })),
        },
      ],
      password,
    );
    daemon = await startMarked(env);
    base = await waitFor(
      () =>
        daemon
          .records()
          .find((r) => typeof r.url === 'string' && String(r.msg).includes('HTTP API listening'))?.url as
          string | undefined,
      20_000,
      'the API to listen',
    );
  });

  afterAll(async () => {
    await daemon?.stop();
    if (env !== undefined) killMarked(env.root);
    env?.cleanup();
  });

  it('answers each per-job request about a hidden job as about one that does not exist', async () => {
    const submit = async (queue: string, user: string): Promise<string> => {
      const answer = await send(base, {
        method: 'POST',
        path: `/queue/${queue}`,
        headers: { 'content-type': 'application/json', ...basic(user) },
        body: JSON.stringify({ type: 'command', command: 'true' }),
      });
      expect(answer.status, answer.text).toBe(201);
      return answer.json?.jobs?.[0] ?? '';
    };
    const hidden = await submit('hidden', 'root');
    const own = await submit('mine', 'alice');
    const missing = hidden.replace(/.{6}$/, 'zzzzzz');
    const ask = async (c: HttpCase, id: string): Promise<HttpAnswer> => {
      const answer = await send(base, { ...c, headers: { ...c.headers, ...basic('alice') } });
      return { ...answer, text: answer.text.replaceAll(id, 'ID') };
    };
    const problems: string[] = [];
    const hiddenCases = perJobRequests(hidden);
    const missingCases = perJobRequests(missing);
    for (const [i, c] of hiddenCases.entries()) {
      const other = missingCases[i] as HttpCase;
      const [a, b] = [await ask(c, hidden), await ask(other, missing)];
      problems.push(...judge(c, a), ...judge(other, b));
      if (a.status !== b.status || a.text !== b.text)
        problems.push(`${c.label}: hidden ${a.status} ${a.text} / missing ${b.status} ${b.text}`);
    }
    expect(problems).toEqual([]);
    expect(hiddenCases.length).toBeGreaterThanOrEqual(20);
    // Her own job she sees; root sees the hidden one; the hidden job is untouched.
    expect((await send(base, { method: 'GET', path: `/job/${own}`, headers: basic('alice') })).status).toBe(
      200,
    );
    const seen = await send(base, { method: 'GET', path: `/job/${hidden}`, headers: basic('root') });
    expect(seen.status).toBe(200);
    expect(JSON.parse(seen.text)).toMatchObject({ status: 'queued', priority: 0, notes: null });
    expect(findJob(env.spool, hidden)).toEqual([{ queue: 'hidden', state: 'queued' }]);
    expect(daemon.child.exitCode).toBeNull();
  });
});

/** What is wrong with an answer, if anything. */
function judge(c: HttpCase, a: HttpAnswer): string[] {
  const at = `${c.label} (${c.method} ${c.path.slice(0, 60)})`;
  const problems: string[] = [];
  if (a.status >= 500) return [`${at}: ${a.status} ${a.text.slice(0, 200)}`];
  if (c.expect === 'either') {
    if (a.status === 201 || (a.status === 200 && c.method === 'GET')) return [];
    if (a.status < 400) return [`${at}: status ${a.status}`];
  } else {
    const statuses = Array.isArray(c.expect.status) ? c.expect.status : [c.expect.status];
    if (!statuses.includes(a.status))
      problems.push(`${at}: status ${a.status}, expected ${statuses.join(' or ')}: ${a.text.slice(0, 300)}`);
    if (c.expect.raw === true) return problems;
    const codes =
      c.expect.code === undefined
        ? undefined
        : Array.isArray(c.expect.code)
          ? c.expect.code
          : [c.expect.code];
    if (codes !== undefined && !codes.includes(a.json?.error?.code ?? ''))
      problems.push(
        `${at}: code ${a.json?.error?.code}, expected ${codes.join(' or ')}: ${a.text.slice(0, 300)}`,
      );
    const text = `${a.json?.error?.message ?? ''}\n${JSON.stringify(a.json?.error?.details ?? [])}`;
    for (const m of c.expect.mentions ?? []) {
      if (typeof m === 'string' ? !text.includes(m) : !m.test(text))
        problems.push(`${at}: the error does not mention ${String(m)}: ${text.slice(0, 300)}`);
    }
  }
  const error = a.json?.error;
  if (
    error === undefined ||
    !(ERROR_CODES as readonly string[]).includes(error.code ?? '') ||
    (error.message ?? '').trim() === ''
  ) {
    problems.push(`${at}: no error body with a known code and a message: ${a.text.slice(0, 200)}`);
  } else if (
    /^\s*(Invalid input)?\s*$/.test(error.message ?? '') ||
    (error.details ?? []).some((d) => /^\s*(Invalid input)?\s*$/.test(d.message))
  ) {
    problems.push(`${at}: the error does not say what is wrong: ${a.text.slice(0, 200)}`);
  }
  return problems;
}
