import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { BatchdError } from '../../daemon/errors.ts';
import { type BatchdEvents, EventBus } from '../../daemon/events.ts';
import { FOLDER_MOVES, isLegalMove, type JobPlace } from '../../daemon/jobs/status.ts';
import { commitStaged, stageJobs, takeOrigin } from '../../daemon/spool/accept.ts';
import { HOST_TAG, SELF } from '../../daemon/spool/owner.ts';
import { replayJournal } from '../../daemon/spool/recovery.ts';
import { readJobState, STATE_FILE } from '../../daemon/spool/state-file.ts';
import { moveJobFolder, Transitions } from '../../daemon/spool/transition.ts';
import { startApi, type InProcessApi } from '../api/api-helpers.ts';
import { waitForState } from '../helpers/dispatch.ts';
import { makeSpoolFixture, type SpoolFixture } from '../helpers/spool-fixture.ts';

/**
 * One module moves job folders (spool/transition.ts), checking the table of jobs/status.ts on every
 * path: the moves of the state table, the commit of an acceptance (by the acceptance itself and by
 * journal replay), and the deletion of a finished job, which is announced as `job:purged`.
 */
const silent = pino({ level: 'silent' });

function expectRefused(act: () => unknown, from: JobPlace, to: JobPlace): void {
  let caught: unknown;
  try {
    act();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(BatchdError);
  expect((caught as BatchdError).code).toBe('TRANSITION_ILLEGAL');
  expect((caught as BatchdError).context).toMatchObject({ from, to });
}

describe('the table of folder moves', () => {
  it('lists the commit of an acceptance and the deletion of a finished job beside the state moves', () => {
    expect([...FOLDER_MOVES.staging].sort()).toEqual(['queued', 'running']);
    for (const finished of ['done', 'failed', 'cancelled'] as const)
      expect(isLegalMove(finished, 'trash')).toBe(true);
    for (const live of ['queued', 'running', 'staging'] as const)
      expect(isLegalMove(live, 'trash')).toBe(false);
    expect(isLegalMove('staging', 'done')).toBe(false);
    expect(FOLDER_MOVES.trash).toEqual([]);
    expect(isLegalMove('queued', 'running')).toBe(true);
  });
});

describe('every move of a job folder is checked against the table', () => {
  let f: SpoolFixture;
  let events: EventBus;
  let transitions: Transitions;
  const seen: { name: string; payload: unknown }[] = [];
  beforeEach(() => {
    f = makeSpoolFixture('batchd-moves-');
    events = new EventBus((error) => {
      throw error;
    });
    for (const name of ['job:transition', 'job:purged'] as const)
      events.on(name, (payload: BatchdEvents[typeof name]) => seen.push({ name, payload }));
    transitions = new Transitions(f.layout, events, silent, () => false);
    seen.length = 0;
  });
  afterEach(async () => f.close());

  /** A job accepted into queued/ the ordinary way. */
  const accepted = (name: string): string => {
    const drop = f.dropFile(name, { command: 'true' });
    const staged = stageJobs(f.layout, f.queue, drop.specs, { kind: 'drop', file: drop.file });
    if (staged === undefined) throw new Error('nothing staged');
    expect(takeOrigin(staged, { kind: 'drop', file: drop.file })).toBe(true);
    commitStaged(f.layout, staged, { kind: 'drop', file: drop.file });
    return drop.specs[0]?.id ?? '';
  };

  it('refuses a move between states the table forbids, and nothing moves or changes', () => {
    const id = accepted('a.yaml');
    const job = { id, queue: f.queue };
    transitions.move(job, 'queued', 'running', { reason: 'test start' });
    transitions.move(job, 'running', 'done', { reason: 'test end' });
    const dir = f.layout.jobDir(f.queue, 'done', id);
    const before = readFileSync(path.join(dir, STATE_FILE), 'utf8');
    expectRefused(() => transitions.move(job, 'done', 'queued', { reason: 'not allowed' }), 'done', 'queued');
    expectRefused(
      () => transitions.move(job, 'done', 'running', { reason: 'not allowed' }),
      'done',
      'running',
    );
    expect(readFileSync(path.join(dir, STATE_FILE), 'utf8')).toBe(before);
    expect(readdirSync(f.layout.stateDir(f.queue, 'queued'))).toEqual([]);
    expect(seen.map((e) => e.name)).toEqual(['job:transition', 'job:transition']);
  });

  it("refuses an acceptance's commit into a state the table does not allow, leaving it in staging", () => {
    const drop = f.dropFile('b.yaml', { command: 'true' });
    const origin = { kind: 'drop' as const, file: drop.file };
    const staged = stageJobs(f.layout, f.queue, drop.specs, origin);
    if (staged === undefined) throw new Error('nothing staged');
    expect(takeOrigin(staged, origin)).toBe(true);
    (staged as { into: string }).into = 'done'; // what no acceptance may do: straight into done/
    expectRefused(() => commitStaged(f.layout, staged, origin), 'staging', 'done');
    expect(existsSync(staged.dir)).toBe(true);
    expect(staged.committed).toBe(false);
    expect(readdirSync(f.layout.stateDir(f.queue, 'done'))).toEqual([]);
  });

  it('refuses to move any folder outside the table, whoever asks', () => {
    const id = accepted('c.yaml');
    const source = f.layout.jobDir(f.queue, 'queued', id);
    const trash = mkdtempSync(path.join(f.layout.root, '.deleted-'));
    expectRefused(
      () => moveJobFolder({ id, queue: f.queue }, 'queued', 'trash', source, path.join(trash, id)),
      'queued',
      'trash',
    );
    expectRefused(
      () => transitions.purge({ id, queue: f.queue }, 'queued' as 'done', trash, 'not finished'),
      'queued',
      'trash',
    );
    expect(existsSync(source)).toBe(true);
    expect(readdirSync(trash)).toEqual([]);
    expect(seen).toEqual([]);
  });

  it('deletes a finished job by moving it out of its queue, and announces job:purged', () => {
    const id = accepted('d.yaml');
    const job = { id, queue: f.queue };
    transitions.move(job, 'queued', 'cancelled', { reason: 'cancelled by the test' });
    seen.length = 0;
    const trash = mkdtempSync(path.join(f.layout.root, '.deleted-'));
    expect(transitions.purge(job, 'cancelled', trash, 'deleted by the test')).toBe(true);
    expect(existsSync(f.layout.jobDir(f.queue, 'cancelled', id))).toBe(false);
    expect(readdirSync(trash)).toEqual([id]);
    expect(seen).toEqual([
      {
        name: 'job:purged',
        payload: { jobId: id, queue: f.queue, from: 'cancelled', reason: 'deleted by the test' },
      },
    ]);
    // Gone already: no event, and the caller is told.
    expect(transitions.purge(job, 'cancelled', trash, 'again')).toBe(false);
    expect(seen).toHaveLength(1);
  });

  it('writes a journaled job a crash lost through the table, into the state it was accepted into', () => {
    const id = '20261207T040000.000Z-abcdef-replay';
    const state = {
      id,
      queue: f.queue,
      state: 'running',
      type: 'command',
      attempts: 1,
      retries: 0,
      results: [],
      history: [],
    };
    const files = { 'job.yaml': `id: ${id}\n`, 'state.yaml': JSON.stringify(state) + '\n' };
    const dir = f.layout.journalDir();
    mkdirSync(dir, { recursive: true });
    const header = { owner: { hostname: SELF.hostname, boot_id: 'gone', pid: 999_999_999 } };
    const record = { queue: f.queue, id, into: 'running', files };
    writeFileSync(
      path.join(dir, `${HOST_TAG}-999999999-1.jsonl`),
      `${JSON.stringify(header)}\n${JSON.stringify(record)}\n`,
    );
    expect(replayJournal(f.layout, [f.queue], silent, 0)).toMatchObject({ segments: 1, recreated: 1 });
    expect(readJobState(f.layout.jobDir(f.queue, 'running', id)).state).toBe('running');
    expect(readdirSync(f.folder('staging'))).toEqual([]);
  });

  it('leaves no module but the transition module renaming job folders', () => {
    const read = (file: string): string =>
      readFileSync(new URL(`../../daemon/${file}`, import.meta.url), 'utf8');
    // Replay and purge rename nothing themselves; acceptance and recovery rename only drops and manifests.
    expect(read('spool/journal-replay.ts')).not.toMatch(/renameSync/);
    expect(read('service/purge.ts')).not.toMatch(/renameSync/);
    for (const file of ['spool/accept.ts', 'spool/recovery.ts', 'spool/journal-replay.ts'])
      expect(read(file)).toMatch(/moveJobFolder\(/);
  });
});

describe('deleting finished jobs through the API', () => {
  let t: InProcessApi;
  beforeAll(async () => {
    t = await startApi({ queues: { work: null } });
  }, 60_000);
  afterAll(async () => t.close());

  it('announces job:purged for each finished job deleted, one by one or by state', async () => {
    const purged: BatchdEvents['job:purged'][] = [];
    const off = t.daemon.events.on('job:purged', (e) => purged.push(e));
    try {
      const submit = async (): Promise<string> => {
        const res = await t.json<{ jobs: string[] }>('POST', '/queue/work', { body: { command: 'true' } });
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        return res.body.jobs[0] ?? '';
      };
      const [one, two] = [await submit(), await submit()];
      for (const id of [one, two]) await waitForState(t.env, id, 'done');
      expect((await t.request('POST', `/job/${one}/delete`)).status).toBeLessThan(300);
      expect(purged).toEqual([{ jobId: one, queue: 'work', from: 'done', reason: 'deleted (API)' }]);
      const res = await t.json<{ deleted: number }>('DELETE', '/queue/work?status=done');
      expect(res.body.deleted).toBe(1);
      expect(purged.map((e) => e.jobId)).toEqual([one, two]);
      expect(existsSync(t.daemon.layout.jobDir('work', 'done', two))).toBe(false);
    } finally {
      off();
    }
  });
});
