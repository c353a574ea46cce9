import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { submitResponseSchema } from '../../daemon/protocol/index.ts';
import { jobDir } from '../helpers/env.ts';
import { type InProcessApi, startApi } from './api-helpers.ts';

/** POST /queue/:q with storage.fsync: true goes through the group commit (Daemon.submitAsync). */
describe('durable submissions over the API', () => {
  let t: InProcessApi;
  beforeAll(async () => {
    // No checkpoint by the timer: the last case checks who waits for one.
    t = await startApi({
      queues: { hold: { enabled: false } },
      config: { storage: { fsync: true, journal_checkpoint: 3600 } },
    });
  });
  afterAll(async () => t.close());

  it('answers concurrent submissions with 201 only once each job folder is complete', async () => {
    const bodies = Array.from({ length: 30 }, (_, i) =>
      i % 3 === 0
        ? { body: `type: echo\nparams:\n  message: m${i}\n`, contentType: 'application/yaml', ext: 'yaml' }
        : {
            body: JSON.stringify({ type: 'echo', params: { message: `m${i}` } }),
            contentType: 'application/json',
            ext: 'json',
          },
    );
    const answers = await Promise.all(
      bodies.map(async ({ body, contentType, ext }) => {
        const res = await t.request('POST', '/queue/hold', { body, contentType });
        const json: unknown = await res.json();
        expect(res.status, JSON.stringify(json)).toBe(201);
        const [id] = submitResponseSchema.parse(json).jobs;
        // At the answer, the job is all there: nothing is left for later.
        const dir = jobDir(t.env.spool, 'hold', 'queued', id ?? '?');
        expect(readdirSync(dir).sort()).toEqual([`drop.${ext}`, 'job.yaml', 'state.yaml']);
        return { id, body, ext };
      }),
    );
    for (const { id, body, ext } of answers) {
      const kept = readFileSync(
        path.join(jobDir(t.env.spool, 'hold', 'queued', id ?? '?'), `drop.${ext}`),
        'utf8',
      );
      // YAML is kept byte for byte; JSON as the API parsed it.
      if (ext === 'yaml') expect(kept).toBe(body);
      else expect(JSON.parse(kept)).toEqual(JSON.parse(body));
      expect(t.daemon.locate(id ?? '?')?.state).toBe('queued');
    }
    expect(readdirSync(path.join(t.env.spool, 'hold', '.staging'))).toEqual([]);
  });

  it('accepts a task durably: its manifest and all its jobs', async () => {
    const res = await t.json('POST', '/queue/hold', {
      body: { type: 'echo', task: 'fan', params: { message: { range: '1..4' } } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const { jobs, task } = submitResponseSchema.parse(res.body);
    expect(task).toBe('fan');
    expect(jobs).toHaveLength(4);
    for (const id of jobs) expect(t.daemon.locate(id)?.state).toBe('queued');
    // The manifest holds every job's spec; made.json is gone once all four folders are made.
    expect(readdirSync(path.join(t.env.spool, 'hold', 'tasks', 'fan')).sort()).toEqual([
      'drop.json',
      'specs.jsonl',
      'task.yaml',
    ]);
  });

  it('refuses an invalid job without leaving anything behind', async () => {
    const res = await t.json('POST', '/queue/hold', { body: { type: 'no-such-type' } });
    expect(res.status).toBe(422);
    expect(readdirSync(path.join(t.env.spool, 'hold', '.staging'))).toEqual([]);
  });

  it('journals single-job submissions; deleting jobs waits for a checkpoint that drops the journal', async () => {
    const journal = path.join(t.env.spool, '.journal');
    const segments = (): string[] => readdirSync(journal).filter((f) => f.endsWith('.jsonl'));
    const res = await t.json('POST', '/queue/hold', { body: { type: 'echo', params: { message: 'j' } } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const [id] = submitResponseSchema.parse(res.body).jobs;
    const lines = segments().flatMap((f) => readFileSync(path.join(journal, f), 'utf8').split('\n'));
    expect(lines.some((l) => l.includes(`"id":"${id}"`))).toBe(true);
    // A job removed now must not come back from the journal after a power loss.
    const purged = await t.json('DELETE', '/queue/hold?status=done');
    expect(purged.status, JSON.stringify(purged.body)).toBe(200);
    expect(segments()).toEqual([]);
  });
});
