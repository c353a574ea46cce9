import { z } from 'zod';

import { can } from '../../auth/permissions.ts';
import { BatchdError } from '../../errors.ts';
import { type Counts, flagSchema, nameSchema, okSchema } from '../../protocol/common.ts';
import { DEFAULT_HOST, jobTypeInfoSchema } from '../../protocol/config.ts';
import {
  jobListQuerySchema,
  jobPageSchema,
  jobSubmitSchema,
  statusFilterSchema,
  submitResponseSchema,
} from '../../protocol/jobs.ts';
import {
  queueCreateSchema,
  queueInfoSchema,
  queuePauseQuerySchema,
  queuePauseSchema,
  queuePurgeSchema,
  queueUpdateSchema,
  statsSchema,
} from '../../protocol/queues.ts';
import type { ApiContext } from '../context.ts';
import { assertQueue, createQueue, deleteQueue, queueInfo, updateQueue } from '../queue-admin.ts';
import { demand, type Router } from '../route.ts';
import { jobPage } from './jobs.ts';
import { typeInfo } from './config.ts';

const queueParams = z.object({ q: nameSchema });

export function registerQueueRoutes(router: Router): void {
  const { ctx } = router;
  const { daemon } = ctx;

  router.add(
    {
      method: 'get',
      path: '/stats',
      summary: 'Job counts of every queue the caller may view',
      tag: 'queues',
      access: { kind: 'user', note: 'shows the queues with ViewQueues' },
      responses: { 200: { description: 'Counts per queue', schema: statsSchema } },
    },
    ({ c, principal }) => {
      const stats: Record<string, Counts> = {};
      for (const q of daemon.queues.names().sort())
        if (can(principal, 'ViewQueues', { queue: q })) stats[q] = ctx.counts.of(q);
      return c.json(stats);
    },
  );

  router.add(
    {
      method: 'get',
      path: '/stats/:q',
      summary: 'Job counts of one queue',
      tag: 'queues',
      access: { kind: 'permission', permission: 'ViewQueues', scope: ({ params }) => ({ queue: params.q }) },
      params: queueParams,
      responses: {
        200: { description: 'Counts of the queue', schema: statsSchema },
        404: { description: 'Unknown queue' },
      },
    },
    ({ c, params }) => {
      assertQueue(ctx, params.q);
      return c.json({ [params.q]: ctx.counts.of(params.q) });
    },
  );

  router.add(
    {
      method: 'get',
      path: '/queue',
      summary: 'The queues the caller may view',
      tag: 'queues',
      access: { kind: 'user', note: 'shows the queues with ViewQueues' },
      responses: { 200: { description: 'Queues', schema: z.array(queueInfoSchema) } },
    },
    ({ c, principal }) =>
      c.json(
        daemon.queues
          .names()
          .sort()
          .filter((q) => can(principal, 'ViewQueues', { queue: q }))
          .map((q) => queueInfo(ctx, q)),
      ),
  );

  router.add(
    {
      method: 'post',
      path: '/queue',
      summary: 'Create a queue (a folder and its queue.yaml)',
      tag: 'queues',
      access: {
        kind: 'permission',
        permission: 'ManageQueues',
        scope: ({ body }) => ({ queue: field(body, 'name') }),
      },
      body: queueCreateSchema,
      responses: {
        201: { description: 'Created', schema: queueInfoSchema },
        409: { description: 'Exists' },
        422: { description: 'Invalid settings' },
      },
    },
    ({ c, body }) => {
      createQueue(ctx, body);
      return c.json(queueInfo(ctx, body.name), 201);
    },
  );

  router.add(
    {
      method: 'get',
      path: '/queue/:q',
      summary: 'One queue',
      tag: 'queues',
      access: { kind: 'permission', permission: 'ViewQueues', scope: ({ params }) => ({ queue: params.q }) },
      params: queueParams,
      responses: {
        200: { description: 'The queue', schema: queueInfoSchema },
        404: { description: 'Unknown queue' },
      },
    },
    ({ c, params }) => {
      assertQueue(ctx, params.q);
      return c.json(queueInfo(ctx, params.q));
    },
  );

  router.add(
    {
      method: 'put',
      path: '/queue/:q',
      summary: 'Change some settings of a queue (queue.yaml, comments kept); null clears a field',
      tag: 'queues',
      access: {
        kind: 'permission',
        permission: 'ManageQueues',
        scope: ({ params }) => ({ queue: params.q }),
      },
      params: queueParams,
      body: queueUpdateSchema,
      responses: {
        200: { description: 'The queue', schema: queueInfoSchema },
        404: { description: 'Unknown queue' },
        422: { description: 'Invalid settings' },
      },
    },
    ({ c, params, body }) => {
      assertQueue(ctx, params.q);
      updateQueue(ctx, params.q, body);
      return c.json(queueInfo(ctx, params.q));
    },
  );

  router.add(
    {
      method: 'delete',
      path: '/queue/:q',
      summary:
        "Delete a queue (refused while it holds jobs unless ?forced=true, and always while jobs run); with ?status=S, batchd's bulk delete of the queue's jobs in state S instead",
      tag: 'queues',
      access: {
        kind: 'permission',
        permission: 'ManageQueues',
        scope: ({ params }) => ({ queue: params.q }),
      },
      params: queueParams,
      query: z
        .object({
          forced: flagSchema,
          status: statusFilterSchema.optional().meta({
            description:
              'done, failed or cancelled: delete those job folders; queued: cancel those jobs (they move to cancelled/); running: refused (409)',
          }),
        })
        .strict(),
      responses: {
        200: {
          description: 'The queue deleted ({ok: true}), or with ?status= what was done with its jobs',
          schema: z.union([okSchema, queuePurgeSchema]),
        },
        404: { description: 'Unknown queue' },
        409: { description: 'Not empty, the default queue, or ?status=running' },
      },
    },
    async ({ c, params, query }) => {
      assertQueue(ctx, params.q);
      if (query.status !== undefined) {
        if (query.forced !== undefined)
          throw new BatchdError(
            'REQUEST_INVALID',
            'Give ?status= (delete jobs) or ?forced= (delete the queue), not both',
          );
        if (query.status === 'all')
          throw new BatchdError(
            'REQUEST_INVALID',
            'Give one status: queued, done, failed or cancelled (not all)',
          );
        return c.json(await daemon.queueAdmin.purge(params.q, query.status));
      }
      await deleteQueue(ctx, params.q, query.forced === true);
      return c.json({ ok: true as const });
    },
  );

  // A queue's pause: disabled (no job starts), with ?running=freeze its running jobs paused too.
  const queueManager = {
    kind: 'permission',
    permission: 'ManageQueues',
    scope: ({ params }: { params: { q?: string } }) => ({ queue: params.q }),
  } as const;
  router.add(
    {
      method: 'post',
      path: '/queue/:q/pause',
      summary:
        'Pause a queue: no job of it starts (enabled: false); with ?running=freeze its running jobs are paused too (that also needs ManageJobs)',
      tag: 'queues',
      access: queueManager,
      params: queueParams,
      query: queuePauseQuerySchema,
      responses: {
        200: { description: 'Paused; what became of its running jobs', schema: queuePauseSchema },
        404: { description: 'Unknown queue' },
      },
    },
    async ({ c, params, query, principal }) => {
      assertQueue(ctx, params.q);
      const freeze = query.running === 'freeze';
      if (freeze) demand(principal, 'ManageJobs', { queue: params.q });
      updateQueue(ctx, params.q, { enabled: false });
      const by = `${principal.name} (API, queue ${params.q} paused)`;
      const jobs = freeze ? await daemon.control.pauseQueue(params.q, by) : [];
      return c.json({ queue: params.q, enabled: false, jobs });
    },
  );
  router.add(
    {
      method: 'post',
      path: '/queue/:q/resume',
      summary:
        'Resume a queue: its jobs start again (enabled: true), and the running jobs its pause froze are resumed (jobs paused one by one stay paused)',
      tag: 'queues',
      access: queueManager,
      params: queueParams,
      responses: {
        200: { description: 'Resumed; the jobs thawed', schema: queuePauseSchema },
        404: { description: 'Unknown queue' },
      },
    },
    async ({ c, params, principal }) => {
      assertQueue(ctx, params.q);
      // Before the queue is enabled, which would thaw them too (dispatcher.ts), in the caller's name.
      const jobs = await daemon.control.resumeQueue(params.q, `${principal.name} (API)`);
      updateQueue(ctx, params.q, { enabled: true });
      return c.json({ queue: params.q, enabled: true, jobs });
    },
  );

  router.add(
    {
      method: 'get',
      path: '/queue/:q/jobs',
      summary: 'A page of the jobs of a queue (default status: queued, as in batchd)',
      tag: 'jobs',
      access: { kind: 'permission', permission: 'ViewJobs', scope: ({ params }) => ({ queue: params.q }) },
      params: queueParams,
      query: jobListQuerySchema,
      responses: {
        200: { description: 'Jobs', schema: jobPageSchema },
        404: { description: 'Unknown queue' },
      },
    },
    ({ c, params, query }) => {
      assertQueue(ctx, params.q);
      return c.json(jobPage(ctx, [params.q], query));
    },
  );

  router.add(
    {
      method: 'post',
      path: '/queue/:q',
      summary:
        'Submit a job (or a task) to a queue: a job file as JSON or YAML, checked and accepted exactly as a dropped file',
      tag: 'jobs',
      access: {
        kind: 'permission',
        permission: 'CreateJobs',
        scope: ({ params, body }) => submitScope(ctx, params.q ?? '', body),
      },
      params: queueParams,
      body: jobSubmitSchema,
      yaml: true,
      rawBody: true,
      responses: {
        201: { description: 'Accepted', schema: submitResponseSchema },
        404: { description: 'Unknown queue' },
        422: { description: 'Invalid job' },
      },
    },
    async ({ c, params, raw, principal }) => {
      assertQueue(ctx, params.q);
      if (raw === undefined) throw new BatchdError('BAD_JSON', 'A job file is needed in the request body');
      const accepted = await daemon.submitAsync(
        params.q,
        raw.format === 'yaml' ? { text: raw.text, ext: 'yaml' } : { data: raw.data },
        principal.name,
        (queue) => can(principal, 'ViewJobs', { queue }),
      );
      const task = accepted[0]?.spec.task?.name;
      return c.json({ jobs: accepted.map((j) => j.spec.id), ...(task === undefined ? {} : { task }) }, 201);
    },
  );

  router.add(
    {
      method: 'get',
      path: '/queue/:q/type',
      summary: 'The job types the caller may submit to a queue',
      tag: 'queues',
      access: { kind: 'user', note: "lists what the caller's CreateJobs grants allow" },
      params: queueParams,
      responses: {
        200: { description: 'Job types', schema: z.array(jobTypeInfoSchema) },
        404: { description: 'Unknown queue' },
      },
    },
    ({ c, params, principal }) => {
      assertQueue(ctx, params.q);
      const allowed = allowedNames(principal, params.q, 'type_name');
      const types = daemon.config
        .list<Parameters<typeof typeInfo>[0]>('jobtypes')
        .filter((t) => allowed === 'any' || allowed.has(t.name));
      return c.json(types.sort((a, b) => a.name.localeCompare(b.name)).map(typeInfo));
    },
  );

  router.add(
    {
      method: 'get',
      path: '/queue/:q/host',
      summary: 'The hosts the caller may submit to in a queue ("__default__": the queue\'s default)',
      tag: 'queues',
      access: { kind: 'user', note: "lists what the caller's CreateJobs grants allow" },
      params: queueParams,
      responses: {
        200: { description: 'Host names', schema: z.array(z.string()) },
        404: { description: 'Unknown queue' },
      },
    },
    ({ c, params, principal }) => {
      assertQueue(ctx, params.q);
      return c.json(hostsAllowed(ctx, allowedNames(principal, params.q, 'host_name')));
    },
  );

  router.add(
    {
      method: 'get',
      path: '/queue/:q/type/:t/host',
      summary:
        'The hosts the caller may submit jobs of type t to in a queue ("__default__": the queue\'s default)',
      tag: 'queues',
      access: { kind: 'user', note: "lists what the caller's CreateJobs grants allow for the type" },
      params: z.object({ q: nameSchema, t: nameSchema }),
      responses: {
        200: { description: 'Host names', schema: z.array(z.string()) },
        404: { description: 'Unknown queue or job type' },
      },
    },
    ({ c, params, principal }) => {
      assertQueue(ctx, params.q);
      if (daemon.config.jobType(params.t) === undefined)
        throw new BatchdError('UNKNOWN_TYPE', `Unknown job type "${params.t}"`, { type: params.t });
      return c.json(hostsAllowed(ctx, allowedNames(principal, params.q, 'host_name', params.t)));
    },
  );
}

