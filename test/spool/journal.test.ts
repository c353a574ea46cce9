import { spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { shardOf } from '../../daemon/jobs/id.ts';
import type { JobSpec } from '../../daemon/jobs/spec.ts';
import { DurableAcceptor } from '../../daemon/spool/durable-accept.ts';
import { AcceptJournal, type JournalRecord, segmentFiles } from '../../daemon/spool/journal.ts';
import { replayJournal } from '../../daemon/spool/recovery.ts';
import type { SpoolLayout } from '../../daemon/spool/layout.ts';
import { HOST_TAG, SELF } from '../../daemon/spool/owner.ts';
import { makeSpoolFixture, type SpoolFixture } from '../helpers/spool-fixture.ts';

const Q = 'default';
const silent = pino({ level: 'silent' });
/** No checkpoint by the timer during a test: the tests call settle() themselves. */
const NEVER = 3_600_000;

/**
 * The acceptance journal (spool/journal.ts) on a real spool: API submissions are acknowledged once
 * their records are appended and fdatasynced, a checkpoint (`sync -f`) drops the segments, and a
 * replay after a simulated power loss writes again exactly what the acceptances wrote.
 */
describe('acceptance journal', () => {
  let fx: SpoolFixture;
  let layout: SpoolLayout;
  let journal: AcceptJournal;
  let acceptor: DurableAcceptor;
  const queuedIds = (): string[] => readdirSync(layout.stateDir(Q, 'queued')).sort();
  const submission = (name: string): { specs: JobSpec[]; text: string } => {
    const text = JSON.stringify({ command: `echo ${name}`, name });
    return { specs: fx.specsOf(text, `${name}.json`), text };
  };
  const submit = (name: string): Promise<string> => {
    const { specs, text } = submission(name);
    return acceptor
      .accept(Q, specs, { kind: 'bytes', text, ext: 'json' })
      .then((jobs) => jobs[0]?.spec.id ?? '');
  };
  const segmentLines = (): string[] => {
    const [file] = journal.segments;
    return readFileSync(file ?? '', 'utf8')
      .trimEnd()
      .split('\n');
  };

  beforeEach(async () => {
    fx = makeSpoolFixture('batchd-journal-');
    layout = fx.layout;
    expect(await AcceptJournal.usable(layout.root)).toBe(true);
    journal = new AcceptJournal(layout.root, layout.journalDir(), silent, () => NEVER);
    acceptor = new DurableAcceptor(layout);
    acceptor.useJournal(journal);
  });
  afterEach(async () => {
    await acceptor.close();
    await fx.close();
  });

  it('acknowledges API submissions once their records are journaled; a checkpoint drops the segment', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => submit(`api${i}`)));
    // A file drop in the same spool still goes through the fsync protocol: not journaled.
    const dropped = fx.dropFile('d.yaml', { command: 'true', name: 'dropped' });
    const [fromDrop] = await acceptor.accept(Q, dropped.specs, { kind: 'drop', file: dropped.file });

    expect(queuedIds()).toEqual([...ids, fromDrop?.spec.id].sort());
    expect(readdirSync(fx.folder('staging'))).toEqual([]);
    expect(journal.segments).toHaveLength(1);
    const [header, ...lines] = segmentLines();
    expect(JSON.parse(header ?? '')).toEqual({ owner: SELF });
    const records = lines.map((l) => JSON.parse(l) as JournalRecord);
    expect(records.map((r) => r.id).sort()).toEqual([...ids].sort());
    for (const record of records) {
      const dir = layout.jobDir(Q, 'queued', record.id);
      // The record is the folder, file for file.
      expect(readdirSync(dir).sort()).toEqual(Object.keys(record.files).sort());
      for (const [name, text] of Object.entries(record.files))
        expect(readFileSync(path.join(dir, name), 'utf8')).toBe(text);
      expect(record).toMatchObject({ queue: Q, into: 'queued' });
    }

    await journal.settle();
    expect(journal.segments).toEqual([]);
    expect(segmentFiles(layout.journalDir())).toEqual([]);
    // The next acceptance opens a new segment.
    await submit('after');
    expect(journal.segments).toHaveLength(1);
  });

  it('after a power loss, writes again the folders and files that did not reach the disk', async () => {
    const [lost, torn, moved, unstaged, refused, kept] = await Promise.all(
      ['lost', 'torn', 'moved', 'unstaged', 'refused', 'kept'].map((n) => submit(n)),
    );
    const records = new Map(
      segmentLines()
        .slice(1)
        .map((l) => JSON.parse(l) as JournalRecord)
        .map((r) => [r.id, r]),
    );
    const dirOf = (id = ''): string => layout.jobDir(Q, 'queued', id);
    const segment = segmentOf(journal);

    // What a power loss can leave of folders made without fsync:
    rmSync(dirOf(lost), { recursive: true }); // the folder never reached the disk
    writeFileSync(path.join(dirOf(torn), 'job.yaml'), ''); // files with no data
    writeFileSync(path.join(dirOf(torn), 'state.yaml'), Buffer.alloc(64));
    // A job that ran and finished meanwhile, durably: left as it is.
    const doneDir = layout.jobDir(Q, 'done', moved ?? '');
    mkdirSync(path.dirname(doneDir), { recursive: true });
    renameSync(dirOf(moved), doneDir);
    writeFileSync(path.join(doneDir, 'state.yaml'), JSON.stringify({ id: moved, status: 'done' }));
    // Committed by a rename that was lost: a half-made staging folder of a dead process.
    const deadPid = spawnSync('true').pid ?? 0;
    rmSync(dirOf(unstaged), { recursive: true });
    const leftover = path.join(fx.folder('staging'), `${HOST_TAG}-${deadPid}-${unstaged}`);
    mkdirSync(leftover);
    writeFileSync(path.join(leftover, '.drop.json'), '{"comm');
    // A refused acceptance, taken back by a withdrawal line.
    rmSync(dirOf(refused), { recursive: true });
    appendFileSync(segment, JSON.stringify({ queue: Q, id: refused, withdrawn: true }) + '\n');
    // A torn last append: it and anything after it were never acknowledged.
    const unacked = { ...records.get(kept ?? ''), id: '20261122T000000.000Z-unack1' };
    appendFileSync(segment, JSON.stringify(unacked).slice(0, 40) + '\n' + JSON.stringify(unacked) + '\n');

    const outcome = replayJournal(layout, [Q], silent);

    expect(outcome).toEqual({ segments: 1, recreated: 2, repaired: 2, skipped: 0 });
    for (const id of [lost, torn, unstaged, kept]) {
      const record = records.get(id ?? '');
      for (const [name, text] of Object.entries(record?.files ?? {}))
        expect(readFileSync(path.join(dirOf(id), name), 'utf8'), `${id} ${name}`).toBe(text);
    }
    expect(queuedIds()).toEqual([lost, torn, unstaged, kept].sort());
    expect(readFileSync(path.join(doneDir, 'state.yaml'), 'utf8')).toContain('"done"');
    expect(readdirSync(path.join(layout.stateDir(Q, 'done'), shardOf(moved ?? '')))).toEqual([moved]);
    expect(readdirSync(fx.folder('staging'))).toEqual([]);
    expect(segmentFiles(layout.journalDir())).toEqual([]);
    // Replaying again changes nothing.
    expect(replayJournal(layout, [Q], silent)).toEqual({
      segments: 0,
      recreated: 0,
      repaired: 0,
      skipped: 0,
    });
  });

  it("leaves a live writer's segment alone, and another machine's until it is old", async () => {
    const id = await submit('live');
    const live = spawn('sleep', ['30']);
    try {
      const segment = segmentOf(journal, live.pid);
      rmSync(layout.jobDir(Q, 'queued', id), { recursive: true });
      expect(replayJournal(layout, [Q], silent).segments).toBe(0);
      expect(queuedIds()).toEqual([]);

      const header = { owner: { ...SELF, hostname: `${SELF.hostname}-elsewhere`, pid: 1 } };
      const lines = readFileSync(segment, 'utf8').split('\n');
      writeFileSync(segment, [JSON.stringify(header), ...lines.slice(1)].join('\n'));
      expect(replayJournal(layout, [Q], silent).segments).toBe(0);
      // A second old: a file's mtime has sub-millisecond precision and Date.now() does not, so a
      // segment written this instant can look a fraction of a millisecond younger than "now".
      const past = new Date(Date.now() - 1000);
      utimesSync(segment, past, past);
      expect(replayJournal(layout, [Q], silent, 0)).toMatchObject({ segments: 1, recreated: 1 });
      expect(queuedIds()).toEqual([id]);
    } finally {
      live.kill();
    }
  });

  it('keeps its segments when a checkpoint fails, and drops them at the next one that works', async () => {
    const failing = new AcceptJournal(
      path.join(layout.root, 'no-such-folder'),
      layout.journalDir(),
      silent,
      () => NEVER,
    );
    acceptor.useJournal(failing);
    const id = await submit('kept');
    const [segment] = failing.segments;
    await expect(failing.settle()).rejects.toThrow(/sync -f .*no-such-folder/);
    expect(failing.segments).toEqual([segment]);
    expect(readFileSync(segment ?? '', 'utf8')).toContain(`"id":"${id}"`);
    mkdirSync(path.join(layout.root, 'no-such-folder'));
    await failing.settle();
    expect(segmentFiles(layout.journalDir())).toEqual([]);
  });

  it('withdraws an acceptance that fails after its record was journaled', async () => {
    const { specs, text } = submission('blocked');
    const id = specs[0]?.id ?? '';
    // The commit's rename cannot replace a folder that is not empty.
    mkdirSync(path.join(layout.jobDir(Q, 'queued', id), 'squatter'), { recursive: true });
    await expect(acceptor.accept(Q, specs, { kind: 'bytes', text, ext: 'json' })).rejects.toThrow();
    const lines = segmentLines()
      .slice(1)
      .map((l) => JSON.parse(l) as unknown);
    expect(lines).toEqual([expect.objectContaining({ id }), { queue: Q, id, withdrawn: true }]);
    segmentOf(journal);
    expect(replayJournal(layout, [Q], silent)).toMatchObject({ segments: 1, recreated: 0, repaired: 0 });
    expect(readdirSync(layout.jobDir(Q, 'queued', id))).toEqual(['squatter']);
    expect(readdirSync(fx.folder('staging'))).toEqual([]);
  });
});

/**
 * The journal's open segment, its header rewritten to name another writer: by default a process
 * that has exited, as a crash leaves it.
 */
function segmentOf(journal: AcceptJournal, pid = spawnSync('true').pid ?? 0): string {
  const [segment] = journal.segments;
  if (segment === undefined) throw new Error('no open segment');
  const lines = readFileSync(segment, 'utf8').split('\n');
  writeFileSync(segment, [JSON.stringify({ owner: { ...SELF, pid } }), ...lines.slice(1)].join('\n'));
  return segment;
}
