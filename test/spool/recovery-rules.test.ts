import { existsSync, mkdirSync, readdirSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { EventBus } from '../../daemon/events.ts';
import { commitStaged, stageJobs, takeOrigin } from '../../daemon/spool/accept.ts';
import { JobLocks } from '../../daemon/spool/lock.ts';
import { HOST_TAG, SELF } from '../../daemon/spool/owner.ts';
import {
  CLAIM_RULES,
  type ClaimRecovery,
  JOURNAL_RULES,
  recoverRunning,
  recoverStaging,
  replayJournal,
  STAGING_RULES,
} from '../../daemon/spool/recovery.ts';
import { type JobState, readJobState } from '../../daemon/spool/state-file.ts';
import { Transitions } from '../../daemon/spool/transition.ts';
import { makeSpoolFixture, type SpoolFixture } from '../helpers/spool-fixture.ts';

/**
 * Recovery (spool/recovery.ts) states each impossible state a crash can leave as one rule; each
 * test below builds one such state in a real spool and checks that its rule puts it right.
 */
const silent = pino({ level: 'silent' });
const DEAD_PID = 999_999_999; // above pid_max: never a live process
const DEAD = { hostname: SELF.hostname, boot_id: SELF.boot_id, pid: DEAD_PID };

let f: SpoolFixture;
beforeEach(() => {
  f = makeSpoolFixture('batchd-recovery-');
});
afterEach(async () => f.close());

/** A single job staged by the acceptance code, its staging folder then made a dead process's. */
function stagedByDeadProcess(name: string, options: { take: boolean; claimed?: boolean }): string {
  const drop = f.dropFile(name, { command: 'true' });
  const origin = { kind: 'drop' as const, file: drop.file };
  const claim = options.claimed === true ? (s: JobState): void => void (s.state = 'running') : undefined;
  const staged = stageJobs(f.layout, f.queue, drop.specs, origin, claim);
  if (staged === undefined) throw new Error('nothing staged');
  if (options.take) expect(takeOrigin(staged, origin)).toBe(true);
  const id = drop.specs[0]?.id ?? '';
  renameSync(staged.dir, path.join(f.folder('staging'), `${HOST_TAG}-${DEAD_PID}-${id}`));
  return id;
}

describe('recovery of staging', () => {
  it('ends every list of rules with one that always applies, so nothing found is left unjudged', () => {
    for (const rules of [STAGING_RULES, JOURNAL_RULES, CLAIM_RULES] as const) {
      expect(rules.length).toBeGreaterThanOrEqual(3);
      expect(rules.at(-1)?.when({} as never)).toBe(true);
    }
  });

  it('commits a single job whose drop was taken into queued/', () => {
    const id = stagedByDeadProcess('a.yaml', { take: true });
    expect(recoverStaging(f.layout, f.queue)).toEqual({ restored: 0, committed: 1 });
    expect(readJobState(f.layout.jobDir(f.queue, 'queued', id)).state).toBe('queued');
    expect(readdirSync(f.folder('staging'))).toEqual([]);
  });

  it('commits a job claimed at its acceptance into running/, where its claim is recovered', () => {
    const id = stagedByDeadProcess('b.yaml', { take: true, claimed: true });
    expect(recoverStaging(f.layout, f.queue)).toEqual({ restored: 0, committed: 1 });
    expect(existsSync(f.layout.jobDir(f.queue, 'running', id))).toBe(true);
  });

  it('removes a single job whose drop was not taken, leaving the drop in incoming/', () => {
    stagedByDeadProcess('c.yaml', { take: false });
    expect(recoverStaging(f.layout, f.queue)).toEqual({ restored: 0, committed: 0 });
    expect(readdirSync(f.folder('staging'))).toEqual([]);
    expect(readdirSync(f.folder('incoming'))).toEqual(['c.yaml']);
  });

  it('leaves alone an acceptance whose process is alive', () => {
    const drop = f.dropFile('d.yaml', { command: 'true' });
    const staged = stageJobs(f.layout, f.queue, drop.specs, { kind: 'drop', file: drop.file });
    expect(recoverStaging(f.layout, f.queue, 0)).toEqual({ restored: 0, committed: 0 });
    expect(existsSync(staged?.dir ?? '')).toBe(true);
  });

  it('puts the drop of a task whose manifest was not committed back into incoming/', () => {
    const dir = path.join(f.folder('staging'), `${HOST_TAG}-${DEAD_PID}-20261207T040000.000Z-abcdef-t`);
    mkdirSync(path.join(dir, 'jobs'), { recursive: true });
    mkdirSync(path.join(dir, 'task'));
    writeFileSync(path.join(dir, 'task', 'drop.yaml'), 'type: frames\n');
    expect(recoverStaging(f.layout, f.queue)).toEqual({ restored: 1, committed: 0 });
    expect(readdirSync(f.folder('incoming'))).toEqual(['recovered-20261207T040000.000Z-abcdef-t.yaml']);
    expect(readdirSync(f.folder('staging'))).toEqual([]);
  });

  /** A single job staged by this process, its folder then named as another machine's process's. */
  const stagedElsewhere = (name: string, ageMs: number) => {
    const drop = f.dropFile(name, { command: 'true' });
    const origin = { kind: 'drop' as const, file: drop.file };
    const staged = stageJobs(f.layout, f.queue, drop.specs, origin);
    if (staged === undefined) throw new Error('nothing staged');
    const tag = HOST_TAG === 'ffffffff' ? 'eeeeeeee' : 'ffffffff';
    const dir = path.join(f.folder('staging'), `${tag}-${process.pid}-${drop.specs[0]?.id ?? ''}`);
    renameSync(staged.dir, dir);
    const then = new Date(Date.now() - ageMs);
    utimesSync(dir, then, then);
    // The writer, on its machine, still holds the folder by that name.
    return { id: drop.specs[0]?.id ?? '', origin, writer: { ...staged, dir } };
  };

  it('leaves another machine’s acceptance alone until it is older than the staleness given', () => {
    const { writer, origin } = stagedElsewhere('h.yaml', 5_000);
    expect(recoverStaging(f.layout, f.queue, 60_000)).toEqual({ restored: 0, committed: 0 });
    expect(existsSync(writer.dir)).toBe(true);
    // Its writer goes on: takes the drop and commits, exactly once.
    expect(takeOrigin(writer, origin)).toBe(true);
    commitStaged(f.layout, writer, origin);
    expect(readdirSync(f.layout.stateDir(f.queue, 'queued'))).toHaveLength(1);
  });

  it('takes over a stale leftover of another machine before judging it: its writer, if it still runs, can no longer take the drop into it', () => {
    const { writer, origin } = stagedElsewhere('i.yaml', 120_000);
    expect(recoverStaging(f.layout, f.queue, 60_000)).toEqual({ restored: 0, committed: 0 });
    expect(readdirSync(f.folder('staging'))).toEqual([]);
    // A stalled writer waking up: the drop stays where it is, to be accepted again.
    expect(takeOrigin(writer, origin)).toBe(false);
    expect(readdirSync(f.folder('incoming'))).toEqual(['i.yaml']);
  });

  it('commits a stale leftover of another machine whose drop was taken; its writer can no longer commit it', () => {
    const { id, writer, origin } = stagedElsewhere('j.yaml', 120_000);
    renameSync(origin.file, path.join(writer.dir, 'drop.yaml'));
    const then = new Date(Date.now() - 120_000);
    utimesSync(writer.dir, then, then);
    expect(recoverStaging(f.layout, f.queue, 60_000)).toEqual({ restored: 0, committed: 1 });
    expect(readJobState(f.layout.jobDir(f.queue, 'queued', id)).state).toBe('queued');
    expect(() => commitStaged(f.layout, writer, origin)).toThrow();
    expect(readdirSync(f.layout.stateDir(f.queue, 'queued'))).toEqual([id]);
    expect(readdirSync(f.folder('incoming'))).toEqual([]);
  });

  it('moves the jobs of a committed task still in staging into queued/', () => {
    const ids = [
      stagedByDeadProcess('e.yaml', { take: false }),
      stagedByDeadProcess('g.yaml', { take: false }),
    ];
    const task = path.join(f.folder('staging'), `${HOST_TAG}-${DEAD_PID}-task`);
    mkdirSync(path.join(task, 'jobs'), { recursive: true });
    for (const id of ids)
      renameSync(
        path.join(f.folder('staging'), `${HOST_TAG}-${DEAD_PID}-${id}`),
        path.join(task, 'jobs', id),
      );
    expect(recoverStaging(f.layout, f.queue)).toEqual({ restored: 0, committed: 2 });
    expect(readdirSync(f.layout.stateDir(f.queue, 'queued')).sort()).toEqual([...ids].sort());
    expect(readdirSync(f.folder('staging'))).toEqual([]);
  });
});

describe('recovery from the journal', () => {
  it('skips a gone queue, writes back a lost file, leaves a whole job, and writes again a lost job', () => {
    const job = (id: string, queue = f.queue): Record<string, unknown> => {
      const state = { id, queue, state: 'queued', type: 'command', attempts: 0, retries: 0, results: [] };
      const files = {
        'job.yaml': `id: ${id}\n`,
        'state.yaml': JSON.stringify({ ...state, history: [] }) + '\n',
      };
      return { queue, id, into: 'queued', files };
    };
    const ids = ['gone', 'lost-file', 'whole', 'lost-job'].map((s) => `20261207T040000.000Z-abcdef-${s}`);
    const [gone, lostFile, whole, lostJob] = ids as [string, string, string, string];
    const records = [job(gone, 'no-such-queue'), job(lostFile), job(whole), job(lostJob)];
    for (const id of [lostFile, whole]) {
      const dir = f.layout.jobDir(f.queue, 'queued', id);
      mkdirSync(dir);
      const files = (records.find((r) => r.id === id)?.files ?? {}) as Record<string, string>;
      for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
    }
    writeFileSync(path.join(f.layout.jobDir(f.queue, 'queued', lostFile), 'job.yaml'), ''); // emptied
    mkdirSync(f.layout.journalDir(), { recursive: true });
    writeFileSync(
      path.join(f.layout.journalDir(), `${HOST_TAG}-${DEAD_PID}-1.jsonl`),
      [{ owner: DEAD }, ...records].map((l) => JSON.stringify(l)).join('\n') + '\n',
    );
    expect(replayJournal(f.layout, [f.queue], silent)).toEqual({
      segments: 1,
      recreated: 1,
      repaired: 1,
      skipped: 1,
    });
    expect(readdirSync(f.layout.stateDir(f.queue, 'queued')).sort()).toEqual(
      [lostFile, lostJob, whole].sort(),
    );
    expect(readJobState(f.layout.jobDir(f.queue, 'queued', lostJob)).id).toBe(lostJob);
    expect(existsSync(f.layout.queueDir('no-such-queue'))).toBe(false);
  });
});

describe('recovery of claims whose dispatcher died', () => {
  let locks: JobLocks;
  let transitions: Transitions;
  const requeued: string[] = [];
  const adopted: string[] = [];
  beforeEach(() => {
    locks = new JobLocks(f.layout, 60_000, silent, () => undefined);
    transitions = new Transitions(f.layout, new EventBus(() => undefined), silent, () => false);
    requeued.length = 0;
    adopted.length = 0;
  });
  afterEach(() => locks.close());

  const deps = (adoptable = false): ClaimRecovery => ({
    layout: f.layout,
    locks,
    transitions,
    config: f.config,
    log: silent,
    isRunningHere: () => false,
    requeued: (s) => requeued.push(s.id),
    adoptable: () => adoptable,
    adopt: (s, release) => {
      adopted.push(s.id);
      void release();
    },
  });

  /** A job accepted and claimed by a dispatcher that has since died; `change` edits its record. */
  function claimedByDeadDispatcher(name: string, change?: (s: JobState) => void): string {
    const drop = f.dropFile(name, { command: 'true' });
    const origin = { kind: 'drop' as const, file: drop.file };
    const staged = stageJobs(f.layout, f.queue, drop.specs, origin);
    if (staged === undefined) throw new Error('nothing staged');
    takeOrigin(staged, origin);
    commitStaged(f.layout, staged, origin);
    const id = drop.specs[0]?.id ?? '';
    transitions.move({ id, queue: f.queue }, 'queued', 'running', {
      reason: 'started',
      update: (s) => {
        s.attempts += 1;
        s.running = {
          attempt: s.attempts,
          started_at: new Date().toISOString(),
          host: 'localhost',
          owner: DEAD,
        };
      },
    });
    if (change !== undefined) transitions.update({ id, queue: f.queue }, 'running', 'test', change);
    return id;
  }

  it('queues a job interrupted by its dispatcher dying again, counting the interruption', async () => {
    const id = claimedByDeadDispatcher('a.yaml');
    expect(await recoverRunning(deps(), f.queue)).toBe(1);
    const state = readJobState(f.layout.jobDir(f.queue, 'queued', id));
    expect(state).toMatchObject({ state: 'queued', interruptions: 1 });
    expect(state.last?.outcome).toBe('interrupted');
    expect(requeued).toEqual([id]);
  });

  it('cancels an interrupted job whose cancel had been asked for', async () => {
    const id = claimedByDeadDispatcher('b.yaml', (s) => void (s.cancel_requested = new Date().toISOString()));
    expect(await recoverRunning(deps(), f.queue)).toBe(1);
    expect(existsSync(f.layout.jobDir(f.queue, 'cancelled', id))).toBe(true);
    expect(requeued).toEqual([]);
  });

  it('finishes the move of a job whose end was recorded but not moved', async () => {
    // As an attempt's end writes it (Transitions.move): the outcome recorded, the rename not made.
    const id = claimedByDeadDispatcher('c.yaml', (s) => {
      const ended = { attempt: s.attempts, outcome: 'success' as const, ended_at: new Date().toISOString() };
      s.state = 'done';
      s.running = undefined;
      s.last = ended;
      s.results.push(ended);
    });
    expect(await recoverRunning(deps(), f.queue)).toBe(1);
    expect(readJobState(f.layout.jobDir(f.queue, 'done', id)).state).toBe('done');
  });

  it('hands a job whose work goes on elsewhere to the dispatcher, moving nothing', async () => {
    const id = claimedByDeadDispatcher('d.yaml');
    expect(await recoverRunning(deps(true), f.queue)).toBe(1);
    expect(adopted).toEqual([id]);
    expect(existsSync(f.layout.jobDir(f.queue, 'running', id))).toBe(true);
  });
});
