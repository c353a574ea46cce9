import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { Daemon } from '../../daemon/daemon.ts';
import { HostStates } from '../../daemon/hosts/states.ts';
import { createLogger } from '../../daemon/log.ts';
import type { HookEvent } from '../../daemon/config/hook-events.ts';
import { verifySignature } from '../../plugins/hook-webhook/signature.ts';
import {
  blockUntil,
  dropJob,
  ledger,
  makeDispatchEnv,
  pidAlive,
  request,
  waitForState,
} from '../helpers/dispatch.ts';
import { drop, jobsIn, type TestEnv, waitFor } from '../helpers/env.ts';

const SECRET = 'hunter2-hook-secret-9f3a';
const URL_TOKEN = 'path-token-77c1';

/** A webhook receiver on loopback whose behaviour the test switches: answer, fail with 500, or hang. */
interface Receiver {
  url: string;
  mode: 'ok' | 'fail' | 'hang';
  /** Every request as received, with the status it got (undefined: left hanging). */
  requests: { headers: IncomingMessage['headers']; body: string; status?: number }[];
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const hanging = new Set<ServerResponse>();
  const receiver: Receiver = { url: '', mode: 'ok', requests: [], close: () => Promise.resolve() };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const entry: Receiver['requests'][number] = { headers: req.headers, body };
      receiver.requests.push(entry);
      if (receiver.mode === 'hang') {
        hanging.add(res);
        return;
      }
      entry.status = receiver.mode === 'ok' ? 204 : 500;
      res.writeHead(entry.status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook/${URL_TOKEN}`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}

/** The events a receiver answered with 2xx (one per delivery id), parsed. */
function delivered(receiver: Receiver): HookEvent[] {
  const byId = new Map<string, HookEvent>();
  for (const r of receiver.requests)
    if (r.status === 204) byId.set(String(r.headers['x-batchd-delivery']), JSON.parse(r.body) as HookEvent);
  return [...byId.values()];
}

/** The ledger's complete lines, parsed (the hook command may be half-way through appending one). */
function lines(file: string): HookEvent[] {
  const written = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const complete = written.slice(0, written.lastIndexOf('\n') + 1);
  return complete === ''
    ? []
    : complete
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as HookEvent);
}

/** `event jobId` for each event, sorted: what must come once per transition. */
function tally(events: readonly HookEvent[]): string[] {
  return events.map((e) => `${e.event} ${e.jobId ?? e.task ?? e.host}`).sort();
}

let env: TestEnv | undefined;
let daemon: Daemon | undefined;
let receiver: Receiver | undefined;

afterEach(async () => {
  await daemon?.stop();
  await receiver?.close();
  env?.cleanup();
  daemon = undefined;
  receiver = undefined;
  env = undefined;
});

/** An in-process daemon whose log (the daemon's own logger, JSON lines) goes to a file the test reads. */
function start(e: TestEnv): Promise<Daemon> {
  return Daemon.start({
    configDir: e.etc,
    spool: e.spool,
    logger: createLogger({ level: 'debug', format: 'json', target: path.join(e.root, 'daemon.log') }),
  });
}

function daemonLog(e: TestEnv): string {
  const file = path.join(e.root, 'daemon.log');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

describe('lifecycle hooks', () => {
  it('tells a command and a webhook of each job and task event exactly once per transition, signed', async () => {
    receiver = await startReceiver();
    env = makeDispatchEnv({ queues: { default: null, hold: { enabled: false } } });
    const ledgerFile = path.join(env.root, 'events.jsonl');
    env.writeConfig('batchd.yaml', {
      ...baseConfig(),
      hooks: [
        { driver: 'command', name: 'ledger', command: `cat >> '${ledgerFile}'` },
        { driver: 'webhook', name: 'web', url: receiver.url, secret_file: 'hook.secret', retry_delay: 0.1 },
      ],
    });
    writeFileSync(path.join(env.etc, 'hook.secret'), `${SECRET}\n`);
    daemon = await start(env);

    const ok = await dropJob(env, 'default', { params: { command: 'true' } }, 'ok');
    const bad = await dropJob(env, 'default', { params: { command: 'exit 3' } }, 'bad');
    const held = await dropJob(env, 'hold', { params: { command: 'true' } }, 'held');
    const marker = path.join(env.root, 'second-try');
    const flaky = await dropJob(
      env,
      'default',
      { params: { command: `test -e '${marker}' || { touch '${marker}'; exit 1; }` } },
      'flaky',
    );
    drop(
      env.spool,
      'default',
      { task: 'night', params: { command: ['true', 'true', 'exit 2'] } },
      'night.yaml',
    );
    await waitForState(env, ok, 'done');
    await waitForState(env, bad, 'failed');
    await waitForState(env, flaky, 'failed');
    request(env, 'hold', held, 'cancel');
    request(env, 'default', flaky, 'retry');
    await waitForState(env, held, 'cancelled');
    await waitForState(env, flaky, 'done');
    const task = await waitFor(() => {
      const ids = [...jobsIn(env!.spool, 'default', 'done'), ...jobsIn(env!.spool, 'default', 'failed')];
      const taskIds = ids.filter((id) => ![ok, bad, flaky].includes(id));
      return taskIds.length === 3 ? taskIds : undefined;
    });
    const expected = [
      ...[ok, ...task].flatMap((id) => [`job:queued ${id}`, `job:started ${id}`]),
      `job:finished ${ok}`,
      `job:queued ${bad}`,
      `job:started ${bad}`,
      `job:failed ${bad}`,
      `job:queued ${held}`,
      `job:cancelled ${held}`,
      ...[1, 2].flatMap(() => [`job:queued ${flaky}`, `job:started ${flaky}`]),
      `job:failed ${flaky}`,
      `job:finished ${flaky}`,
      'task:finished night',
    ];
    await waitFor(() => lines(ledgerFile).length >= 24 && delivered(receiver!).length >= 24);
    // Stopping delivers what is pending: after it, nothing more can come.
    await daemon.stop();
    daemon = undefined;

    const got = lines(ledgerFile);
    const taskEnds = task.map((id) =>
      got.find((e) => e.jobId === id && e.event !== 'job:queued' && e.event !== 'job:started'),
    );
    expect(taskEnds.map((e) => e?.event).sort()).toEqual(['job:failed', 'job:finished', 'job:finished']);
    const all = [...expected, ...taskEnds.map((e) => `${e?.event} ${e?.jobId}`)].sort();
    expect(tally(got)).toEqual(all);
    expect(tally(delivered(receiver))).toEqual(all);
    // Every event has its own id, and the webhook got each one once (no retry was needed).
    expect(new Set(got.map((e) => e.id)).size).toBe(got.length);
    expect(receiver.requests.length).toBe(all.length);

    // End events carry the outcome and exit code; the task's event its counts.
    expect(got.find((e) => e.event === 'job:failed' && e.jobId === bad)).toMatchObject({
      queue: 'default',
      outcome: 'exit-code',
      exitCode: 3,
    });
    expect(got.find((e) => e.event === 'job:finished' && e.jobId === ok)).toMatchObject({
      outcome: 'success',
      exitCode: 0,
    });
    expect(got.find((e) => e.event === 'job:cancelled')).toMatchObject({ jobId: held, queue: 'hold' });
    expect(got.find((e) => e.event === 'task:finished')).toMatchObject({
      queue: 'default',
      task: 'night',
      counts: { total: 3, done: 2, failed: 1, cancelled: 0 },
    });
    expect(
      got.filter((e) => e.jobId !== undefined && task.includes(e.jobId)).every((e) => e.task === 'night'),
    ).toBe(true);

    // Each request verifies with the secret (and fails with another), and names its event and delivery.
    for (const r of receiver.requests) {
      const headers = {
        timestamp: r.headers['x-batchd-timestamp'] as string | undefined,
        signature: r.headers['x-batchd-signature'] as string | undefined,
      };
      expect(verifySignature(SECRET, r.body, headers)).toBe(true);
      expect(verifySignature('another secret', r.body, headers)).toBe(false);
      const event = JSON.parse(r.body) as HookEvent;
      expect(r.headers['x-batchd-event']).toBe(event.event);
      expect(r.headers['x-batchd-delivery']).toBe(event.id);
    }
    expect(daemonLog(env)).not.toContain(SECRET);
  });

  it('announces a task accepted before a restart once, when its last job ends after it', async () => {
    env = makeDispatchEnv({ queues: { default: null } });
    const out = path.join(env.root, 'tasks.jsonl');
    const gate = path.join(env.root, 'gate');
    env.writeConfig('batchd.yaml', {
      ...baseConfig(),
      hooks: [{ driver: 'command', command: `cat >> '${out}'`, events: ['task:finished'] }],
    });
    daemon = await start(env);
    drop(
      env.spool,
      'default',
      { task: 'late', params: { command: ['true', 'exit 4', blockUntil(gate)] } },
      'late.yaml',
    );
    await waitFor(
      () =>
        jobsIn(env!.spool, 'default', 'done').length === 1 &&
        jobsIn(env!.spool, 'default', 'failed').length === 1,
    );
    await waitFor(() => jobsIn(env!.spool, 'default', 'running').length === 1);
    await daemon.stop(); // the third job, running, is stopped and queued again
    daemon = undefined;
    writeFileSync(gate, '');
    daemon = await start(env);
    await waitFor(() => jobsIn(env!.spool, 'default', 'done').length === 2);
    await waitFor(() => lines(out).length === 1);
    await daemon.stop();
    daemon = undefined;
    expect(lines(out)).toHaveLength(1);
    expect(lines(out)[0]).toMatchObject({
      event: 'task:finished',
      queue: 'default',
      task: 'late',
      counts: { total: 3, done: 2, failed: 1, cancelled: 0 },
    });
  });

  it('finishes jobs promptly while the webhook hangs or fails, then delivers every event once it recovers', async () => {
    receiver = await startReceiver();
    receiver.mode = 'hang';
    env = makeDispatchEnv({ queues: { default: null } });
    env.writeConfig('batchd.yaml', {
      ...baseConfig(),
      hooks: [
        {
          driver: 'webhook',
          url: receiver.url,
          secret: SECRET,
          headers: { authorization: `Bearer ${SECRET}` },
          attempt_timeout: 0.5,
          retry_delay: 0.1,
          max_retry_delay: 0.4,
          retries: 1000,
        },
      ],
    });
    daemon = await start(env);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++)
      ids.push(await dropJob(env, 'default', { params: { command: 'true' } }, `j${i}`));
    for (const id of ids) await waitForState(env, id, 'done');
    // All done, and not one delivery has been answered yet: the hook held up no job.
    expect(delivered(receiver)).toEqual([]);
    expect(receiver.requests.length).toBeGreaterThan(0);

    receiver.mode = 'fail';
    await waitFor(() => receiver!.requests.some((r) => r.status === 500));
    receiver.mode = 'ok';
    await waitFor(() => delivered(receiver!).length === 12, 20_000, 'every event delivered');
    expect(tally(delivered(receiver))).toEqual(
      ids.flatMap((id) => [`job:finished ${id}`, `job:queued ${id}`, `job:started ${id}`]).sort(),
    );
    // Retried: more requests than events, yet each event arrived (answered 2xx) once.
    expect(receiver.requests.length).toBeGreaterThan(12);
    const answered = receiver.requests
      .filter((r) => r.status === 204)
      .map((r) => r.headers['x-batchd-delivery']);
    expect(new Set(answered).size).toBe(answered.length);

    const log = daemonLog(env);
    expect(log).toMatch(/webhook http:\/\/127\.0\.0\.1:\d+: (no answer|HTTP 500)/);
    expect(log).not.toContain(SECRET);
    expect(log).not.toContain(URL_TOKEN);
  });

  it('at stop, gives pending deliveries a short grace, then drops them with a logged count', async () => {
    receiver = await startReceiver();
    receiver.mode = 'hang';
    env = makeDispatchEnv({ queues: { default: null } });
    env.writeConfig('batchd.yaml', {
      ...baseConfig(),
      hooks: [{ driver: 'webhook', name: 'stuck', url: receiver.url, attempt_timeout: 60 }],
    });
    daemon = await start(env);
    const id = await dropJob(env, 'default', { params: { command: 'true' } }, 'one');
    await waitForState(env, id, 'done');
    await daemon.stop();
    daemon = undefined;
    const log = daemonLog(env);
    // job:queued hangs in flight (abandoned); job:started and job:finished wait behind it (dropped).
    expect(log).toMatch(/hook stuck: job:queued not delivered: abandoned at stop/);
    expect(log).toMatch(/hook stuck: 2 undelivered events dropped at stop/);
  });

  it('gives a queue’s hooks only that queue’s events, and a global hook only the queues it names', async () => {
    env = makeDispatchEnv({ queues: { default: null, render: null } });
    const renderLedger = path.join(env.root, 'render.jsonl');
    const defaultLedger = path.join(env.root, 'default.jsonl');
    env.writeConfig('batchd.yaml', {
      ...baseConfig(),
      hooks: [
        { driver: 'command', command: ['/bin/sh', '-c', `cat >> '${defaultLedger}'`], queues: ['default'] },
      ],
    });
    const queueHooks = {
      hooks: [{ driver: 'command', command: `cat >> '${renderLedger}'`, events: ['job:finished'] }],
    };
    writeFileSync(path.join(env.spool, 'render', 'queue.yaml'), JSON.stringify(queueHooks));
    daemon = await start(env);
    const a = await dropJob(env, 'default', { params: { command: 'true' } }, 'a');
    const b = await dropJob(env, 'render', { params: { command: 'true' } }, 'b');
    await waitForState(env, a, 'done');
    await waitForState(env, b, 'done');
    await waitFor(() => lines(renderLedger).length === 1 && lines(defaultLedger).length === 3);
    await daemon.stop();
    daemon = undefined;
    expect(tally(lines(renderLedger))).toEqual([`job:finished ${b}`]);
    expect(lines(renderLedger)[0]).toMatchObject({ queue: 'render' });
    expect(tally(lines(defaultLedger))).toEqual([`job:finished ${a}`, `job:queued ${a}`, `job:started ${a}`]);
  });

  it('applies an edited hook list while running, and keeps the last good one when an edit is invalid', async () => {
    env = makeDispatchEnv({ queues: { default: null } });
    const first = path.join(env.root, 'first.jsonl');
    const second = path.join(env.root, 'second.jsonl');
    const hook = (file: string): unknown => ({
      driver: 'command',
      command: `cat >> '${file}'`,
      events: ['job:finished'],
    });
    env.writeConfig('batchd.yaml', { ...baseConfig(), hooks: [hook(first)] });
    daemon = await start(env);
    const a = await dropJob(env, 'default', { params: { command: 'true' } }, 'a');
    await waitFor(() => lines(first).length === 1);

    env.writeConfig('batchd.yaml', { ...baseConfig(), hooks: [hook(second)] });
    await waitFor(() =>
      /hook command#0 \(command\) ready/.test(daemonLog(env!).split('batchd ready')[1] ?? ''),
    );
    const b = await dropJob(env, 'default', { params: { command: 'true' } }, 'b');
    await waitFor(() => lines(second).length === 1);

    env.writeConfig('batchd.yaml', { ...baseConfig(), hooks: [{ driver: 'command', command: [] }] });
    await waitFor(() => /batchd\.yaml, line \d+, field hooks\.0\.command/.test(daemonLog(env!)));
    const c = await dropJob(env, 'default', { params: { command: 'true' } }, 'c');
    await waitFor(() => lines(second).length === 2);
    await daemon.stop();
    daemon = undefined;
    expect(tally(lines(first))).toEqual([`job:finished ${a}`]);
    expect(tally(lines(second))).toEqual([`job:finished ${b}`, `job:finished ${c}`]);
  });

  it('reports an invalid hook with its file, line and field', async () => {
    env = makeDispatchEnv();
    env.writeConfig(
      'batchd.yaml',
      `${JSON.stringify(baseConfig())}`.replace(/}$/, ',"hooks":[{"driver":"webhook","url":"ftp://x"}]}'),
    );
    await expect(start(env)).rejects.toThrow(/batchd\.yaml, line 1, field hooks\.0\.url: Expected an http/);

    env.writeConfig('batchd.yaml', { ...baseConfig(), hooks: [{ driver: 'no-such-hook' }] });
    await expect(start(env)).rejects.toThrow(
      /batchd\.yaml, line \d+, field hooks\.0\.driver: Unknown driver "no-such-hook"/,
    );

    // In a queue.yaml: the daemon runs, the queue works, the log says what is wrong and where.
    env.writeConfig('batchd.yaml', baseConfig());
    const dir = path.join(env.spool, 'render');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'queue.yaml'),
      'title: Render\nhooks:\n  - driver: command\n    comand: true\n',
    );
    daemon = await start(env);
    const id = await dropJob(env, 'render', { params: { command: 'true' } }, 'r');
    await waitForState(env, id, 'done');
    expect(daemonLog(env)).toMatch(/render\/queue\.yaml, line 4, field hooks\.0\.comand: Unknown field/);
  });

  it('runs the command with the event in variables (never as code) and kills its process group at the timeout', async () => {
    env = makeDispatchEnv({ queues: { hold: { enabled: false } } });
    const out = path.join(env.root, 'vars.txt');
    const pidFile = path.join(env.root, 'pid');
    const injected = path.join(env.root, 'injected');
    env.writeConfig('batchd.yaml', {
      ...baseConfig(),
      hooks: [
        {
          driver: 'command',
          events: ['job:cancelled'],
          command: [
            '/bin/sh',
            '-c',
            `printf '%s|%s|%s|%s|%s\\n' "$BATCHD_EVENT" "$BATCHD_JOB_ID" "$BATCHD_QUEUE" "$BATCHD_OUTCOME" "$BATCHD_REASON" >> '${out}'`,
          ],
        },
        {
          driver: 'command',
          events: ['job:cancelled'],
          timeout: 1,
          kill_grace: 0.2,
          command: `sleep 30 & echo $! > '${pidFile}'; wait`,
        },
      ],
    });
    daemon = await start(env);
    const id = await dropJob(env, 'hold', { params: { command: 'true' } }, 'held');
    request(env, 'hold', id, 'cancel', `$(touch '${injected}') "quoted" ;`);
    await waitFor(() => ledger(out).length === 1);
    expect(ledger(out)[0]).toBe(
      `job:cancelled|${id}|hold|cancelled|cancel requested: $(touch '${injected}') "quoted" ;`,
    );
    expect(existsSync(injected)).toBe(false);
    const pid = Number(
      await waitFor(() => (existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : undefined)),
    );
    await waitFor(() => !pidAlive(pid), 10_000, 'the timed-out hook’s background process killed');
    await waitFor(() => /not delivered: timed out after 1000 ms/.test(daemonLog(env!)));
  });

  it('tells of host starting, ready, stopped and failed once per change', async () => {
    env = makeDispatchEnv();
    const out = path.join(env.root, 'hosts.jsonl');
    env.writeConfig('batchd.yaml', {
      ...baseConfig(),
      hooks: [
        {
          driver: 'command',
          command: `cat >> '${out}'`,
          events: ['host:starting', 'host:ready', 'host:stopped', 'host:failed'],
        },
      ],
    });
    daemon = await start(env);
    // The daemon's own host-state owner, on the daemon's bus: ready and busy are one ready, a repeat is no news.
    const states = new HostStates(daemon.events, daemon.log, () => undefined);
    states.transition('vm', 'starting');
    states.ready('vm');
    states.busy('vm', true);
    states.busy('vm', false);
    states.transition('vm', 'stopping');
    states.transition('vm', 'stopped');
    states.failed('vm', 'refused', { initial: 60_000, max: 60_000 });
    states.close();
    await waitFor(() => lines(out).length === 4);
    await daemon.stop();
    daemon = undefined;
    expect(lines(out).map((e) => `${e.event} ${e.host}`)).toEqual([
      'host:starting vm',
      'host:ready vm',
      'host:stopped vm',
      'host:failed vm',
    ]);
    expect(lines(out)[3]).toMatchObject({ reason: 'refused' });
  });
});

/** batchd.yaml as makeDispatchEnv writes it, without hooks. */
function baseConfig(): Record<string, unknown> {
  return {
    default_queue: 'default',
    manager: { enabled: false },
    dispatcher: {
      workers: 2,
      poll_timeout: 1,
      stable_time: 0.2,
      grace_time: 0.3,
      kill_grace: 1,
      lock_stale: 4,
    },
    logging: { level: 'info', format: 'json', target: 'stderr' },
  };
}
