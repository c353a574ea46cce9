import type { Hono } from 'hono';

import { BatchdError } from '../../errors.ts';
import type { JobTypeInfo } from '../../protocol/config.ts';
import type { JobPage, SubmitResponse } from '../../protocol/jobs.ts';
import type { QueueInfo } from '../../protocol/queues.ts';
import type { ApiEnv } from '../context.ts';
import { batchdBody, done, type Face, type FaceCtx, pick, seg } from './face.ts';
import { NativeRefusal } from './forward.ts';
import { deleteJob } from './jobs.ts';
import { QueueSeqs } from './seq.ts';
import { type BatchdJob, statesOf, toBatchdJob, toBatchdType } from './wire.ts';

/** batchd's Queue document. */
const QUEUE_FIELDS = ['title', 'enabled', 'schedule_name', 'host_name', 'autostart_job_count'] as const;

function toBatchdQueue(q: QueueInfo): Record<string, unknown> {
  return {
    name: q.name,
    title: q.title,
    enabled: q.enabled,
    schedule_name: q.schedule_name,
    host_name: q.host_name,
    autostart_job_count: q.autostart_job_count,
  };
}

export function registerBatchdQueues(app: Hono<ApiEnv>, face: Face): void {
  const { native } = face;

  app.get('/queue', async (c) => {
    const queues = await native.call<QueueInfo[]>(c, 'GET', '/queue');
    return c.json(queues.map(toBatchdQueue), 200);
  });

  // batchd answers a creation with 200 and the new name (its clients accept nothing else).
  app.post('/queue', async (c) => {
    const body = await batchdBody(face, c);
    const created = await native.call<QueueInfo>(c, 'POST', '/queue', {
      ...pick(body, QUEUE_FIELDS),
      name: body.name,
    });
    return c.json(created.name, 200);
  });

  app.get('/queue/:q', async (c) => {
    const queue = await native.call<QueueInfo>(c, 'GET', `/queue/${seg(c.req.param('q'))}`);
    return c.json(toBatchdQueue(queue), 200);
  });

  app.put('/queue/:q', async (c) => {
    const body = await batchdBody(face, c);
    await native.call(c, 'PUT', `/queue/${seg(c.req.param('q'))}`, pick(body, QUEUE_FIELDS));
    return done(c);
  });

  // ?forced=true deletes a non-empty queue; ?status=S deletes its jobs in status S instead.
  app.delete('/queue/:q', async (c) => {
    const query = new URLSearchParams();
    const forced = c.req.query('forced');
    const status = c.req.query('status');
    if (forced !== undefined) query.set('forced', forced);
    if (status !== undefined) query.set('status', status.toLowerCase());
    const tail = query.size === 0 ? '' : `?${query.toString()}`;
    await native.call(c, 'DELETE', `/queue/${seg(c.req.param('q'))}${tail}`);
    return done(c);
  });

  app.get('/queue/:q/jobs', async (c) =>
    c.json(
      await listJobs(face, c, `/queue/${seg(c.req.param('q'))}/jobs`, c.req.query('status'), 'seq'),
      200,
    ),
  );

  app.post('/queue/:q', async (c) => {
    const body = await batchdBody(face, c);
    const accepted = await native.call<SubmitResponse>(c, 'POST', `/queue/${seg(c.req.param('q'))}`, {
      ...toJobFile(body),
      params: await declaredParams(face, c, body.type, body.params),
    });
    const first = accepted.jobs[0];
    if (first === undefined) throw new BatchdError('INTERNAL', 'The submission was accepted without a job');
    return c.json(face.numbers.numberOf(first), 200);
  });

  // batchd deletes a job by its seq in the queue (seq.ts).
  app.delete('/queue/:q/:seq', async (c) => {
    const q = c.req.param('q');
    const id = new QueueSeqs(face).jobOf(q, c.req.param('seq'));
    const job = await native.call<{ queue: string }>(c, 'GET', `/job/${id}`);
    if (job.queue !== q)
      throw new BatchdError('UNKNOWN_JOB', `Job not found: ${c.req.param('seq')} in queue ${q}`, {
        jobId: id,
      });
    await deleteJob(face, c, id);
    return done(c);
  });

  app.get('/queue/:q/type', async (c) => {
    const types = await native.call<JobTypeInfo[]>(c, 'GET', `/queue/${seg(c.req.param('q'))}/type`);
    return c.json(types.map(toBatchdType), 200);
  });

  app.get('/queue/:q/host', async (c) =>
    c.json(await native.call<string[]>(c, 'GET', `/queue/${seg(c.req.param('q'))}/host`), 200),
  );

  app.get('/queue/:q/type/:t/host', async (c) =>
    c.json(
      await native.call<string[]>(
        c,
        'GET',
        `/queue/${seg(c.req.param('q'))}/type/${seg(c.req.param('t'))}/host`,
      ),
      200,
    ),
  );

  app.get('/jobs', async (c) => c.json(await listJobs(face, c, '/jobs', c.req.query('status'), 'id'), 200));
}

