import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import type { Server } from 'node:net';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { REQUEST_VERBS } from '../../daemon/spool/requests.ts';
import type { DaemonProcess } from '../helpers/daemon-process.ts';
import { drop, findJob, jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { copiesOf } from '../helpers/spool-checks.ts';
import { killMarked, startMarked } from './harness.ts';
import { send } from './http-corpus.ts';
import { fillOutside, QUEUE_FOLDER_CASES, SPECIAL_FILES } from './spool-corpus.ts';

/**
 * The hostile-spool corpus against a live daemon, all at once: every kind of special file as a
 * request file of every verb and as a queue's queue.yaml, and every queue folder that leads out
 * of the spool. Each is refused saying what it is; no byte of a file the writer could not read
 * shows in any file or log line; nothing is built, taken or run outside the spool; the jobs the
 * requests name stay as they were; and the daemon keeps answering and running jobs throughout.
 * (test/spool/hostile-spool.test.ts walks through one case of each class in detail.)
 */
describe('a corpus of hostile spool files and folders against a live daemon', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  let base: string;
  let secret: string;
  const canary = `SECRET-CANARY-${process.pid}`;
  const servers: Server[] = [];
  /** A held job per special file kind: each gets a request file of every verb. */
  const targets = new Map<string, string>();
  const requestFiles: { file: string; says: RegExp }[] = [];
  const outsides = new Map<string, string[]>();

  const tree = (dir: string): string[] =>
    readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort((a, b) => a.localeCompare(b));

  beforeAll(async () => {
    env = makeEnv({
      queues: { held: { enabled: false }, open: {} },
      config: { manager: { enabled: true, port: 0, host: '127.0.0.1' } },
    });
    secret = path.join(env.root, 'secret.yaml');
    // Read as a request, its text would be quoted back ("Unknown host …"); as YAML, a syntax error would.
    writeFileSync(secret, `command: echo\nhost: ${canary}\nbroken: [${canary}\n`, { mode: 0o600 });
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
    for (const kind of SPECIAL_FILES) {
      const answer = await send(base, {
        method: 'POST',
        path: '/queue/held',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ command: 'true', notes: 'untouched' }),
      });
      targets.set(kind.label, answer.json?.jobs?.[0] ?? '');
    }
    const scratch = path.join(env.root, 'scratch');
    mkdirSync(scratch);
    const requests = path.join(env.spool, 'held', 'requests');
    // Everything is made outside and renamed in, so each thing appears whole.
    for (const kind of SPECIAL_FILES) {
      for (const verb of REQUEST_VERBS) {
        const made = path.join(scratch, `${kind.label}.${verb}`);
        const server = kind.make(made, secret);
        if (server !== undefined) servers.push(server);
        const file = path.join(requests, `${targets.get(kind.label)}.${verb}`);
        renameSync(made, file);
        requestFiles.push({ file, says: kind.says });
      }
      const queue = path.join(scratch, `yaml-${kind.label}`);
      mkdirSync(queue);
      const server = kind.make(path.join(queue, 'queue.yaml'), secret);
      if (server !== undefined) servers.push(server);
      renameSync(queue, path.join(env.spool, `yaml-${kind.label}`));
    }
    for (const c of QUEUE_FOLDER_CASES) {
      const outside = path.join(env.root, `outside-${c.label}`);
      fillOutside(outside, path.join(env.root, `ran-${c.label}`));
      outsides.set(outside, tree(outside));
      const made = path.join(scratch, `linked-${c.label}`);
      c.make(made, outside);
      renameSync(made, path.join(env.spool, `linked-${c.label}`));
    }
  }, 60_000);

  afterAll(async () => {
    for (const server of servers) server.close();
    await daemon?.stop();
    if (env !== undefined) killMarked(env.root);
    env?.cleanup();
  });

  const setAside = (file: string): boolean => {
    try {
      lstatSync(`${file}.rejected`);
      return existsSync(`${file}.error`);
    } catch {
      return false;
    }
  };

  it(`sets aside each of the ${SPECIAL_FILES.length * REQUEST_VERBS.length} special request files unread, saying what it is`, async () => {
    await waitFor(
      () => requestFiles.every(({ file }) => setAside(file)),
      30_000,
      'every request file to be set aside',
    ).catch(() => undefined);
    const problems: string[] = [];
    for (const { file, says } of requestFiles) {
      const name = path.basename(file);
      if (!setAside(file)) {
        problems.push(`${name}: not set aside`);
        continue;
      }
      const error = readFileSync(`${file}.error`, 'utf8');
      if (!says.test(error)) problems.push(`${name}: the error does not say ${String(says)}: ${error}`);
    }
    expect(problems).toEqual([]);
    // The jobs the requests named are as they were: queued, once, their notes unchanged.
    for (const id of targets.values()) {
      expect(findJob(env.spool, id), id).toEqual([{ queue: 'held', state: 'queued' }]);
      const answer = await send(base, { method: 'GET', path: `/job/${id}` });
      expect(JSON.parse(answer.text)).toMatchObject({ notes: 'untouched', priority: 0, host: null });
    }
  });

  it(`refuses each of the ${SPECIAL_FILES.length} special queue.yaml files unread, and runs the queue’s jobs`, async () => {
    const refusal = (label: string): string | undefined => {
      const file = path.join(env.spool, `yaml-${label}`, 'queue.yaml');
      return daemon
        .records()
        .map((r) => String(r.msg))
        .find((m) => m.includes('queue settings refused') && m.includes(file));
    };
    await waitFor(
      () => SPECIAL_FILES.every((k) => refusal(k.label) !== undefined),
      30_000,
      'every queue.yaml to be refused',
    ).catch(() => undefined);
    const problems: string[] = [];
    for (const kind of SPECIAL_FILES) {
      const said = refusal(kind.label);
      if (said === undefined) problems.push(`${kind.label}: not refused`);
      else if (!kind.says.test(said)) problems.push(`${kind.label}: says ${said}`);
      drop(env.spool, `yaml-${kind.label}`, 'command: "true"\n', 'still-runs.yaml');
    }
    expect(problems).toEqual([]);
    await waitFor(
      () => SPECIAL_FILES.every((k) => jobsIn(env.spool, `yaml-${k.label}`, 'done').length === 1),
      30_000,
      'a job in each of those queues to run',
    );
  });

  it(`refuses each of the ${QUEUE_FOLDER_CASES.length} queues with a folder leading out of the spool: nothing made, taken or run there`, async () => {
    const refused = (c: (typeof QUEUE_FOLDER_CASES)[number]): boolean =>
      daemon
        .logs()
        .includes(
          `queue refused: ${path.join(env.spool, `linked-${c.label}`, c.names).replace(/\/$/, '')} is`,
        );
    await waitFor(() => QUEUE_FOLDER_CASES.every(refused), 30_000, 'every linked queue to be refused').catch(
      () => undefined,
    );
    expect(QUEUE_FOLDER_CASES.filter((c) => !refused(c)).map((c) => c.label)).toEqual([]);
    await new Promise((r) => setTimeout(r, 2500)); // rescans run every second
    for (const [outside, before] of outsides) expect(tree(outside), outside).toEqual(before);
    expect(readdirSync(env.root).filter((e) => e.startsWith('ran-'))).toEqual([]);
    // Warned once each, not at every rescan.
    expect(daemon.logs().split('queue refused: ').length - 1).toBeLessThanOrEqual(
      2 * QUEUE_FOLDER_CASES.length,
    );
  });

  it('quoted no byte of the secret anywhere, held no huge file in memory, and still answers and runs jobs', async () => {
    expect(copiesOf(env.root, canary, secret)).toEqual([]);
    expect(daemon.logs()).not.toContain(canary);
    const peakKb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${daemon.pid}/status`, 'utf8'))?.[1]);
    expect(peakKb).toBeLessThan(400 * 1024);
    expect((await send(base, { method: 'GET', path: '/whoami' })).status).toBe(200);
    drop(env.spool, 'open', 'command: "true"\n', 'after-the-corpus.yaml');
    await waitFor(() => jobsIn(env.spool, 'open', 'done').length === 1, 15_000, 'a job to run');
    expect(daemon.child.exitCode).toBeNull();
    const fatal = daemon.records().filter((r) => typeof r.level === 'number' && r.level >= 60);
    expect(fatal).toEqual([]);
  });
});
