import { cpSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { JobSpec } from '../../daemon/jobs/spec.ts';
import {
  abandonStaged,
  acceptJobs,
  type AcceptedJob,
  makeTaskJobs,
  stageJobs,
} from '../../daemon/spool/accept.ts';
import { DurableAcceptor } from '../../daemon/spool/durable-accept.ts';
import type { SpoolLayout } from '../../daemon/spool/layout.ts';
import { recoverStaging } from '../../daemon/spool/recovery.ts';
import { readMade, readTaskJobs, tasksLeftUnmade } from '../../daemon/spool/task-manifest.ts';
import { makeSpoolFixture, type SpoolFixture } from '../helpers/spool-fixture.ts';

const Q = 'default';
const N = 1000;

/**
 * A task is committed as one manifest (every job's spec, in order) by one rename; no job folder is
 * made before the commit. A crash before the commit leaves the drop in incoming/ and nothing
 * visible; after it, the task's folders are made in order from its specs.
 */
describe('a task is committed as its manifest', () => {
  let fx: SpoolFixture;
  let layout: SpoolLayout;

  const dropTask = (name: string): { file: string; specs: JobSpec[] } =>
    fx.dropFile(name, { type: 'frames', params: { n: { range: `1..${N}` } } });

  const shape = (): Record<string, string[]> => ({
    queued: readdirSync(layout.stateDir(Q, 'queued')),
    tasks: readdirSync(layout.folder(Q, 'tasks')),
    staging: readdirSync(layout.folder(Q, 'staging')),
    incoming: readdirSync(layout.folder(Q, 'incoming')),
  });

  beforeEach(() => {
    fx = makeSpoolFixture('batchd-task-commit-', 100_000);
    layout = fx.layout;
  });
  afterEach(async () => fx.close());

  it('writes the manifest with every spec and no job folder, the same durable or not', async () => {
    const { file, specs } = dropTask('frames.yaml');
    const accepted = acceptJobs(layout, Q, specs, { kind: 'drop', file }, false);
    expect(accepted).toHaveLength(N);
    expect(shape()).toEqual({ queued: [], tasks: ['frames'], staging: [], incoming: [] });
    const dir = layout.taskDir(Q, 'frames');
    expect(readdirSync(dir).sort()).toEqual(['drop.yaml', 'made.json', 'specs.jsonl', 'task.yaml']);
    const listing = JSON.parse(readFileSync(path.join(dir, 'task.yaml'), 'utf8')) as {
      count: number;
      jobs: string[];
    };
    expect(listing.count).toBe(N);
    expect(listing.jobs).toEqual(accepted.map((j) => j.spec.id));
    const lines = readTaskJobs(dir);
    expect(lines.map((l) => l.spec)).toEqual(accepted.map((j) => j.spec));
    expect(lines.map((l) => l.order)).toEqual(accepted.map((j) => j.state.order));
    expect(readMade(dir)).toMatchObject({ made: 0, count: N });

    const acceptor = new DurableAcceptor(layout);
    try {
      const again = dropTask('frames.yaml');
      expect(await acceptor.accept(Q, again.specs, { kind: 'drop', file: again.file })).toHaveLength(N);
    } finally {
      await acceptor.close();
    }
    expect(shape()).toEqual({ queued: [], tasks: ['frames', 'frames-2'], staging: [], incoming: [] });
    expect(readdirSync(layout.taskDir(Q, 'frames-2')).sort()).toEqual(readdirSync(dir).sort());
  });

  it('makes job folders in queued/ that hold the spool contract', () => {
    const { file, specs } = dropTask('frames.yaml');
    const accepted = acceptJobs(layout, Q, specs, { kind: 'drop', file }, false);
    makeTaskJobs(layout, Q, accepted.slice(0, 10), false);
    const queued = readdirSync(layout.stateDir(Q, 'queued')).sort();
    expect(queued).toEqual(
      accepted
        .slice(0, 10)
        .map((j) => j.spec.id)
        .sort(),
    );
    const first = accepted[0] as AcceptedJob;
    const jobDir = layout.jobDir(Q, 'queued', first.spec.id);
    expect(readdirSync(jobDir).sort()).toEqual(['job.yaml', 'state.yaml']);
    const state = JSON.parse(readFileSync(path.join(jobDir, 'state.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(state).toMatchObject({
      id: first.spec.id,
      state: 'queued',
      task: 'frames',
      order: first.state.order,
    });
    expect(readdirSync(layout.folder(Q, 'staging'))).toEqual([]);
  });

  it('leaves the drop in incoming/ and nothing visible when the process dies before the commit', () => {
    const { file, specs } = dropTask('frames.yaml');
    const staged = stageJobs(layout, Q, specs, { kind: 'drop', file });
    expect(staged).toBeDefined();
    if (staged === undefined) return;
    // The staging folder of a process that died before the commit, with the drop taken into it.
    const dead = path.join(layout.folder(Q, 'staging'), `00000000-999999-${specs[0]?.id ?? 'x'}`);
    cpSync(staged.dir, dead, { recursive: true });
    const manifest = path.join(dead, 'task');
    renameSync(file, path.join(manifest, 'drop.yaml'));
    abandonStaged(staged, { kind: 'drop', file });
    expect(recoverStaging(layout, Q, 0)).toEqual({ restored: 1, committed: 0 });
    expect(shape().queued).toEqual([]);
    expect(shape().tasks).toEqual([]);
    expect(shape().staging).toEqual([]);
    expect(shape().incoming).toHaveLength(1);
  });

  it('lists a committed task whose maker died, and not one whose folders are all made', () => {
    const { file, specs } = dropTask('frames.yaml');
    acceptJobs(layout, Q, specs, { kind: 'drop', file }, false);
    const dir = layout.taskDir(Q, 'frames');
    // This process made it: alive, so not listed (unless at start, when a mark with our pid is an earlier process's).
    expect(tasksLeftUnmade(layout, Q, false)).toEqual([]);
    expect(tasksLeftUnmade(layout, Q, true)).toEqual(['frames']);
    const dead = {
      hostname: readMade(dir)?.owner.hostname,
      boot_id: readMade(dir)?.owner.boot_id,
      pid: 999_999,
    };
    writeFileSync(path.join(dir, 'made.json'), JSON.stringify({ made: 10, count: N, owner: dead }));
    expect(tasksLeftUnmade(layout, Q, false)).toEqual(['frames']);
    rmSync(path.join(dir, 'made.json'));
    expect(tasksLeftUnmade(layout, Q, false)).toEqual([]);
  });
});
