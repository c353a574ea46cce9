import path from 'node:path';

import { z } from 'zod';

import { can } from '../../auth/permissions.ts';
import { BatchdError, errnoCode } from '../../errors.ts';
import { JOB_STATES, type JobStateName } from '../../jobs/status.ts';
import { jobIdSchema } from '../../protocol/common.ts';
import {
  attemptResultSchema,
  controlResponseSchema,
  type JobInfo,
  type JobListQuery,
  jobInfoSchema,
  jobListQuerySchema,
  type JobPage,
  jobPageSchema,
  jobUpdateSchema,
  type JobUpdate,
} from '../../protocol/jobs.ts';
import type { JobLocation, RequestVerb } from '../../service/port.ts';
import { jobInfo } from '../../views/jobs.ts';
import type { ApiContext } from '../context.ts';
import { assertQueue } from '../queue-admin.ts';
import { demand, type RouteInput, type Router } from '../route.ts';

const jobParams = z.object({ id: jobIdSchema });
const DEFAULT_LIMIT = 100;

export function registerJobRoutes(router: Router): void {
  const { ctx } = router;
  const { daemon } = ctx;

  router.add(
    {
      method: 'get',
      path: '/jobs',
      summary: 'A page of jobs over every queue the caller may view (default status: queued)',
      tag: 'jobs',
      access: { kind: 'user', note: 'shows the queues with ViewJobs' },
      query: jobListQuerySchema,
      responses: { 200: { description: 'Jobs', schema: jobPageSchema } },
    },
    ({ c, principal, query }) => {
      const queues = daemon.queues.names().filter((q) => can(principal, 'ViewJobs', { queue: q }));
      return c.json(jobPage(ctx, queues, query));
    },
  );

  router.add(
    {
      method: 'get',
      path: '/job/:id',
      summary: 'One job, with its history',
      tag: 'jobs',
      access: { kind: 'job', permission: 'ViewJobs' },
      params: jobParams,
      responses: {
        200: { description: 'The job', schema: jobInfoSchema },
        404: { description: 'Unknown job' },
      },
    },
    (input) => {
      // The hot read: use the location the access check found; look again only if the job moved since.
      let info: JobInfo;
      try {
        info = jobInfo(jobOf(input), true);
      } catch (error) {
        if (errnoCode(error) !== 'ENOENT') throw error;
        info = daemon.reads.job(input.params.id).info;
      }
      if (info.status !== 'queued') return input.c.json(info);
      return input.c.json({ ...info, waiting: daemon.control.waitReason(info.id) ?? null });
    },
  );

  router.add(
    {
      method: 'get',
      path: '/job/:id/results',
      summary: 'The results of every attempt, oldest first',
      tag: 'jobs',
      access: { kind: 'job', permission: 'ViewJobs' },
      params: jobParams,
      responses: {
        200: { description: 'Attempts', schema: z.array(attemptResultSchema) },
        404: { description: 'Unknown job' },
      },
    },
    ({ c, params }) => c.json(daemon.reads.jobState(params.id).state.results),
  );

  router.add(
    {
      method: 'get',
      path: '/job/:id/results/last',
      summary: 'The result of the last attempt (404 before any attempt ended)',
      tag: 'jobs',
      access: { kind: 'job', permission: 'ViewJobs' },
      params: jobParams,
      responses: {
        200: { description: 'The last attempt', schema: attemptResultSchema },
        404: { description: 'Unknown job, or no attempt yet' },
      },
    },
    ({ c, params }) => {
      const last = daemon.reads.jobState(params.id).state.results.at(-1);
      if (last === undefined)
        throw new BatchdError('NOT_FOUND', `Job ${params.id} has no finished attempt yet`, {
          jobId: params.id,
        });
      return c.json(last);
    },
  );

  router.add(
    {
      method: 'put',
      path: '/job/:id',
      summary:
        'Change a job: its priority (a number, or first/more/less/last), its queue (move), or fields: notes, not_before (batchd: start_time) and host (batchd: host_name); null clears a field',
      tag: 'jobs',
      access: { kind: 'job', permission: 'ManageJobs' },
      params: jobParams,
      body: jobUpdateSchema,
      responses: {
        200: { description: 'The job', schema: jobInfoSchema },
        404: { description: 'Unknown job or target queue' },
        409: { description: "Not possible in the job's state" },
        422: { description: 'Invalid change' },
      },
    },
    async (input) => {
      await updateJob(input.ctx, input.principal, jobOf(input), input.body);
      return input.c.json(daemon.reads.job(input.params.id).info);
    },
  );

  const cancel = async (input: RouteInput<typeof jobParams, z.ZodType, z.ZodType>): Promise<Response> => {
    const job = jobOf(input);
    const result = await daemon.control.cancel(input.params.id, `cancelled by ${input.principal.name} (API)`);
    if (result === 'elsewhere') {
      leaveRequest(input.ctx, job.queue, input.params.id, 'cancel', input.principal.name);
      return input.c.json({ id: input.params.id, result: 'requested' as const }, 202);
    }
    return input.c.json({ id: input.params.id, result }, result === 'stopping' ? 202 : 200);
  };
  const cancelResponses = {
    200: { description: 'Cancelled', schema: controlResponseSchema },
    202: {
      description: 'Stopping (running here) or requested (running under another dispatcher)',
      schema: controlResponseSchema,
    },
    404: { description: 'Unknown job' },
    409: { description: 'Already finished' },
  };
  router.add(
    {
      method: 'delete',
      path: '/job/:id',
      summary: 'Cancel a queued or running job (its folder and history stay, in cancelled/)',
      tag: 'jobs',
      access: { kind: 'job', permission: 'ManageJobs' },
      params: jobParams,
      responses: cancelResponses,
    },
    cancel,
  );
  router.add(
    {
      method: 'post',
      path: '/job/:id/cancel',
      summary: 'Cancel a queued or running job',
      tag: 'jobs',
      access: { kind: 'job', permission: 'ManageJobs' },
      params: jobParams,
      responses: cancelResponses,
    },
    cancel,
  );

  router.add(
    {
      method: 'post',
      path: '/job/:id/delete',
      summary:
        "Delete a finished job (done, failed or cancelled): its folder, logs and history go (batchd's delete)",
      tag: 'jobs',
      access: { kind: 'job', permission: 'ManageJobs' },
      params: jobParams,
      responses: {
        200: { description: 'Deleted', schema: z.object({ id: jobIdSchema, result: z.literal('deleted') }) },
        404: { description: 'Unknown job' },
        409: { description: 'Queued or running: cancel it first' },
      },
    },
    async ({ c, params }) => {
      await daemon.queueAdmin.deleteFinishedJob(params.id);
      return c.json({ id: params.id, result: 'deleted' as const });
    },
  );

  router.add(
    {
      method: 'post',
      path: '/job/:id/retry',
      summary: 'Queue a failed or cancelled job again',
      tag: 'jobs',
      access: { kind: 'job', permission: 'ManageJobs' },
      params: jobParams,
      responses: {
        200: { description: 'Queued again', schema: controlResponseSchema },
        404: { description: 'Unknown job' },
        409: { description: 'Not failed or cancelled' },
      },
    },
    async ({ c, params }) => {
      await daemon.control.retry(params.id);
      return c.json({ id: params.id, result: 'queued' as const });
    },
  );

  // Pause and resume of a running job (dispatch/pause.ts): ManageJobs, as cancel.
  for (const verb of ['pause', 'resume'] as const) {
    router.add(
      {
        method: 'post',
        path: `/job/:id/${verb}`,
        summary:
          verb === 'pause'
            ? 'Pause a running job: every process it started is frozen, its timeout held; it stays running (a queued job is refused)'
            : 'Resume a paused job; the time it was paused is added to its paused_seconds',
        tag: 'jobs',
        access: { kind: 'job', permission: 'ManageJobs' },
        params: jobParams,
        responses: {
          200: { description: verb === 'pause' ? 'Paused' : 'Resumed', schema: controlResponseSchema },
          202: {
            description: 'Requested (running under another dispatcher)',
            schema: controlResponseSchema,
          },
          404: { description: 'Unknown job' },
          409: { description: "Not running, or its host's executor cannot pause jobs" },
        },
      },
      async (input) => {
        const { id } = input.params;
        const by = `${input.principal.name} (API)`;
        const result =
          verb === 'pause' ? await daemon.control.pause(id, by) : await daemon.control.resume(id, by);
        if (result !== 'elsewhere') return input.c.json({ id, result });
        leaveRequest(input.ctx, jobOf(input).queue, id, verb, input.principal.name);
        return input.c.json({ id, result: 'requested' as const }, 202);
      },
    );
  }
}

