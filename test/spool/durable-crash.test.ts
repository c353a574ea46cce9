import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';

const Q = 'burst';
const ROUNDS = 3;
const DROPS_PER_ROUND = 400;
/** As etc/batchd.service runs the daemon: many fsyncs in flight at once. */
const POOL = { UV_THREADPOOL_SIZE: '64' };
/** Every tenth drop is a task of this many jobs. */
const TASK_JOBS = 3;

/** Where a drop's key (its `name:`) is found in the spool. */
interface Whereabouts {
  inIncoming: number;
  /** Staging folders holding the drop: recovery commits (single job) or restores (task) them. */
  stagedWithDrop: number;
  /** Job folders in queued/, jobs of committed tasks not made yet, and in committed tasks' staging folders. */
  jobs: number;
}

/**
 * Reads the whole queue: every job file's `name:` is its drop's key. Job folders in queued/ must
 * be complete (job.yaml and state.yaml readable), or this throws.
 */
function survey(spool: string): Map<string, Whereabouts> {
  const found = new Map<string, Whereabouts>();
  const at = (key: unknown): Whereabouts => {
    if (typeof key !== 'string') throw new Error(`a job file without its key: ${String(key)}`);
    let w = found.get(key);
    if (w === undefined) found.set(key, (w = { inIncoming: 0, stagedWithDrop: 0, jobs: 0 }));
    return w;
  };
  const nameIn = (file: string): unknown => (parse(readFileSync(file, 'utf8')) as { name?: unknown }).name;
  const queue = path.join(spool, Q);
  for (const f of readdirSync(path.join(queue, 'incoming'))) {
    if (!f.startsWith('.')) at(nameIn(path.join(queue, 'incoming', f))).inIncoming += 1;
  }
  for (const id of readdirSync(path.join(queue, 'queued'))) {
    const dir = path.join(queue, 'queued', id);
    JSON.parse(readFileSync(path.join(dir, 'state.yaml'), 'utf8'));
    at(nameIn(path.join(dir, 'job.yaml'))).jobs += 1;
  }
  // A committed task holds its jobs in its manifest until their folders are made (docs/tasks.md).
  const made = new Set(readdirSync(path.join(queue, 'queued')));
  const tasksDir = path.join(queue, 'tasks');
  for (const task of existsSync(tasksDir) ? readdirSync(tasksDir) : []) {
    for (const line of readFileSync(path.join(tasksDir, task, 'specs.jsonl'), 'utf8').split('\n')) {
      if (line === '') continue;
      const { spec } = JSON.parse(line) as { spec: { id: string; name?: unknown } };
      if (!made.has(spec.id)) at(spec.name).jobs += 1;
    }
  }
  const stagingRoot = path.join(queue, '.staging');
  for (const entry of readdirSync(stagingRoot)) {
    const dir = path.join(stagingRoot, entry);
    const dropIn = (d: string): string | undefined => readdirSync(d).find((f) => f.startsWith('drop.'));
    if (existsSync(path.join(dir, 'jobs'))) {
      const manifest = path.join(dir, 'task');
      if (existsSync(manifest)) {
        const taken = dropIn(manifest);
        if (taken !== undefined) at(nameIn(path.join(manifest, taken))).stagedWithDrop += 1;
      } else {
        for (const id of readdirSync(path.join(dir, 'jobs')))
          at(nameIn(path.join(dir, 'jobs', id, 'job.yaml'))).jobs += 1;
      }
      continue;
    }
    const taken = dropIn(dir);
    if (taken !== undefined) at(nameIn(path.join(dir, taken))).stagedWithDrop += 1;
  }
  return found;
}

/**
 * Durable acceptance (storage.fsync: true) batches many acceptances into one group commit, so a
 * kill lands with hundreds of them in flight. Each time, every drop must be in exactly one place:
 * still in incoming/, or taken into a staging folder recovery will commit, or accepted with all its
 * jobs; and a restart must accept every drop exactly once.
 */
describe('kill -9 during a burst of durable acceptances', () => {
  let env: TestEnv;
  let daemon: DaemonProcess | undefined;

  afterEach(async () => {
    daemon?.kill('SIGKILL');
    await daemon?.exited;
    env.cleanup();
  });

  it(
    'leaves every drop in exactly one place, and a restart accepts each exactly once',
    { timeout: 120_000 },
    async () => {
      env = makeEnv({
        queues: { [Q]: { enabled: false } },
        config: { storage: { fsync: true }, dispatcher: { poll_timeout: 1 } },
      });
      env.writeConfig('jobtypes/frames.yaml', {
        template: 'echo $n',
        params: [{ name: 'n', type: 'Integer' }],
      });
      const expected = new Map<string, number>();
      const queuedCount = (): number => readdirSync(path.join(env.spool, Q, 'queued')).length;
      const jobsExpected = (): number => [...expected.values()].reduce((a, b) => a + b, 0);

      for (let round = 0; round < ROUNDS; round++) {
        daemon = await startDaemon(env.etc, env.spool, { env: POOL });
        const before = queuedCount();
        for (let i = 0; i < DROPS_PER_ROUND; i++) {
          const key = `r${round}-${String(i).padStart(4, '0')}`;
          const task = i % 10 === 9;
          drop(
            env.spool,
            Q,
            task ? { type: 'frames', name: key, params: { n: [1, 2, 3] } } : { command: 'true', name: key },
            `${key}.yaml`,
          );
          expected.set(key, task ? TASK_JOBS : 1);
        }
        // Kill early, midway and late in the burst's acceptance.
        const killAt = before + Math.round(((round + 1) / (ROUNDS + 1)) * (jobsExpected() - before));
        await waitFor(() => queuedCount() >= killAt, 60_000, `${killAt} jobs in queued/`, 5);
        daemon.kill('SIGKILL');
        await daemon.exited;
        daemon = undefined;

        const crashed = survey(env.spool);
        const problems: string[] = [];
        for (const [key, jobs] of expected) {
          const w = crashed.get(key) ?? { inIncoming: 0, stagedWithDrop: 0, jobs: 0 };
          const places = w.inIncoming + w.stagedWithDrop + (w.jobs > 0 ? 1 : 0);
          if (places !== 1 || (w.jobs !== 0 && w.jobs !== jobs))
            problems.push(`${key}: ${JSON.stringify(w)}`);
        }
        expect(problems, `round ${round}: drops not in exactly one place after kill -9`).toEqual([]);
        expect(queuedCount()).toBeLessThan(jobsExpected()); // the kill did land mid-burst
      }

      daemon = await startDaemon(env.etc, env.spool, { env: POOL });
      await waitFor(
        () => queuedCount() >= jobsExpected(),
        60_000,
        `all ${jobsExpected()} jobs in queued/`,
        50,
      );
      await waitFor(
        () => readdirSync(path.join(env.spool, Q, '.staging')).length === 0,
        10_000,
        'staging to empty',
      );
      const final = survey(env.spool);
      const wrong = [...expected]
        .filter(([key, jobs]) => {
          const w = final.get(key);
          return w === undefined || w.inIncoming !== 0 || w.stagedWithDrop !== 0 || w.jobs !== jobs;
        })
        .map(([key]) => `${key}: ${JSON.stringify(final.get(key))}`);
      expect(wrong).toEqual([]);
      expect(queuedCount()).toBe(jobsExpected());
      expect(readdirSync(path.join(env.spool, Q, 'rejected'))).toEqual([]);
      expect(final.size).toBe(expected.size);
    },
  );
});
