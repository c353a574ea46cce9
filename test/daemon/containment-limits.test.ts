import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { dropJob, makeDispatchEnv, startInProcess } from '../helpers/dispatch.ts';
import { drop, findJob, readState, type TestEnv, waitFor } from '../helpers/env.ts';

const CGROUP_V1 = (() => {
  try {
    accessSync('/sys/fs/cgroup/freezer', constants.W_OK);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();

/** Allocates 200M at once and prints how much: fails under a smaller memory limit. */
const HOG = `perl -e '$x = "a" x (200 * 1024 * 1024); print length($x), "\\n"'`;

/**
 * Limits come from the job type, the queue and the job (the job's own win over its queue's, which
 * win over its type's), through the daemon's configuration and job files into the job's cgroup.
 */
describe.runIf(CGROUP_V1)('resource limits of a job type, a queue and a job', () => {
  let env: TestEnv;
  let daemon: Daemon;

  beforeAll(async () => {
    env = makeDispatchEnv({
      config: { dispatcher: { workers: 2, containment: 'auto' } },
      queues: { default: null, tight: { limits: { memory: '64M' } } },
      jobTypes: { hog: { template: HOG, limits: { memory: '1G', open_files: 64 } } },
    });
    daemon = await startInProcess(env);
  });

  afterAll(async () => {
    await daemon?.stop();
    env?.cleanup();
  });

  const ended = (id: string): Promise<{ state: string; queue: string }> =>
    waitFor(
      () => findJob(env.spool, id).find((w) => w.state === 'done' || w.state === 'failed'),
      30_000,
      `job ${id} to end`,
    );

  it('the daemon says it contains jobs in cgroup v1', () => {
    expect(daemon.containment.kind).toBe('cgroup-v1');
    expect(daemon.containment.description).toMatch(/^cgroup v1 \(freezer, pids, memory\)$/);
  });

  it('a job over its own memory limit fails and says why; its type’s limit alone lets it run', async () => {
    const limited = await dropJob(env, 'default', { type: 'hog', limits: { memory: '64M' } }, 'own-limit');
    const free = await dropJob(env, 'default', { type: 'hog' }, 'type-limit');
    const a = await ended(limited);
    expect(a.state).toBe('failed');
    expect(readState(env.spool, 'default', 'failed', limited).last?.error).toMatch(
      /^memory limit 64M exceeded/,
    );
    expect((await ended(free)).state).toBe('done');
  });

  it('a queue’s limit wins over the type’s, and a job’s own over the queue’s', async () => {
    const queueLimited = await dropJob(env, 'tight', { type: 'hog' }, 'queue-limit');
    const jobWins = await dropJob(env, 'tight', { type: 'hog', limits: { memory: '2G' } }, 'job-wins');
    expect((await ended(queueLimited)).state).toBe('failed');
    expect(readState(env.spool, 'tight', 'failed', queueLimited).last?.error).toMatch(
      /^memory limit 64M exceeded/,
    );
    expect((await ended(jobWins)).state).toBe('done');
  });

  it('a job that hit its processes limit but exited 0 is done, and its attempt and view say which limit', async () => {
    const id = await dropJob(
      env,
      'default',
      {
        command: "sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait' 2>/dev/null; exit 0",
        limits: { processes: 4 },
      },
      'forks-refused',
    );
    expect((await ended(id)).state).toBe('done');
    const last = readState(env.spool, 'default', 'done', id).last as { limit_hit?: string[]; error?: string };
    expect(last.limit_hit).toEqual(['processes']);
    expect(last.error).toBeUndefined();
    expect(daemon.reads.job(id).info.limit_hit).toEqual(['processes']);
    // A job within its limits is not marked.
    const fine = await dropJob(env, 'default', { command: 'true', limits: { processes: 4 } }, 'within');
    expect((await ended(fine)).state).toBe('done');
    expect(daemon.reads.job(fine).info.limit_hit).toBeUndefined();
  });

  it('refuses a job whose limits are not sizes or counts, saying what was expected', async () => {
    drop(env.spool, 'default', { type: 'hog', limits: { memory: 'lots' } }, 'bad-limit.yaml');
    const error = path.join(env.spool, 'default', 'rejected', 'bad-limit.yaml.error.yaml');
    await waitFor(() => existsSync(error) || undefined, 10_000, 'the bad drop to be rejected');
    expect(readFileSync(error, 'utf8')).toContain(
      'message: Expected a size such as 65536, "64k", "512M" or "2G", got "lots"',
    );
  });
});