/** Another dispatcher runs the job: leave it the same request file a user would (spool/requests.ts). */
function leaveRequest(ctx: ApiContext, queue: string, id: string, verb: RequestVerb, by: string): void {
  ctx.daemon.queueAdmin.leaveRequest(queue, id, verb, `by ${by} (API)\n`);
}

export function jobOf(input: { job: JobLocation | undefined }): JobLocation {
  if (input.job === undefined) throw new BatchdError('INTERNAL', 'job route without a located job');
  return input.job;
}

export function jobPage(
  ctx: ApiContext,
  queues: readonly string[],
  query: z.output<typeof jobListQuerySchema> | JobListQuery,
): JobPage {
  const status = (query.status ?? 'queued') as JobStateName | 'all';
  const states = status === 'all' ? JOB_STATES : [status];
  const limit = Number(query.limit ?? DEFAULT_LIMIT);
  const { reads } = ctx.daemon;
  const matches = jobFilter(query);
  const sort = query.sort ?? 'submitted';
  if (matches === undefined) {
    const listing = reads.list(queues, states, limit, query.cursor, sort);
    return { jobs: reads.read(listing), next_cursor: listing.nextCursor };
  }
  // A filter reads jobs until the page is full or SCAN_BUDGET jobs were read: a page may then hold
  // fewer than `limit` jobs, and its cursor says where the next look starts.
  const jobs: JobInfo[] = [];
  let cursor = query.cursor;
  for (let scanned = 0; scanned < SCAN_BUDGET;) {
    const chunk = Math.min(SCAN_CHUNK, SCAN_BUDGET - scanned);
    const listing = reads.list(queues, states, chunk, cursor, sort);
    scanned += listing.jobs.length;
    const cursorOf = new Map(listing.jobs.map((j) => [j.id, j.cursor]));
    for (const info of reads.read(listing)) {
      if (!matches(info)) continue;
      jobs.push(info);
      if (jobs.length === limit) return { jobs, next_cursor: cursorOf.get(info.id) ?? null };
    }
    if (listing.nextCursor === null) return { jobs, next_cursor: null };
    cursor = listing.nextCursor;
  }
  return { jobs, next_cursor: cursor ?? null };
}

