import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { JobSpec } from '../../daemon/jobs/spec.ts';
import { type Origin, stageJobs, takeOrigin } from '../../daemon/spool/accept.ts';
import { recoverStaging } from '../../daemon/spool/recovery.ts';
import { DurableAcceptor } from '../../daemon/spool/durable-accept.ts';
import type { QUEUE_FOLDERS, SpoolLayout } from '../../daemon/spool/layout.ts';
import { readTaskJobs } from '../../daemon/spool/task-manifest.ts';
import { makeSpoolFixture, type SpoolFixture } from '../helpers/spool-fixture.ts';

const Q = 'default';

/**
 * DurableAcceptor on a real spool folder, in process: the group-commit protocol's visible steps
 * (what is where before and after a batch is on disk), and what recovery makes of each crash point.
 */
describe('durable acceptance with group commit', () => {
  let fx: SpoolFixture;
  let root: string;
  let layout: SpoolLayout;
  let acceptor: DurableAcceptor;
  const folder = (name: keyof typeof QUEUE_FOLDERS): string => layout.folder(Q, name);
  const queued = (): string[] => readdirSync(layout.stateDir(Q, 'queued'));
  const specsOf = (text: string, file: string): JobSpec[] => fx.specsOf(text, file);
  const dropFile = (name: string, content: unknown): { file: string; text: string; specs: JobSpec[] } =>
    fx.dropFile(name, content);

  beforeEach(() => {
    fx = makeSpoolFixture('batchd-durable-');
    root = fx.root;
    layout = fx.layout;
    acceptor = new DurableAcceptor(layout);
  });
  afterEach(async () => {
    await acceptor.close();
    await fx.close();
  });

  it('keeps every drop in incoming/ until its batch is on disk, then leaves one complete job per drop', async () => {
    const drops = Array.from({ length: 40 }, (_, i) =>
      dropFile(`d${i}.yaml`, { command: 'true', name: `d${i}` }),
    );
    const results = drops.map((d) => acceptor.accept(Q, d.specs, { kind: 'drop', file: d.file }));

    // Staged, not committed: the drops are where they were, nothing is in queued/.
    expect(readdirSync(folder('incoming')).sort()).toEqual(drops.map((d) => path.basename(d.file)).sort());
    expect(readdirSync(folder('staging'))).toHaveLength(40);
    expect(queued()).toEqual([]);
    expect(acceptor.pending).toBe(40);

    const accepted = await Promise.all(results);
    expect(acceptor.batches).toBe(1); // forty acceptances, one shared round of flushes
    expect(readdirSync(folder('incoming'))).toEqual([]);
    expect(readdirSync(folder('staging'))).toEqual([]);
    expect(queued().sort()).toEqual(accepted.map((jobs) => jobs[0]?.spec.id).sort());
    for (const [i, d] of drops.entries()) {
      const dir = layout.jobDir(Q, 'queued', accepted[i]?.[0]?.spec.id ?? '?');
      expect(readdirSync(dir).sort()).toEqual(['drop.yaml', 'job.yaml', 'state.yaml']);
      expect(readFileSync(path.join(dir, 'drop.yaml'), 'utf8')).toBe(d.text);
      expect(JSON.parse(readFileSync(path.join(dir, 'state.yaml'), 'utf8'))).toMatchObject({
        state: 'queued',
        queue: Q,
      });
    }
  });

  it('gives an API submission its drop.json only at the commit, so an earlier crash does not accept it', async () => {
    const text = '{"command": "true"}';
    const specs = specsOf(text, 'request');
    const origin: Origin = { kind: 'bytes', text, ext: 'json' };
    const result = acceptor.accept(Q, specs, origin);
    const [staging] = readdirSync(folder('staging'));
    expect(readdirSync(path.join(folder('staging'), staging ?? '?')).sort()).toEqual([
      '.drop.json',
      'job.yaml',
      'state.yaml',
    ]);
    const [job] = await result;
    expect(
      readFileSync(path.join(layout.jobDir(Q, 'queued', job?.spec.id ?? '?'), 'drop.json'), 'utf8'),
    ).toBe(text);
  });

  it('answers with no jobs when another daemon takes the drop first, and leaves nothing behind', async () => {
    const d = dropFile('raced.yaml', { command: 'true' });
    const result = acceptor.accept(Q, d.specs, { kind: 'drop', file: d.file });
    const elsewhere = path.join(root, 'taken-by-the-other.yaml');
    renameSync(d.file, elsewhere); // the other daemon's rename wins
    await expect(result).resolves.toEqual([]);
    expect(queued()).toEqual([]);
    expect(readdirSync(folder('staging'))).toEqual([]);
    expect(readFileSync(elsewhere, 'utf8')).toBe(d.text);
  });

  it('gives two tasks of one name staged together distinct names, each with all its jobs', async () => {
    const a = dropFile('a.yaml', { type: 'frames', task: 'render', params: { n: [1, 2, 3] } });
    const b = dropFile('b.yaml', { type: 'frames', task: 'render', params: { n: [4, 5] } });
    const [jobsA, jobsB] = await Promise.all([
      acceptor.accept(Q, a.specs, { kind: 'drop', file: a.file }),
      acceptor.accept(Q, b.specs, { kind: 'drop', file: b.file }),
    ]);
    expect(acceptor.batches).toBe(1);
    expect(readdirSync(folder('tasks')).sort()).toEqual(['render', 'render-2']);
    expect(jobsA?.map((j) => j.state.task)).toEqual(['render', 'render', 'render']);
    expect(jobsB?.map((j) => j.state.task)).toEqual(['render-2', 'render-2']);
    // Each task is committed as its manifest, every job's spec in it; its folders are made later
    // (tasks/materialise.ts).
    expect(readTaskJobs(layout.taskDir(Q, 'render')).map((l) => l.spec.id)).toEqual(
      jobsA?.map((j) => j.spec.id),
    );
    expect(readTaskJobs(layout.taskDir(Q, 'render-2')).map((l) => l.spec.id)).toEqual(
      jobsB?.map((j) => j.spec.id),
    );
    expect(queued()).toHaveLength(0);
    const manifest = (name: string): unknown =>
      JSON.parse(readFileSync(path.join(layout.taskDir(Q, name), 'task.yaml'), 'utf8'));
    expect(manifest('render-2')).toMatchObject({
      name: 'render-2',
      count: 2,
      jobs: jobsB?.map((j) => j.spec.id),
    });
    expect(readFileSync(path.join(layout.taskDir(Q, 'render'), 'drop.yaml'), 'utf8')).toBe(a.text);
    expect(readdirSync(folder('incoming'))).toEqual([]);
    expect(readdirSync(folder('staging'))).toEqual([]);
  });

  it('fails the whole batch when its files cannot be flushed, leaving every drop in incoming/', async () => {
    const drops = ['x.yaml', 'y.yaml', 'z.yaml'].map((n) => dropFile(n, { command: 'true' }));
    const results = drops.map((d) => acceptor.accept(Q, d.specs, { kind: 'drop', file: d.file }));
    // One staged acceptance vanishes before the flush (as if its disk went away): its fsync fails.
    const [victim] = readdirSync(folder('staging'));
    rmSync(path.join(folder('staging'), victim ?? '?'), { recursive: true });
    const settled = await Promise.allSettled(results);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(readdirSync(folder('incoming')).sort()).toEqual(['x.yaml', 'y.yaml', 'z.yaml']);
    expect(readdirSync(folder('staging'))).toEqual([]);
    expect(queued()).toEqual([]);
  });

  it('puts a taken drop back into incoming/ when its commit fails, and fails only that acceptance', async () => {
    const good = dropFile('good.yaml', { command: 'true' });
    const bad = dropFile('bad.yaml', { command: 'true' });
    // Something already occupies the folder the bad job would be renamed to: its commit fails.
    const blocker = layout.jobDir(Q, 'queued', bad.specs[0]?.id ?? '?');
    mkdirSync(blocker);
    writeFileSync(path.join(blocker, 'occupied'), '');
    const [ok, failed] = await Promise.allSettled([
      acceptor.accept(Q, good.specs, { kind: 'drop', file: good.file }),
      acceptor.accept(Q, bad.specs, { kind: 'drop', file: bad.file }),
    ]);
    expect(ok.status).toBe('fulfilled');
    expect(failed.status).toBe('rejected');
    expect(readdirSync(folder('incoming'))).toEqual(['bad.yaml']);
    expect(readFileSync(bad.file, 'utf8')).toBe(bad.text);
    expect(readdirSync(folder('staging'))).toEqual([]);
    expect(readdirSync(blocker)).toEqual(['occupied']);
  });

  it('waits on close() for acceptances under way, then refuses new ones', async () => {
    const d = dropFile('last.yaml', { command: 'true' });
    const result = acceptor.accept(Q, d.specs, { kind: 'drop', file: d.file });
    await acceptor.close();
    await expect(result).resolves.toHaveLength(1);
    const e = dropFile('late.yaml', { command: 'true' });
    await expect(acceptor.accept(Q, e.specs, { kind: 'drop', file: e.file })).rejects.toThrow('stopping');
    expect(existsSync(e.file)).toBe(true);
    expect(readdirSync(folder('staging'))).toEqual([]);
  });

  describe('recovery after a crash at each step (the staging folder of a dead process)', () => {
    /** Stage like the acceptor does, then make the staging folder look like a dead process's. */
    const crashAfter = (step: 'stage' | 'take', name: string): { file: string; id: string } => {
      const d = dropFile(name, { command: 'true' });
      const origin: Origin = { kind: 'drop', file: d.file };
      const staged = stageJobs(layout, Q, d.specs, origin);
      if (staged === undefined) throw new Error('nothing staged');
      if (step === 'take') expect(takeOrigin(staged, origin)).toBe(true);
      const dead = path.basename(staged.dir).replace(`-${process.pid}-`, '-4194999-'); // above the largest pid Linux allows (2^22)
      renameSync(staged.dir, path.join(path.dirname(staged.dir), dead));
      return { file: d.file, id: d.specs[0]?.id ?? '?' };
    };

    it('staged but drop not taken: the staging folder goes, the drop stays in incoming/', () => {
      const { file } = crashAfter('stage', 'early.yaml');
      expect(recoverStaging(layout, Q)).toEqual({ restored: 0, committed: 0 });
      expect(existsSync(file)).toBe(true);
      expect(readdirSync(folder('staging'))).toEqual([]);
      expect(queued()).toEqual([]);
    });

    it('drop taken, not committed: recovery commits the complete job', () => {
      const { file, id } = crashAfter('take', 'late.yaml');
      expect(recoverStaging(layout, Q)).toEqual({ restored: 0, committed: 1 });
      expect(existsSync(file)).toBe(false);
      expect(queued()).toEqual([id]);
      expect(readdirSync(layout.jobDir(Q, 'queued', id)).sort()).toEqual([
        'drop.yaml',
        'job.yaml',
        'state.yaml',
      ]);
    });
  });
});
