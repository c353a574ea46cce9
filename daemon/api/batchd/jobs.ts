import type { Hono } from 'hono';

import { BatchdError } from '../../errors.ts';
import { isFinished, type JobStateName } from '../../jobs/status.ts';
import type { AttemptResult, ControlResponse, JobInfo } from '../../protocol/jobs.ts';
import type { ApiEnv } from '../context.ts';
import { batchdBody, done, type Face, type FaceCtx, jobIdOf, pick } from './face.ts';
import { QueueSeqs } from './seq.ts';
import { BATCHD_STATUSES, type BatchdResult, STATUS_OF_STATE, toBatchdJob, toResults } from './wire.ts';

/** `/job/:id` (id = the job's number): batchd's JobInfo merged with the last result, results, changes, delete. */
export function registerBatchdJobs(app: Hono<ApiEnv>, face: Face): void {
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
    await changeJob(face, c, jobIdOf(face, c.req.param('id')), await batchdBody(face, c));
    return done(c);
  });

  app.delete('/job/:id', async (c) => {
    await deleteJob(face, c, jobIdOf(face, c.req.param('id')));
    return done(c);
  });
}

/**
 * batchd deleted a job's row whatever its status. A finished job's folder is deleted (the native
 * `POST /job/:id/delete`); a queued one is cancelled and then deleted, so it is gone as in batchd;
 * a running one is cancelled (stopped) and stays, as a cancelled job, since its process is still
 * being stopped (batchd let it run on with no row).
 */
export async function deleteJob(face: Face, c: FaceCtx, id: string): Promise<void> {
  const { native } = face;
  const job = await native.call<JobInfo>(c, 'GET', `/job/${id}`);
  if (!isFinished(job.status)) {
    const cancel = await native.call<ControlResponse>(c, 'DELETE', `/job/${id}`);
    if (cancel.result !== 'cancelled') return;
  }
  await native.call(c, 'POST', `/job/${id}/delete`);
}

/**
 * batchd's `PUT /job/:id` (Data.hs JobUpdate): `{priority}`, `{move}`, or a partial update of
 * queue_name, status, host_name, notes and start_time, as the CLI's `batch job ID -s/-h/-n/--at/-m/-p`
 * sends them. Each part goes to the native route that does it, with the caller's permissions.
 */
async function changeJob(face: Face, c: FaceCtx, id: string, body: Record<string, unknown>): Promise<void> {
  const { native } = face;
  const update = (change: Record<string, unknown>): Promise<unknown> =>
    native.call(c, 'PUT', `/job/${id}`, change);
  if (body.priority !== undefined) {
    await update({ priority: body.priority });
    return;
  }
  if (body.move !== undefined) {
    await update({ move: body.move });
    return;
  }
  // A field given as null clears it (batchd's parseUpdateMaybe / parseUpdateStar).
  const fields = pick(body, ['host_name', 'notes', 'start_time']);
  const hasFields = Object.keys(fields).length > 0;
  if (body.status === undefined && !hasFields && body.queue_name === undefined)
    throw new BatchdError('REQUEST_INVALID', 'Nothing to change in the request body');
  const step =
    body.status === undefined
      ? 'none'
      : statusStep(id, body.status, (await native.call<JobInfo>(c, 'GET', `/job/${id}`)).status);
  // A job queued again takes the other changes as a queued job; one to be cancelled takes them first.
  if (step === 'retry') await native.call(c, 'POST', `/job/${id}/retry`);
  if (hasFields) await update(fields);
  if (body.queue_name !== undefined) await update({ move: body.queue_name });
  if (step === 'cancel') await native.call(c, 'DELETE', `/job/${id}`);
}

/**
 * What setting batchd's status means here. New queues a failed (or cancelled) job again; Failed
 * cancels a queued or running one (it then shows as Failed); a status the job has already is no
 * change. Done and Processing come only from running the job, and Waiting and Postponed do not
 * occur here, so those are refused with what to do instead.
 */
function statusStep(id: string, wanted: unknown, state: JobStateName): 'none' | 'retry' | 'cancel' {
  if (typeof wanted !== 'string' || !(BATCHD_STATUSES as readonly string[]).includes(wanted))
    throw new BatchdError(
      'REQUEST_INVALID',
      `Invalid status ${JSON.stringify(wanted)}: expected one of ${BATCHD_STATUSES.join(', ')}`,
    );
  const current = STATUS_OF_STATE[state];
  if (wanted === current) return 'none';
  switch (wanted) {
    case 'New':
      if (state === 'failed' || state === 'cancelled') return 'retry';
      throw new BatchdError(
        'CONFLICT',
        `Job is ${current}: only a Failed job can be set to New here (a Done job is not run again; submit it anew)`,
        { jobId: id },
      );
    case 'Failed':
      if (state === 'queued' || state === 'running') return 'cancel';
      throw new BatchdError(
        'CONFLICT',
        `Job is ${current}: only a New or Processing job can be set to Failed`,
        {
          jobId: id,
        },
      );
    default:
      throw new BatchdError(
        'REQUEST_INVALID',
        `Status ${wanted} cannot be set here: Done and Processing come from running the job, Waiting and Postponed do not occur; set New (run a Failed job again) or Failed (cancel it)`,
        { jobId: id },
      );
  }
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
    job: toBatchdJob(info, number, new QueueSeqs(face).seqOf(info, number)),
    results: toResults(number, attempts, { stdout, stderr }, info.status === 'running'),
  };
}
