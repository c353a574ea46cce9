import { z } from 'zod';

import type { JobType } from '../../config/schema.ts';
import { BatchdError } from '../../errors.ts';
import { nameSchema } from '../../protocol/common.ts';
import { type HostInfo, hostInfoSchema, type JobTypeInfo, jobTypeInfoSchema } from '../../protocol/config.ts';
import type { ApiContext } from '../context.ts';
import type { Router } from '../route.ts';

/** A job type in batchd's JSON shape. */
export function typeInfo(type: JobType): JobTypeInfo {
  return {
    name: type.name,
    title: type.title ?? type.name,
    syntax: type.syntax,
    template: (Array.isArray(type.template) ? type.template : [type.template]).flatMap((t) => t.split('\n')),
    on_fail: type.on_fail,
    host_name: type.host_name ?? null,
    max_jobs: type.max_jobs ?? null,
    timeout_ms: type.timeout ?? null,
    params: type.params.map((p) => ({
      name: p.name,
      type: p.type,
      title: p.title ?? p.name,
      default: p.default ?? null,
      choices: p.choices ?? null,
      min: p.min ?? null,
      max: p.max ?? null,
    })),
  };
}

export function registerConfigRoutes(router: Router): void {
  const { ctx } = router;
  const { config } = ctx.daemon;

  router.add(
    {
      method: 'get',
      path: '/type',
      summary: 'The job types of the server (clients never read them locally)',
      tag: 'config',
      access: { kind: 'user', note: 'job types are not secret' },
      responses: { 200: { description: 'Job types', schema: z.array(jobTypeInfoSchema) } },
    },
    ({ c }) =>
      c.json(
        config
          .list<JobType>('jobtypes')
          .sort((a, b) => a.name.localeCompare(b.name))
          .map(typeInfo),
      ),
  );

  router.add(
    {
      method: 'get',
      path: '/type/:name',
      summary: 'One job type',
      tag: 'config',
      access: { kind: 'user', note: 'job types are not secret' },
      params: z.object({ name: nameSchema }),
      responses: {
        200: { description: 'The job type', schema: jobTypeInfoSchema },
        404: { description: 'Unknown type' },
      },
    },
    ({ c, params }) => {
      const type = config.jobType(params.name);
      if (type === undefined)
        throw new BatchdError('UNKNOWN_TYPE', `Unknown job type "${params.name}"`, { type: params.name });
      return c.json(typeInfo(type));
    },
  );

  router.add(
    {
      method: 'get',
      path: '/host',
      summary: 'The hosts jobs can run on (names and last known state; no addresses or keys)',
      tag: 'config',
      access: { kind: 'user', note: 'host names are not secret' },
      responses: { 200: { description: 'Hosts', schema: z.array(hostInfoSchema) } },
    },
    ({ c }) =>
      c.json(
        config
          .list<{ name: string }>('hosts')
          .map((h) => h.name)
          .sort()
          .map((name) => hostInfo(ctx, name)),
      ),
  );
}

/** A host's state as this daemon knows it (no address, user or key). */
function hostInfo(ctx: ApiContext, name: string): HostInfo {
  const hosts = ctx.daemon.hosts;
  const status = hosts.states.get(name);
  return {
    name,
    state: status.state === 'unknown' ? null : status.state,
    ...(status.reason === undefined ? {} : { reason: status.reason }),
    controller: hosts.host(name)?.controller ?? 'local',
    jobs: hosts.active(name),
    ...(status.since === 0 ? {} : { since: new Date(status.since).toISOString() }),
    ...(hosts.states.errors(name).length === 0 ? {} : { errors: [...hosts.states.errors(name)] }),
  };
}
