import { cpSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { JobSpec } from '../../daemon/jobs/spec.ts';
import { JOB_STATES } from '../../daemon/jobs/status.ts';
import { acceptJobs, acceptJobsInTurns, recoverStaging, STAGE_CHUNK } from '../../daemon/spool/accept.ts';
import { DurableAcceptor } from '../../daemon/spool/durable-accept.ts';
import { QUEUE_FOLDERS, type SpoolLayout } from '../../daemon/spool/layout.ts';
import { makeSpoolFixture, type SpoolFixture } from '../helpers/spool-fixture.ts';

const Q = 'default';
const N = 1000;

/**
 * A large task is staged STAGE_CHUNK jobs per turn of the event loop, so the daemon keeps working
 * while it is written. The result on disk must be what the one-pass acceptance makes, and a crash in
 * the middle must leave the drop in incoming/ and nothing half-visible.
 */
describe('a large task accepted in turns of the event loop', () => {
  let fx: SpoolFixture;
  let root: string;
  let layout: SpoolLayout;

  const dropTask = (name: string): { file: string; specs: JobSpec[] } =>
    fx.dropFile(name, { type: 'frames', params: { n: { range: `1..${N}` } } });

  /** What a queue holds, with ids and times taken out: comparable between two acceptances. */
  const shape = (): {
    queued: number;
    tasks: string[];
    staging: string[];
    incoming: string[];
    files: string[];
  } => {
    const queued = readdirSync(layout.stateDir(Q, 'queued'));
    return {
      queued: queued.length,
      tasks: readdirSync(layout.folder(Q, 'tasks')),
      staging: readdirSync(layout.folder(Q, 'staging')),
      incoming: readdirSync(layout.folder(Q, 'incoming')),
      files: [...new Set(queued.flatMap((id) => readdirSync(layout.jobDir(Q, 'queued', id))))].sort(),
    };
  };

  beforeEach(() => {
    fx = makeSpoolFixture('batchd-turns-', 100_000);
    root = fx.root;
    layout = fx.layout;
  });
  afterEach(async () => fx.close());

  it('lets the event loop turn while it stages, and leaves what the one-pass acceptance leaves', async () => {
    const { file, specs } = dropTask('frames.yaml');
    let turns = 0;
    const ticker = setInterval(() => (turns += 1), 0);
    const accepted = await acceptJobsInTurns(layout, Q, specs, { kind: 'drop', file });
    clearInterval(ticker);
    expect(accepted).toHaveLength(N);
    // One timer turn at least between chunks: the loop was never held for the whole task.
    expect(turns).toBeGreaterThanOrEqual(Math.floor(N / STAGE_CHUNK) - 1);
    const inTurns = shape();
    expect(inTurns).toEqual({
      queued: N,
      tasks: ['frames'],
      staging: [],
      incoming: [],
      files: ['job.yaml', 'state.yaml'],
    });
    const manifest = JSON.parse(
      readFileSync(path.join(layout.taskDir(Q, 'frames'), 'task.yaml'), 'utf8'),
    ) as {
      count: number;
      jobs: string[];
    };
    expect(manifest.count).toBe(N);
    expect(new Set(manifest.jobs)).toEqual(new Set(accepted.map((j) => j.spec.id)));
    expect(readdirSync(layout.taskDir(Q, 'frames')).sort()).toEqual(['drop.yaml', 'task.yaml']);

    // The same drop accepted in one pass gives the same shape (under the next free task name).
    const again = dropTask('frames.yaml');
    expect(acceptJobs(layout, Q, again.specs, { kind: 'drop', file: again.file }, false)).toHaveLength(N);
    expect(shape()).toEqual({ ...inTurns, queued: 2 * N, tasks: ['frames', 'frames-2'] });
  });

  it('stages in turns with durable acceptance too, and answers once the task is on disk', async () => {
    const acceptor = new DurableAcceptor(layout);
    try {
      const { file, specs } = dropTask('durable.yaml');
      let turns = 0;
      const ticker = setInterval(() => (turns += 1), 0);
      const accepted = await acceptor.accept(Q, specs, { kind: 'drop', file });
      clearInterval(ticker);
      expect(accepted).toHaveLength(N);
      expect(turns).toBeGreaterThanOrEqual(Math.floor(N / STAGE_CHUNK) - 1);
      expect(shape()).toEqual({
        queued: N,
        tasks: ['durable'],
        staging: [],
        incoming: [],
        files: ['job.yaml', 'state.yaml'],
      });
    } finally {
      await acceptor.close();
    }
  });

  it('leaves the drop in incoming/ and nothing visible when the process dies while staging', async () => {
    const { file, specs } = dropTask('frames.yaml');
    const staging = layout.folder(Q, 'staging');
    // Copy the staging folder as it is after a few turns, under the name a dead process would leave.
    const snapshot = path.join(root, 'snapshot');
    let copied = false;
    const ticker = setInterval(() => {
      const [dir] = readdirSync(staging);
      if (copied || dir === undefined || readdirSync(path.join(staging, dir, 'jobs')).length < STAGE_CHUNK)
        return;
      cpSync(path.join(staging, dir), snapshot, { recursive: true });
      copied = true;
    }, 0);
    await acceptJobsInTurns(layout, Q, specs, { kind: 'drop', file });
    clearInterval(ticker);
    expect(copied).toBe(true);
    // Start over: the task never happened, the drop is back in incoming/, and a dead process's
    // half-staged task folder is there.
    rmSync(layout.queueDir(Q), { recursive: true });
    for (const f of [...Object.values(QUEUE_FOLDERS), ...JOB_STATES])
      mkdirSync(path.join(layout.queueDir(Q), f), { recursive: true });
    writeFileSync(file, 'the drop, still in incoming/\n');
    const dead = path.join(staging, `00000000-999999-${specs[0]?.id ?? 'x'}`);
    renameSync(snapshot, dead);
    const halfStaged = readdirSync(path.join(dead, 'jobs')).length;
    expect(halfStaged).toBeGreaterThanOrEqual(STAGE_CHUNK);
    expect(halfStaged).toBeLessThan(N);
    expect(recoverStaging(layout, Q, 0)).toEqual({ restored: 0, committed: 0 });
    expect(readdirSync(staging)).toEqual([]);
    expect(readdirSync(layout.stateDir(Q, 'queued'))).toEqual([]);
    expect(readdirSync(layout.folder(Q, 'tasks'))).toEqual([]);
    expect(readdirSync(layout.folder(Q, 'incoming'))).toEqual(['frames.yaml']);
  });
});
