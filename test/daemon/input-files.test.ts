import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type InProcessApi, startApi } from '../api/api-helpers.ts';
import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { dropJob, waitForState } from '../helpers/dispatch.ts';
import { drop, jobDir, readState, waitFor } from '../helpers/env.ts';

interface Refusal {
  error: { code: string; message: string; details: { field: string; message: string }[] };
}

/**
 * A job that runs on this machine and names an InputFile that is not there (or is a FIFO or a
 * folder) is refused at submission, by a drop as over HTTP (the CLI's door); a job that waited
 * for a start time is checked when it starts, and fails before its command runs.
 */
describe('InputFile parameters of local jobs', () => {
  let t: InProcessApi;
  let files: string;

  beforeAll(async () => {
    t = await startApi({
      queues: { default: null },
      jobTypes: {
        count: {
          // Leaves a mark in its folder when it runs at all, whatever its input.
          template: 'touch "$BATCHD_JOB_DIR/ran"; wc -l < $file',
          params: [{ name: 'file', type: 'InputFile' }],
        },
      },
    });
    files = path.join(t.env.root, 'files');
    mkdirSync(files);
    writeFileSync(path.join(files, 'present.txt'), 'one\ntwo\n');
  });
  afterAll(() => t.close());

  const submit = (file: string, extra: object = {}): Promise<{ status: number; body: unknown }> =>
    t.json('POST', '/queue/default', { body: { type: 'count', params: { file }, ...extra } });

  it('refuses a drop naming a missing file, saying which parameter and which path', async () => {
    const missing = path.join(files, 'missing.txt');
    drop(t.env.spool, 'default', { type: 'count', params: { file: missing } }, 'missing.yaml');
    const report = path.join(t.env.spool, 'default', 'rejected', 'missing.yaml.error.yaml');
    await waitFor(() => existsSync(report), 10_000, 'the drop to be refused');
    const parsed = parse(readFileSync(report, 'utf8')) as { code: string; problems: object[] };
    expect(parsed.code).toBe('JOB_INVALID');
    expect(parsed.problems).toEqual([
      { field: 'params.file', line: 3, message: `Input file ${JSON.stringify(missing)} does not exist` },
    ]);
  });

  it('refuses the same over HTTP with a 422 naming the parameter and the path', async () => {
    const missing = path.join(files, 'missing.txt');
    const answer = await submit(missing);
    expect(answer.status).toBe(422);
    const { error } = answer.body as Refusal;
    expect(error.code).toBe('JOB_INVALID');
    expect(error.details).toEqual([
      expect.objectContaining({ field: 'params.file', message: expect.stringContaining(missing) as unknown }),
    ]);
  });

  it('refuses a FIFO or a folder as an input without blocking, and accepts a regular file', async () => {
    const fifo = path.join(files, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const refusedFifo = await submit(fifo);
    expect(refusedFifo.status).toBe(422);
    expect((refusedFifo.body as Refusal).error.message).toMatch(/is a named pipe/);
    const refusedFolder = await submit(files);
    expect((refusedFolder.body as Refusal).error.message).toMatch(/is a folder/);
    const id = await dropJob(
      t.env,
      'default',
      { type: 'count', params: { file: path.join(files, 'present.txt') } },
      'present',
    );
    await waitForState(t.env, id, 'done');
    expect(existsSync(path.join(jobDir(t.env.spool, 'default', 'done', id), 'ran'))).toBe(true);
  });

  it('fails a job that waited for its start time, before running it, when its file is gone', async () => {
    const soon = path.join(files, 'soon-gone.txt');
    const answer = await submit(soon, { not_before: new Date(Date.now() + 1500).toISOString() });
    expect(answer.status).toBe(201);
    const id = (answer.body as { jobs: string[] }).jobs[0] ?? '';
    await waitForState(t.env, id, 'failed', 20_000);
    expect(existsSync(path.join(jobDir(t.env.spool, 'default', 'failed', id), 'ran'))).toBe(false);
    expect(readState(t.env.spool, 'default', 'failed', id).last).toMatchObject({
      error: expect.stringContaining(`Input file ${JSON.stringify(soon)} does not exist`) as unknown,
    });
  });
});

describe('InputFile parameters through the CLI', () => {
  let d: ApiDaemon;

  beforeAll(async () => {
    d = await startApiDaemon({
      queues: { default: null },
      jobTypes: { count: { template: 'wc -l < $file', params: [{ name: 'file', type: 'InputFile' }] } },
    });
  });
  afterAll(() => d?.stop());

  it('batch enqueue refuses a missing input file, naming the parameter and the path (exit 6)', async () => {
    const missing = path.join(d.env.root, 'missing.txt');
    const result = await d.batch(['enqueue', '-t', 'count', '-p', `file=${missing}`]);
    expect(result.code).toBe(6);
    expect(result.stderr).toContain('params.file');
    expect(result.stderr).toContain(`Input file ${JSON.stringify(missing)} does not exist`);
    expect(result.stdout).toBe('');
  });
});
