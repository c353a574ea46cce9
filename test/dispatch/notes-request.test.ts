import { existsSync, readFileSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type InProcessApi, startApi } from '../api/api-helpers.ts';
import { request, waitForState } from '../helpers/dispatch.ts';
import { findJob, readState, waitFor } from '../helpers/env.ts';
import { sleep } from '../helpers/spool-checks.ts';

interface JobView {
  notes: string | null;
}

/**
 * `<queue>/requests/<id>.notes`: the plain-file form of the API's notes update (PUT /job/:id with
 * `notes`), carried out by the same code, so both leave the same record.
 */
describe('plain-file notes requests: <queue>/requests/<id>.notes', () => {
  let t: InProcessApi;

  beforeAll(async () => {
    t = await startApi({ queues: { default: null, hold: { enabled: false } } });
  });
  afterAll(() => t.close());

  const submit = async (queue: string, body: object): Promise<string> => {
    const answer = await t.json<{ jobs: string[] }>('POST', `/queue/${queue}`, { body });
    expect(answer.status).toBe(201);
    return answer.body.jobs[0] ?? '';
  };
  const notesOf = async (id: string): Promise<string | null> =>
    (await t.json<JobView>('GET', `/job/${id}`)).body.notes;
  const taken = (file: string): Promise<boolean> =>
    waitFor(() => !existsSync(file), 10_000, `${path.basename(file)} to be taken`);
  const setAside = async (file: string): Promise<string> => {
    await waitFor(() => existsSync(`${file}.rejected`), 10_000, `${path.basename(file)} to be set aside`);
    return readFileSync(`${file}.error`, 'utf8');
  };

  it('sets the notes of a queued job as the API does, and an empty file clears them', async () => {
    const byFile = await submit('hold', { command: 'true' });
    const byApi = await submit('hold', { command: 'true' });
    const text = 'render again with the new textures\nsecond line: ünïcödé';
    await taken(request(t.env, 'hold', byFile, 'notes', `${text}\n`));
    expect((await t.json('PUT', `/job/${byApi}`, { body: { notes: text } })).status).toBe(200);
    expect(await notesOf(byFile)).toBe(text);
    expect(await notesOf(byApi)).toBe(text);
    const history = (id: string): string[] =>
      readState(t.env.spool, 'hold', 'queued', id).history.map((h) => h.reason ?? '');
    expect(history(byFile)).toEqual(history(byApi));
    expect(history(byFile)).toContain('notes changed');

    await taken(request(t.env, 'hold', byFile, 'notes', ''));
    expect(await notesOf(byFile)).toBeNull();
  });

  it('sets the notes of a finished job; those of a running job once it has ended', async () => {
    const done = await submit('default', { command: 'true' });
    await waitForState(t.env, done, 'done');
    await taken(request(t.env, 'default', done, 'notes', 'checked by hand'));
    expect(await notesOf(done)).toBe('checked by hand');

    const running = await submit('default', { command: 'sleep 2' });
    await waitForState(t.env, running, 'running');
    const file = request(t.env, 'default', running, 'notes', 'written while it ran');
    await sleep(500);
    // The job's record is its dispatcher's while it runs: the request waits, neither refused nor lost.
    expect(existsSync(file)).toBe(true);
    expect(existsSync(`${file}.rejected`)).toBe(false);
    await waitForState(t.env, running, 'done');
    await taken(file);
    expect(await notesOf(running)).toBe('written while it ran');
  });

  it('refuses notes for a job that does not exist, and a file over the size bound unread', async () => {
    const missing = '20200101T000000.000Z-abcdef';
    expect(await setAside(request(t.env, 'hold', missing, 'notes', 'x'))).toMatch(/No job .* in any queue/);

    const id = await submit('hold', { command: 'true' });
    const dir = path.join(t.env.spool, 'hold', 'requests');
    const made = path.join(t.env.root, 'huge.notes');
    writeFileSync(made, 'x');
    truncateSync(made, 65_537);
    const file = path.join(dir, `${id}.notes`);
    renameSync(made, file);
    expect(await setAside(file)).toMatch(/over the limit/);
    expect(await notesOf(id)).toBeNull();
    expect(findJob(t.env.spool, id)).toEqual([{ queue: 'hold', state: 'queued' }]);
  });
});
