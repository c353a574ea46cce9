import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { submitResponseSchema } from '../../daemon/protocol/index.ts';
import { eventually, writeUsersFile } from '../api/api-helpers.ts';
import { basic, httpRequest } from '../api/http-client.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { jobsIn, makeEnv, readState } from '../helpers/env.ts';
import { statesById } from '../helpers/spool-checks.ts';
import { random, readLedger, SEED, sleep } from './harness.ts';

const PASSWORD = 'lazy-task-kill-password';
const AUTH = basic('root', PASSWORD);
const Q = 'default';
/**
 * 2,000 in the suite, which must end within its time on a 2-core machine (10,000 jobs take about
 * four minutes there when quiet, twenty under load); BATCHD_LAZY_KILL_JOBS=10000 runs the full size.
 */
const N = Number(process.env.BATCHD_LAZY_KILL_JOBS ?? 2_000);
/** Kills after the one right after the answer, each at a random moment of the next life. */
const LATER_KILLS = 3;

/**
 * A large task (10,000 jobs with BATCHD_LAZY_KILL_JOBS=10000) is committed as its manifest, and its job folders are made while it runs. The
 * daemon (a real process) is killed with SIGKILL right after it answered the submission and again
 * at random moments while the task runs; a last daemon finishes it. Every id answered ends done,
 * in one folder; the ids run are exactly the ids answered; and no job was made twice: a job runs
 * again only as a recorded interruption of the same record (its attempts count on, never anew).
 */
describe('a large task survives kill -9 at random points while its folders are made', () => {
  const ledger = (env: { root: string }): string => path.join(env.root, 'ledger');
  const env = makeEnv({
    config: {
      manager: { enabled: true, host: '127.0.0.1', port: 0, auth: { basic: true, token: false } },
      dispatcher: { workers: 6, poll_timeout: 0.5, lock_stale: 2, grace_time: 2, max_interruptions: 1000 },
    },
  });
  env.writeConfig('jobtypes/mark.yaml', {
    template: 'echo "start $BATCHD_JOB_ID $BATCHD_ATTEMPT" >> "$LEDGER"',
    params: [{ name: 'n', type: 'Integer' }],
    environment: { LEDGER: ledger(env) },
  });
  const procs: DaemonProcess[] = [];
  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    env.cleanup();
  });
  const boot = async (): Promise<string> => {
    const urlFile = path.join(env.root, `url-${procs.length}`);
    procs.push(
      await startDaemon(env.etc, env.spool, {
        extraArgs: ['--api-url-file', urlFile],
        readyTimeoutMs: 60_000,
      }),
    );
    return eventually(() => existsSync(urlFile) && readFileSync(urlFile, 'utf8').trim(), 20_000, 'API url');
  };
  const kill = async (): Promise<void> => {
    const p = procs.at(-1) as DaemonProcess;
    p.kill('SIGKILL');
    await p.exited;
  };
  const done = (): number => jobsIn(env.spool, Q, 'done').length;

  it('runs every answered job to its end once, and makes no job twice', async () => {
    const rng = random(SEED);
    await writeUsersFile(env.etc, [{ name: 'root', grants: [{ permission: 'SuperUser' }] }], PASSWORD);
    const url = await boot();
    const res = await httpRequest(url, `/queue/${Q}`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'mark', task: 'big', params: { n: { range: `1..${N}` } } }),
    });
    expect(res.status, res.text.slice(0, 300)).toBe(201);
    const answered = submitResponseSchema.parse(res.json()).jobs;
    expect(new Set(answered).size).toBe(N);
    await sleep(rng.int(0, 20));
    await kill();

    const kills: { done: number; made: number }[] = [];
    const madeFile = path.join(env.spool, Q, 'tasks', 'big', 'made.json');
    // Removed once every folder is made.
    const mark = (): number =>
      existsSync(madeFile) ? (JSON.parse(readFileSync(madeFile, 'utf8')) as { made: number }).made : N;
    for (let round = 0; round < LATER_KILLS; round++) {
      await boot();
      await sleep(rng.int(200, 3000));
      await kill();
      kills.push({ done: done(), made: mark() });
    }
    // The kills landed while folders were still being made.
    expect(kills.some((k) => k.made < N)).toBe(true);

    await boot();
    await eventually(() => done() >= N, 1_500_000, 'every job done');
    await sleep(300); // anything that would run twice would show by now

    const where = statesById(env.spool, Q);
    expect([...where.keys()].sort()).toEqual([...answered].sort());
    expect([...where].filter(([, states]) => states.join() !== 'done')).toEqual([]);
    expect(existsSync(madeFile)).toBe(false);
    expect(readdirSync(path.join(env.spool, Q, '.staging'))).toEqual([]);

    const runs = readLedger(ledger(env));
    expect([...runs.keys()].sort()).toEqual([...answered].sort());
    const twice: string[] = [];
    for (const id of answered) {
      const starts = (runs.get(id) ?? []).map((l) => l.attempt);
      const state = readState(env.spool, Q, 'done', id);
      // Made once: one record, accepted once, whose attempts count every run (a job made again
      // would start again from attempt 1).
      const accepted = state.history.filter((h) => h.from === null).length;
      if (accepted !== 1 || new Set(starts).size !== starts.length || Math.max(...starts) !== state.attempts)
        twice.push(id);
      // Run once, unless a kill interrupted it, which its record counts.
      if (starts.length !== 1 && (state.interruptions ?? 0) === 0) twice.push(id);
    }
    expect(twice).toEqual([]);
  }, 900_000);
});