/**
 * batchd's JobInfo as a job file. `id`, `queue`, `seq`, `user_name`, `status` and the result
 * fields are ignored, as batchd ignored them; a null or "*" host means the queue's default.
 */
function toJobFile(body: Record<string, unknown>): Record<string, unknown> {
  const host = body.host_name;
  return {
    ...(body.type === undefined || body.type === null ? {} : { type: body.type }),
    ...(typeof host === 'string' && host !== '*' && host !== '__default__' ? { host } : {}),
    ...(typeof body.notes === 'string' ? { notes: body.notes } : {}),
    ...(typeof body.start_time === 'string' ? { not_before: body.start_time } : {}),
  };
}

/**
 * The parameters the job type declares. batchd stored any parameter a client sent and its template
 * used those it named; the Blender add-on sends a `frame` that batchd's sample blender type does not
 * declare. The native check refuses unknown parameters, so the ones the type does not declare are
 * left out here, as batchd's template left them out. An unknown type is left to the native check.
 */
async function declaredParams(face: Face, c: FaceCtx, type: unknown, params: unknown): Promise<unknown> {
  if (typeof type !== 'string' || params === null || typeof params !== 'object' || Array.isArray(params))
    return params ?? {};
  let info: JobTypeInfo;
  try {
    info = await face.native.call<JobTypeInfo>(c, 'GET', `/type/${seg(type)}`);
  } catch (error) {
    if (error instanceof NativeRefusal && error.status === 404) return params;
    throw error;
  }
  const declared = new Set(info.params.map((p) => p.name));
  return Object.fromEntries(Object.entries(params).filter(([name]) => declared.has(name)));
}

/**
 * Every job of a listing (batchd has no pages) in batchd's shape and order: a queue's by seq, all
 * queues' (`/jobs`) by id.
 */
async function listJobs(
  face: Face,
  c: FaceCtx,
  path: string,
  status: string | undefined,
  order: 'seq' | 'id',
): Promise<BatchdJob[]> {
  const states = statesOf(status);
  const jobs: JobPage['jobs'] = [];
  for (const state of states === 'all' ? ['all'] : states) {
    let cursor: string | null = null;
    do {
      const page: JobPage = await face.native.call<JobPage>(
        c,
        'GET',
        `${path}?status=${state}&limit=1000${cursor === null ? '' : `&cursor=${cursor}`}`,
      );
      jobs.push(...page.jobs);
      cursor = page.next_cursor;
    } while (cursor !== null);
  }
  jobs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const numbers = face.numbers.numbersOf(jobs.map((j) => j.id));
  const seqs = new QueueSeqs(face);
  const out = jobs.map((j) => {
    const number = numbers.get(j.id) as number;
    return toBatchdJob(j, number, seqs.seqOf(j, number));
  });
  return order === 'seq' ? out.sort((a, b) => a.seq - b.seq) : out;
}
