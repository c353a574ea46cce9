import type { Hono } from 'hono';

import { BatchdError } from '../../errors.ts';
import type { AttemptResult, JobInfo } from '../../protocol/jobs.ts';
import type { ApiEnv } from '../context.ts';
import { batchdBody, done, type Face, type FaceCtx, jobIdOf } from './face.ts';
import { type BatchdResult, toBatchdJob, toResults } from './wire.ts';

/** `/job/:id` (id = the job's number): batchd's JobInfo merged with the last result, results, changes, delete. */
export function registerBatchdJobs(app: Hono<ApiEnv>, face: Face): void {
  const { native } = face;

  app.get('/job/:id', async (c) => {
    const { job, results } = await jobWithResults(face, c, jobIdOf(face, c.req.param('id')));
    const last = results.at(-1);
    return c.json(
      {
        ...job,
        result_time: last?.time ?? job.result_time,
        exit_code: last?.exit_code ?? job.exit_code,
        stdout: last?.stdout ?? null,
        stderr: last?.stderr ?? null,
      },
      200,
    );
  });

  app.get('/job/:id/results', async (c) =>
    c.json((await jobWithResults(face, c, jobIdOf(face, c.req.param('id')))).results, 200),
  );

  app.get('/job/:id/results/last', async (c) => {
    const raw = c.req.param('id');
    const last = (await jobWithResults(face, c, jobIdOf(face, raw))).results.at(-1);
    if (last === undefined)
      throw new BatchdError('NOT_FOUND', `Job ${raw} has no results yet`, { jobId: raw });
    return c.json(last, 200);
  });

  app.put('/job/:id', async (c) => {
    const id = jobIdOf(face, c.req.param('id'));
    const body = await batchdBody(face, c);
    for (const change of toNativeChanges(body)) {
      if (change.kind === 'retry') await native.call(c, 'POST', `/job/${id}/retry`);
      else await native.call(c, 'PUT', `/job/${id}`, change.body);
    }
    return done(c);
  });

  app.delete('/job/:id', async (c) => {
    await native.call(c, 'DELETE', `/job/${jobIdOf(face, c.req.param('id'))}`);
    return done(c);
  });
}

type NativeChange = { kind: 'update'; body: Record<string, unknown> } | { kind: 'retry' };

/**
 * batchd's `PUT /job/:id`: `{priority}`, `{move}`, or a partial update of queue_name, status,
 * host_name, notes and start_time. Status "New" queues a failed or cancelled job again (the native
 * retry); batchd's Postponed and Waiting have no counterpart and are refused.
 */
function toNativeChanges(body: Record<string, unknown>): NativeChange[] {
  if (body.priority !== undefined) return [{ kind: 'update', body: { priority: body.priority } }];
  if (body.move !== undefined) return [{ kind: 'update', body: { move: body.move } }];
  const changes: NativeChange[] = [];
  if (body.status !== undefined) {
    if (body.status !== 'New')
      throw new BatchdError(
        'REQUEST_INVALID',
        `Status ${JSON.stringify(body.status)} cannot be set here; only "New" (queue a failed job again)`,
      );
    changes.push({ kind: 'retry' });
  }
  const fields: Record<string, unknown> = {};
  for (const f of ['host_name', 'notes', 'start_time'] as const)
    if (body[f] !== undefined) fields[f] = body[f];
  if (Object.keys(fields).length > 0) changes.push({ kind: 'update', body: fields });
  if (body.queue_name !== undefined) changes.push({ kind: 'update', body: { move: body.queue_name } });
  if (changes.length === 0) throw new BatchdError('REQUEST_INVALID', 'Nothing to change in the request body');
  return changes;
}

/** A job in batchd's shape with its result rows (attempts, with the logs on the newest). */
async function jobWithResults(
  face: Face,
  c: FaceCtx,
  id: string,
): Promise<{ job: ReturnType<typeof toBatchdJob>; results: BatchdResult[] }> {
  const { native } = face;
  const info = await native.call<JobInfo>(c, 'GET', `/job/${id}`);
  const [attempts, stdout, stderr] = await Promise.all([
    native.call<AttemptResult[]>(c, 'GET', `/job/${id}/results`),
    native.text(c, `/job/${id}/log?stream=stdout`),
    native.text(c, `/job/${id}/log?stream=stderr`),
  ]);
  const number = face.numbers.numberOf(id);
  return {
    job: toBatchdJob(info, number),
    results: toResults(number, attempts, { stdout, stderr }, info.status === 'running'),
  };
}
