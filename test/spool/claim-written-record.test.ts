import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import {
  type JobState,
  readJobState,
  readJobStateWritten,
  serializeState,
  STATE_FILE,
} from '../../daemon/spool/state-file.ts';

const ID = '20261207T040000.000Z-kept01';
const AT = '2026-12-07T04:00:00.000Z';

/** A task job's first record, as acceptance makes it (optional fields left undefined). */
function written(): JobState {
  return {
    id: ID,
    queue: 'q',
    state: 'queued',
    type: 'command',
    host: undefined,
    priority: 0,
    order: 7,
    not_before: undefined,
    after: [],
    task: 'render',
    timeout_ms: undefined,
    submitted_at: AT,
    attempts: 0,
    retries: 0,
    results: [],
    history: [{ at: AT, from: null, to: 'queued', reason: 'accepted (drop)' }],
  };
}

/**
 * A claim takes the record its daemon wrote at acceptance without checking it against the schema
 * again, but only while the file holds exactly what was written: what it gets is what a read of
 * the file gives, and any change on disk (a control verb, another dispatcher, a hand edit, a
 * broken file) is read and checked as ever.
 */
describe("a claim's record of a job this daemon wrote", () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const folder = (text: string): string => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'batchd-kept-'));
    const job = path.join(dir, ID);
    mkdirSync(job);
    writeFileSync(path.join(job, STATE_FILE), text);
    return job;
  };

  it('is what a read of the unchanged file gives, as a new object', () => {
    const kept = written();
    const job = folder(serializeState(kept));
    const record = readJobStateWritten(job, kept);
    expect(record).toEqual(readJobState(job, { locked: true }));
    expect(record).not.toBe(kept);
    record.attempts += 1;
    expect(kept.attempts).toBe(0);
  });

  it('is the file as it is now when it was changed since', () => {
    const kept = written();
    const job = folder(serializeState({ ...kept, priority: 5 }));
    expect(readJobStateWritten(job, kept)).toMatchObject({ id: ID, priority: 5 });
    // A hand edit in YAML, with the same values but other text, is read as YAML.
    writeFileSync(
      path.join(job, STATE_FILE),
      `id: ${ID}\nqueue: q\nstate: queued\ntype: command\nattempts: 0\nretries: 0\nresults: []\nhistory: []\n`,
    );
    expect(readJobStateWritten(job, kept)).toEqual(readJobState(job, { locked: true }));
  });

  it('is refused, naming the file and the field, when the file no longer holds a valid record', () => {
    const kept = written();
    const job = folder(serializeState({ ...kept, attempts: -1 }));
    expect(() => readJobStateWritten(job, kept)).toThrow(
      expect.objectContaining({
        code: 'JOB_INVALID',
        message: expect.stringContaining('attempts') as string,
      }),
    );
    rmSync(path.join(job, STATE_FILE));
    expect(() => readJobStateWritten(job, kept)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
