import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import {
  taskResultsSchema,
  taskStatusSchema,
  submitResponseSchema,
  taskResumeSchema,
} from '../../daemon/protocol/index.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { makeEnv } from '../helpers/env.ts';
import { eventually, writeUsersFile } from './api-helpers.ts';
import { basic, httpRequest } from './http-client.ts';

const PASSWORD = 'task-test-password';
const AUTH = basic('root', PASSWORD);

/**
 * restbatch's workflow against the daemon as a real process: submit a task of many jobs over HTTP,
 * kill -9 the daemon while jobs run, restart it, resume only the unfinished jobs, collect every
 * result in order.
 */
describe('a task survives kill -9 of the daemon: resume, then collect in order', () => {
  const env = makeEnv({
    config: {
      manager: { enabled: true, host: '127.0.0.1', port: 0, auth: { basic: true, token: false } },
      dispatcher: { workers: 2, lock_stale: 2 },
    },
  });
  const marks = path.join(env.root, 'marks');
  // Job 3 fails until the test "fixes" it; every run is counted in marks/runs-<n>.
  env.writeConfig('jobtypes/square.yaml', {
    template: [
      'mkdir -p "$marks"; echo run >> "$marks/runs-$n"',
      'if [ "$n" = 3 ] && [ ! -e "$marks/fixed" ]; then echo broken >&2; exit 1; fi',
      'sleep 0.5',
      'printf \'{"n": %s, "square": %s}\' "$n" "$(expr $n \\* $n)" > "$BATCHD_RESULT"',
    ],
    params: [
      { name: 'n', type: 'Integer' },
      { name: 'marks', type: 'String', default: marks },
    ],
  });
  const procs: DaemonProcess[] = [];
  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    env.cleanup();
  });

  const boot = async (): Promise<{ proc: DaemonProcess; url: string }> => {
    const urlFile = path.join(env.root, `url-${procs.length}`);
    const proc = await startDaemon(env.etc, env.spool, { extraArgs: ['--api-url-file', urlFile] });
    procs.push(proc);
    const url = await eventually(
      () => existsSync(urlFile) && readFileSync(urlFile, 'utf8').trim(),
      15_000,
      'API url',
    );
    return { proc, url };
  };
  const runs = (n: number): number => {
    const file = path.join(marks, `runs-${n}`);
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
  };

  it('submits, is killed, restarts (the interrupted jobs run again), resumes only the failed job, and collects 8 results in order', async () => {
    await writeUsersFile(env.etc, [{ name: 'root', grants: [{ permission: 'SuperUser' }] }], PASSWORD);
    const first = await boot();
    const submitted = await httpRequest(first.url, '/queue/default', {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/yaml' },
      body: 'type: square\ntask: squares\nparams:\n  n: { range: "1..8" }\n',
    });
    expect(submitted.status, submitted.text).toBe(201);
    const { jobs, task } = submitResponseSchema.parse(submitted.json());
    expect([jobs.length, task]).toEqual([8, 'squares']);
    const status = async (url: string) =>
      taskStatusSchema.parse(
        (await httpRequest(url, '/queue/default/task/squares', { headers: AUTH })).json(),
      );

    // Kill -9 while two jobs run and some are done.
    let seen: unknown;
    await eventually(
      async () => {
        const s = await status(first.url);
        seen = s;
        return s.done >= 2 && s.running === 2 && s;
      },
      30_000,
      'two done and two running',
    ).catch((error: unknown) => {
      throw new Error(
        `${String(error)}; last status ${JSON.stringify(seen)}\n${first.proc.logs().slice(-3000)}`,
      );
    });
    first.proc.kill('SIGKILL');
    await first.proc.exited;

    const second = await boot();
    const resolved = await eventually(
      async () => {
        const s = await status(second.url);
        return s.resolved && s;
      },
      30_000,
      'task resolved after the restart',
    );
    // The two interrupted jobs ran again (an interruption is not the job's failure, whatever on_fail
    // says); job 3 failed on its own.
    expect(resolved.failed).toBe(1);
    expect(resolved.done + resolved.failed).toBe(8);
    const before = taskResultsSchema.parse(
      (await httpRequest(second.url, '/queue/default/task/squares/results', { headers: AUTH })).json(),
    );
    const failedIds = before.filter((r) => r.status === 'failed').map((r) => r.id);
    const doneIds = before.filter((r) => r.status === 'done').map((r) => r.id);
    expect(failedIds).toContain(jobs[2]);
    const runsBefore = jobs.map((_, i) => runs(i + 1));

    writeFileSync(path.join(marks, 'fixed'), '');
    const resume = await httpRequest(second.url, '/queue/default/task/squares/resume', {
      method: 'POST',
      headers: AUTH,
    });
    expect(resume.status).toBe(200);
    expect(taskResumeSchema.parse(resume.json()).resumed.sort()).toEqual([...failedIds].sort());

    await eventually(
      async () => {
        const s = await status(second.url);
        return s.resolved && s.done === 8 && s;
      },
      30_000,
      'all eight done',
    );
    const results = taskResultsSchema.parse(
      (await httpRequest(second.url, '/queue/default/task/squares/results', { headers: AUTH })).json(),
    );
    expect(results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(results.map((r) => r.id)).toEqual(jobs);
    expect(results.map((r) => r.status)).toEqual(Array(8).fill('done'));
    expect(results.map((r) => r.result)).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((n) => ({ n, square: n * n })));
    // Resume re-ran only what had failed: the jobs done before it ran no more.
    for (const [i, id] of jobs.entries()) {
      if (doneIds.includes(id)) expect(runs(i + 1), `job ${i + 1}`).toBe(runsBefore[i]);
      else expect(runs(i + 1), `job ${i + 1}`).toBe((runsBefore[i] ?? 0) + 1);
    }
    await second.proc.stop();
  });
});
