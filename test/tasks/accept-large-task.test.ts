import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { isJobId, jobIdMaker, nextOrder, reserveOrders } from '../../daemon/jobs/id.ts';
import { acceptJobs } from '../../daemon/spool/accept.ts';
import { readTaskJobs } from '../../daemon/spool/task-manifest.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { drop, jobsIn, makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { makeSpoolFixture, type SpoolFixture } from '../helpers/spool-fixture.ts';

const N = 100_000;
/** The job whose parameter is bad (1-based), as a user counts them. */
const BAD_JOB = 73_412;

/**
 * A 100,000-job task is written as its manifest in a few large writes (streamed, not built as one
 * string), and still checked job by job: one bad value refuses the whole task, naming the file,
 * the value's line and its place in the list.
 */
describe('a 100,000-job task is accepted whole', () => {
  let fx: SpoolFixture;
  afterEach(async () => fx.close());

  it('writes a manifest the readers take back as it was accepted: every spec, in order, every id listed', () => {
    fx = makeSpoolFixture('batchd-accept-large-', N);
    const { file, specs } = fx.dropFile('big.yaml', { type: 'frames', params: { n: { range: `1..${N}` } } });
    const accepted = acceptJobs(fx.layout, fx.queue, specs, { kind: 'drop', file }, false);
    expect(accepted).toHaveLength(N);
    const dir = fx.layout.taskDir(fx.queue, 'big');

    // specs.jsonl: one `{order, spec}` line per job, in the task's order.
    const lines = readFileSync(path.join(dir, 'specs.jsonl'), 'utf8').split('\n');
    expect(lines).toHaveLength(N + 1);
    expect(lines.at(-1)).toBe('');
    const mismatched = accepted.findIndex(
      (job, i) => lines[i] !== JSON.stringify({ order: job.state.order, spec: job.spec }),
    );
    expect(mismatched).toBe(-1);
    const read = readTaskJobs(dir);
    expect(read).toHaveLength(N);
    expect(read[BAD_JOB - 1]?.spec.params).toEqual({ n: BAD_JOB });
    expect(read[BAD_JOB - 1]?.spec.task).toEqual({ name: 'big', index: BAD_JOB - 1, count: N });
    expect(read.every((line, i) => i === 0 || line.order > (read[i - 1]?.order ?? Infinity))).toBe(true);

    // task.yaml: the listing, as JSON with one-space indents.
    const ids = accepted.map((job) => job.spec.id);
    expect(new Set(ids).size).toBe(N);
    expect(ids.every((id) => isJobId(id) && id.endsWith('-big'))).toBe(true);
    const listing = {
      name: 'big',
      queue: fx.queue,
      submitted_at: specs[0]?.submitted_at,
      count: N,
      jobs: ids,
    };
    expect(readFileSync(path.join(dir, 'task.yaml'), 'utf8')).toBe(JSON.stringify(listing, null, 1) + '\n');
    expect(readdirSync(fx.folder('staging'))).toEqual([]);
  });
});

describe('job ids made for a task', () => {
  it('are unique, carry the slug once made, and follow the order they were made in', () => {
    const next = jobIdMaker('Big Task.yaml');
    const ids = Array.from({ length: 20_000 }, () => next());
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => isJobId(id) && id.endsWith('-big-task'))).toBe(true);
    // The time stamp (the first 20 characters) never goes back within a task.
    expect(ids.every((id, i) => i === 0 || id.slice(0, 20) >= (ids[i - 1] ?? '').slice(0, 20))).toBe(true);
  });
});

describe('order numbers reserved for the jobs of a task', () => {
  it('are consecutive, and the next order number given is larger than all of them', () => {
    // A time in the past: the numbers continue from the last one given, whatever the clock.
    const first = reserveOrders(5000, 1_000);
    expect(nextOrder(1_000)).toBe(first + 5000);
    expect(nextOrder(Date.now())).toBeGreaterThan(first + 5000);
  });
});

interface Report {
  file: string;
  code: string;
  message: string;
  problems: { field?: string; line?: number; message: string }[];
}

describe('a bad value in one job of a 100,000-job task', () => {
  let env: TestEnv;
  let daemon: DaemonProcess;
  const Q = 'default';

  beforeAll(async () => {
    env = makeEnv({
      // The list of 100,000 values is about 1 MB of YAML.
      config: { storage: { max_job_file_size: 4_000_000 } },
      jobTypes: { frames: { template: 'true', params: [{ name: 'n', type: 'Integer' }] } },
      queues: { [Q]: null },
    });
    daemon = await startDaemon(env.etc, env.spool);
  }, 60_000);
  afterAll(async () => {
    await daemon.stop();
    env.cleanup();
  });

  it('refuses the whole task, naming the file, the line of the value and its place in the list', async () => {
    // Job i of the task takes the i-th value; its line is 3 lines below the list's key.
    const values = Array.from({ length: N }, (_, i) => (i === BAD_JOB - 1 ? '  - seventy' : `  - ${i + 1}`));
    const text = `type: frames\nparams:\n  n:\n${values.join('\n')}\n`;
    const incoming = path.join(env.spool, Q, 'incoming');
    writeFileSync(path.join(incoming, '.big.yaml.tmp'), text);
    renameSync(path.join(incoming, '.big.yaml.tmp'), path.join(incoming, 'big.yaml'));

    const rejected = path.join(env.spool, Q, 'rejected');
    const errorFile = path.join(rejected, 'big.yaml.error.yaml');
    await waitFor(
      () => existsSync(errorFile) && existsSync(path.join(rejected, 'big.yaml')),
      45_000,
      'the refusal',
    );
    const report = parse(readFileSync(errorFile, 'utf8')) as Report;
    const problem = {
      field: `params.n.${BAD_JOB - 1}`,
      line: BAD_JOB + 3,
      message: 'Expected an integer, got "seventy" (string)',
    };
    expect(report.code).toBe('JOB_INVALID');
    expect(report.problems).toEqual([problem]);
    expect(report.message).toBe(`big.yaml, line ${problem.line}, field ${problem.field}: ${problem.message}`);
    // Nothing of the task: no manifest, no job, nothing left staged, the drop set aside whole.
    const tasks = path.join(env.spool, Q, 'tasks');
    expect(existsSync(tasks) ? readdirSync(tasks) : []).toEqual([]);
    expect(jobsIn(env.spool, Q, 'queued')).toEqual([]);
    expect(readdirSync(path.join(env.spool, Q, '.staging'))).toEqual([]);
    expect(readFileSync(path.join(rejected, 'big.yaml'), 'utf8')).toBe(text);

    // The same task without the bad value is accepted.
    drop(env.spool, Q, text.replace('  - seventy\n', `  - ${BAD_JOB}\n`), 'big-fixed.yaml');
    await waitFor(() => existsSync(path.join(tasks, 'big-fixed', 'task.yaml')), 45_000, 'the fixed task');
    const listing = JSON.parse(readFileSync(path.join(tasks, 'big-fixed', 'task.yaml'), 'utf8')) as {
      count: number;
    };
    expect(listing.count).toBe(N);
  }, 120_000);
});
