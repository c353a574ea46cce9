import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';

import { EventBus } from '../../daemon/events.ts';
import { newJobId } from '../../daemon/jobs/id.ts';
import { JOB_STATES } from '../../daemon/jobs/status.ts';
import { SpoolLayout } from '../../daemon/spool/layout.ts';
import { SparePool } from '../../daemon/spool/spares.ts';
import { type JobState, readJobState, serializeState } from '../../daemon/spool/state-file.ts';
import { Transitions } from '../../daemon/spool/transition.ts';

/** A job as acceptance leaves it: its folder in queued/ with job.yaml and state.yaml. */
function accepted(layout: SpoolLayout, queue: string): string {
  const id = newJobId('spare');
  const dir = layout.jobDir(queue, 'queued', id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'job.yaml'), JSON.stringify({ id, type: 'command' }));
  const state: JobState = {
    id,
    queue,
    state: 'queued',
    type: 'command',
    priority: 0,
    order: 1,
    after: [],
    submitted_at: new Date().toISOString(),
    attempts: 0,
    retries: 0,
    results: [],
    history: [{ at: new Date().toISOString(), from: null, to: 'queued', reason: 'accepted' }],
  };
  writeFileSync(path.join(dir, 'state.yaml'), serializeState(state));
  return id;
}

const inode = (file: string): number => statSync(file).ino;

describe("a dispatcher's spare files as state temp files", () => {
  let root = '';
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  function setUp(): { layout: SpoolLayout; pool: SparePool; transitions: Transitions } {
    root = mkdtempSync(path.join(os.tmpdir(), 'batchd-spares-'));
    const layout = new SpoolLayout(root);
    for (const state of JOB_STATES) mkdirSync(layout.stateDir('q', state), { recursive: true });
    const pool = new SparePool(path.join(root, '.locks', '.spares-test'));
    const events = new EventBus((error) => {
      throw error;
    });
    const transitions = new Transitions(layout, events, pino({ level: 'silent' }), () => false, pool);
    return { layout, pool, transitions };
  }

  it('claims take a pooled spare and finished jobs give theirs back: jobs after the first create no state temp file', () => {
    const { layout, pool, transitions } = setUp();
    const spare = pool.take();
    const spareInode = inode(spare);
    pool.give(spare);
    const poolFiles = (): number[] => readdirSync(pool.dir).map((f) => inode(path.join(pool.dir, f)));

    for (let round = 0; round < 3; round++) {
      const id = accepted(layout, 'q');
      const job = { id, queue: 'q' };
      const queued = layout.jobDir('q', 'queued', id);
      const acceptedInode = inode(path.join(queued, 'state.yaml'));
      transitions.move(job, 'queued', 'running', { reason: 'started' });
      const running = layout.jobDir('q', 'running', id);
      // The spare now holds the record; the accepted file became the next write's temp file.
      expect(inode(path.join(running, 'state.yaml'))).toBe(spareInode);
      expect(inode(path.join(running, '.state.yaml.next'))).toBe(acceptedInode);
      expect(poolFiles()).toEqual([]);
      expect(readJobState(running)).toMatchObject({ id, state: 'running' });

      transitions.move(job, 'running', 'done', { reason: 'exit 0' });
      const done = layout.jobDir('q', 'done', id);
      expect(readdirSync(done).sort()).toEqual(['job.yaml', 'state.yaml']);
      expect(inode(path.join(done, 'state.yaml'))).toBe(acceptedInode);
      expect(readJobState(done)).toMatchObject({ id, state: 'done' });
      // The same inode is back in the pool for the next job's claim.
      expect(poolFiles()).toEqual([spareInode]);
    }
  });

  it('a write with an empty pool, or no pool, creates its temp file as before', () => {
    const { layout, transitions } = setUp();
    const id = accepted(layout, 'q');
    transitions.move({ id, queue: 'q' }, 'queued', 'running', { reason: 'started' });
    const running = layout.jobDir('q', 'running', id);
    expect(existsSync(path.join(running, '.state.yaml.next'))).toBe(true);
    expect(readJobState(running)).toMatchObject({ id, state: 'running' });
  });

  it('a pool folder removed by hand is made again; a spare that cannot be reclaimed stays where it is', () => {
    const { layout, pool, transitions } = setUp();
    pool.give(pool.take());
    rmSync(pool.dir, { recursive: true, force: true });
    const id = accepted(layout, 'q');
    const job = { id, queue: 'q' };
    transitions.move(job, 'queued', 'running', { reason: 'started' });
    transitions.move(job, 'running', 'done', { reason: 'exit 0' });
    expect(readJobState(layout.jobDir('q', 'done', id))).toMatchObject({ state: 'done' });
    expect(readdirSync(pool.dir)).toHaveLength(1);
    expect(pool.reclaim(path.join(root, 'no-such-file'))).toBe(false);
  });

  it('only regular files are taken into the pool: a folder or a link put in a job folder stays there', () => {
    const { layout, pool, transitions } = setUp();
    const id = accepted(layout, 'q');
    const job = { id, queue: 'q' };
    transitions.move(job, 'queued', 'running', { reason: 'started' });
    const running = layout.jobDir('q', 'running', id);
    rmSync(path.join(running, '.state.yaml.next'));
    mkdirSync(path.join(running, '.state.yaml.next'));
    writeFileSync(path.join(running, '.state.yaml.next', 'inside'), 'x');
    // The end of the job cannot be written through a folder: the move fails and says so.
    expect(() => transitions.move(job, 'running', 'done', { reason: 'exit 0' })).toThrow(/EISDIR/);
    rmSync(path.join(running, '.state.yaml.next'), { recursive: true });
    const other = path.join(root, 'victim');
    writeFileSync(other, 'untouched');
    symlinkSync(other, path.join(running, '.state.yaml.next'));
    transitions.move(job, 'running', 'done', { reason: 'exit 0' });
    const done = layout.jobDir('q', 'done', id);
    expect(readJobState(done)).toMatchObject({ id, state: 'done' });
    expect(readFileSync(other, 'utf8')).toBe('untouched');
    // A folder at the spare's name when the job ends: not reclaimed, the pool stays files only.
    mkdirSync(path.join(done, '.state.yaml.extra'));
    expect(pool.reclaim(path.join(done, '.state.yaml.extra'))).toBe(false);
    expect(statSync(path.join(done, '.state.yaml.extra')).isDirectory()).toBe(true);
    for (const name of existsSync(pool.dir) ? readdirSync(pool.dir) : [])
      expect(lstatSync(path.join(pool.dir, name)).isFile()).toBe(true);
  });

  it("a reader never takes another job's record for this one's", () => {
    const { layout } = setUp();
    const mine = accepted(layout, 'q');
    const theirs = accepted(layout, 'q');
    const mineDir = layout.jobDir('q', 'queued', mine);
    const record = readJobState(layout.jobDir('q', 'queued', theirs));
    writeFileSync(path.join(mineDir, 'state.yaml'), serializeState(record));
    expect(() => readJobState(mineDir)).toThrow(
      expect.objectContaining({
        code: 'JOB_INVALID',
        message: expect.stringContaining(`is the record of job ${theirs}, not ${mine}`) as string,
      }),
    );
  });
});