const SCAN_CHUNK = 500;
const SCAN_BUDGET = 5_000;

/** The filter of a list query's type/host/user/task/q fields; undefined when there is none. */
function jobFilter(query: {
  type?: string | undefined;
  host?: string | undefined;
  user?: string | undefined;
  task?: string | undefined;
  q?: string | undefined;
}): ((job: JobInfo) => boolean) | undefined {
  const { type, host, user, task } = query;
  const text = query.q?.trim().toLowerCase() || undefined;
  if ([type, host, user, task, text].every((v) => v === undefined || v === '')) return undefined;
  return (job) =>
    (!type || job.type === type) &&
    (!host || job.host === host) &&
    (!user || job.user === user) &&
    (!task || job.task === task) &&
    (text === undefined ||
      [
        job.id,
        job.name,
        job.notes,
        job.type,
        job.user,
        job.host,
        job.task,
        ...Object.values(job.params),
      ].some((v) => v !== null && String(v).toLowerCase().includes(text)));
}

async function updateJob(
  ctx: ApiContext,
  principal: Parameters<typeof demand>[0],
  job: JobLocation,
  update: JobUpdate,
): Promise<void> {
  const dispatcher = ctx.daemon.control;
  const id = path.basename(job.dir);
  if (update.move !== undefined) {
    assertQueue(ctx, update.move);
    demand(principal, 'ManageJobs', { queue: update.move });
    await dispatcher.move(id, update.move);
    return;
  }
  if (update.priority !== undefined) {
    if (typeof update.priority === 'number') await dispatcher.setPriority(id, update.priority);
    else await dispatcher.reorder(id, update.priority);
    return;
  }
  // A field update (batchd's partial update): start time and host in one write, then the notes.
  const notBefore = update.not_before !== undefined ? update.not_before : update.start_time;
  const host = update.host !== undefined ? update.host : update.host_name;
  if (notBefore !== undefined || host !== undefined) {
    await dispatcher.changeQueued(id, {
      notBefore:
        notBefore === undefined || notBefore === null ? notBefore : new Date(notBefore).toISOString(),
      host: host === '*' ? null : host,
    });
  }
  if (update.notes !== undefined) await dispatcher.setNotes(id, update.notes);
}
