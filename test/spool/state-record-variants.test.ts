import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { BatchdError } from '../../daemon/errors.ts';
import { SELF } from '../../daemon/spool/owner.ts';
import { type JobState, readJobRecord, readJobState, STATE_FILE } from '../../daemon/spool/state-file.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { jobDir, jobsIn, type TestEnv, waitFor } from '../helpers/env.ts';
import { spoolWithThreeQueued } from './three-queued.ts';

const ID = '20261207T050000.000Z-fedcba';
const AT = '2026-12-07T05:00:00.000Z';

const attempt = {
  attempt: 1,
  started_at: AT,
  host: 'localhost',
  owner: { hostname: 'h', boot_id: 'b', pid: 7 },
};

function record(state: JobState['state'], extra: Partial<JobState> = {}): JobState {
  return {
    id: ID,
    queue: 'q',
    state,
    type: 'command',
    priority: 0,
    order: 1,
    after: [],
    submitted_at: AT,
    attempts: 1,
    retries: 0,
    results: [],
    history: [{ at: AT, from: null, to: 'queued', queue: 'q', reason: 'submitted' }],
    ...extra,
  };
}

describe('the variants of the job record', () => {
  let root = '';
  let dir = '';
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'batchd-record-variants-'));
    dir = path.join(root, ID);
    mkdirSync(dir);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const writeRecord = (value: unknown): void =>
    writeFileSync(path.join(dir, STATE_FILE), JSON.stringify(value, null, 1) + '\n');

  it('reads an attempt under way only in a running record', () => {
    writeRecord(record('running', { running: attempt }));
    const running = readJobRecord(dir);
    expect(running.state === 'running' && running.running?.host).toBe('localhost');
    // Without its attempt it still reads: recovery queues such a claim again (state-record.ts).
    writeRecord(record('running'));
    expect(readJobState(dir).state).toBe('running');
  });

  it('refuses a queued or finished record left holding an attempt, naming the field and the fix', () => {
    for (const state of ['queued', 'done', 'failed', 'cancelled'] as const) {
      writeRecord(record(state, { running: attempt }));
      let thrown: unknown;
      try {
        readJobState(dir);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, state).toBeInstanceOf(BatchdError);
      const error = thrown as BatchdError;
      expect(error.code).toBe('JOB_INVALID');
      expect(error.message).toContain(path.join(dir, STATE_FILE));
      expect(error.problems[0]?.field).toBe('running');
      expect(error.message).toMatch(/only a running job has an attempt under way/);
    }
  });
});

describe('a daemon finding hand-edited records in running/ and queued/', () => {
  let env: TestEnv;
  let daemon: DaemonProcess | undefined;
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    env.cleanup();
  });

  it('reports each once, leaves both as they are, runs the other job, and recovers each once put right', async () => {
    env = await spoolWithThreeQueued();

    const [other, claimed, edited] = jobsIn(env.spool, 'default', 'queued').sort() as [
      string,
      string,
      string,
    ];
    // A claim whose dispatcher died (no such process), its record then broken by hand.
    const deadPid = spawnSync('true').pid;
    const stateOf = (id: string, where: 'queued' | 'running'): string =>
      path.join(jobDir(env.spool, 'default', where, id), STATE_FILE);
    const claimedRecord = {
      ...(JSON.parse(readFileSync(stateOf(claimed, 'queued'), 'utf8')) as JobState),
      state: 'running',
      attempts: 1,
      running: {
        attempt: 1,
        started_at: new Date().toISOString(),
        host: 'localhost',
        owner: { ...SELF, pid: deadPid },
      },
    };
    renameSync(
      jobDir(env.spool, 'default', 'queued', claimed),
      jobDir(env.spool, 'default', 'running', claimed),
    );
    const brokenText = JSON.stringify({ ...claimedRecord, attempts: 'many' });
    writeFileSync(stateOf(claimed, 'running'), brokenText);
    // A queued job whose record was given an attempt under way by hand.
    const editedOriginal = readFileSync(stateOf(edited, 'queued'), 'utf8');
    const editedText = JSON.stringify({
      ...(JSON.parse(editedOriginal) as object),
      running: claimedRecord.running,
    });
    writeFileSync(stateOf(edited, 'queued'), editedText);
    writeFileSync(path.join(env.spool, 'default', 'queue.yaml'), 'enabled: true\n');

    daemon = await startDaemon(env.etc, env.spool);
    const started = daemon;
    await waitFor(() => jobsIn(env.spool, 'default', 'done').includes(other), 30_000, 'the other job done');
    const reports = (id: string, field: string): Record<string, unknown>[] =>
      started.records().filter((r) => (r.jobId === id || String(r.file).includes(id)) && r.field === field);
    await waitFor(
      () => (reports(claimed, 'attempts').length > 0 && reports(edited, 'running').length > 0) || undefined,
      10_000,
      'both reports',
    );
    // Several rescans (one a second here) later: each still reported once, both left as they were.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(reports(claimed, 'attempts')).toHaveLength(1);
    expect(String(reports(claimed, 'attempts')[0]?.msg)).toMatch(/unreadable state\.yaml in running/);
    expect(reports(claimed, 'attempts')[0]).toMatchObject({ file: stateOf(claimed, 'running') });
    expect(reports(edited, 'running')).toHaveLength(1);
    expect(jobsIn(env.spool, 'default', 'running')).toEqual([claimed]);
    expect(jobsIn(env.spool, 'default', 'queued')).toEqual([edited]);
    expect(readFileSync(stateOf(claimed, 'running'), 'utf8')).toBe(brokenText);
    expect(readFileSync(stateOf(edited, 'queued'), 'utf8')).toBe(editedText);

    // Put right: the stale claim is recovered (its interruption counted) and runs; so does the other.
    writeFileSync(stateOf(claimed, 'running'), JSON.stringify(claimedRecord));
    writeFileSync(stateOf(edited, 'queued'), editedOriginal);
    await waitFor(
      () => jobsIn(env.spool, 'default', 'done').length === 3 || undefined,
      30_000,
      'the repaired jobs done',
    );
    const recovered = readJobState(jobDir(env.spool, 'default', 'done', claimed));
    expect(recovered.interruptions).toBe(1);
    expect(recovered.results.map((r) => r.outcome)).toEqual(['interrupted', 'success']);
  }, 90_000);
});