/** `__default__` and the configured hosts, those allowed. */
function hostsAllowed(ctx: ApiContext, allowed: 'any' | Set<string>): string[] {
  const all = [
    DEFAULT_HOST,
    ...ctx.daemon.config
      .list<{ name: string }>('hosts')
      .map((h) => h.name)
      .sort(),
  ];
  return allowed === 'any' ? all : all.filter((h) => allowed.has(h));
}

/** The job type and host a submission asks for, read from the body before it is validated (as validate.ts resolves them). */
function submitScope(
  ctx: ApiContext,
  queue: string,
  body: unknown,
): { queue: string; type: string | undefined; host: string } {
  const data =
    body !== null && typeof body === 'object' && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : {};
  const type =
    data.type !== undefined
      ? typeof data.type === 'string'
        ? data.type
        : undefined
      : data.command !== undefined
        ? 'command'
        : (ctx.daemon.queues.settings(queue).type ?? 'command');
  const host = data.host ?? data.host_name;
  return { queue, type, host: typeof host === 'string' ? host : DEFAULT_HOST };
}

/** The types or hosts a principal's CreateJobs grants allow in a queue (for a type): 'any', or a set of names. */
function allowedNames(
  principal: Parameters<typeof can>[0],
  queue: string,
  field: 'type_name' | 'host_name',
  type?: string,
): 'any' | Set<string> {
  if (principal.superuser) return 'any';
  const names = new Set<string>();
  for (const g of principal.grants) {
    if (g.permission !== 'CreateJobs' || (g.queue_name !== null && g.queue_name !== queue)) continue;
    if (type !== undefined && g.type_name !== null && g.type_name !== type) continue;
    const value = g[field];
    if (value === null) return 'any';
    names.add(value);
  }
  return names;
}

function field(body: unknown, key: string): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const value = (body as Record<string, unknown>)[key];
  return typeof value === 'string' ? value : undefined;
}
