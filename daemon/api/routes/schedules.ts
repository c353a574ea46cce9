import { z } from 'zod';

import { type Schedule, scheduleSchema } from '../../config/schema.ts';
import { BatchdError } from '../../errors.ts';
import { flagSchema, nameSchema, okSchema } from '../../protocol/common.ts';
import { scheduleCreateSchema, type ScheduleInfo, scheduleInfoSchema } from '../../protocol/config.ts';
import type { ApiContext } from '../context.ts';
import type { Router } from '../route.ts';

const FOLDER = 'schedules';

export function registerScheduleRoutes(router: Router): void {
  const { ctx } = router;
  const { config } = ctx.daemon;
  const find = (name: string): Schedule => {
    const schedule = config.schedule(name);
    if (schedule === undefined)
      throw new BatchdError('UNKNOWN_SCHEDULE', `Unknown schedule "${name}"`, { schedule: name });
    return schedule;
  };

  router.add(
    {
      method: 'get',
      path: '/schedule',
      summary: 'The schedules (time windows and weekdays queues start jobs in)',
      tag: 'schedules',
      access: { kind: 'permission', permission: 'ViewSchedules' },
      responses: { 200: { description: 'Schedules', schema: z.array(scheduleInfoSchema) } },
    },
    ({ c }) =>
      c.json(
        config
          .list<Schedule>(FOLDER)
          .sort((a, b) => a.name.localeCompare(b.name))
          .map((s) => scheduleInfo(ctx, s)),
      ),
  );

  router.add(
    {
      method: 'get',
      path: '/schedule/:name',
      summary: 'One schedule',
      tag: 'schedules',
      access: { kind: 'permission', permission: 'ViewSchedules' },
      params: z.object({ name: nameSchema }),
      responses: {
        200: { description: 'The schedule', schema: scheduleInfoSchema },
        404: { description: 'Unknown schedule' },
      },
    },
    ({ c, params }) => c.json(scheduleInfo(ctx, find(params.name))),
  );

  router.add(
    {
      method: 'post',
      path: '/schedule',
      summary: 'Create a schedule (etc/schedules/<name>.yaml, written atomically; hot reload applies it)',
      tag: 'schedules',
      access: { kind: 'permission', permission: 'ManageSchedules' },
      body: scheduleCreateSchema,
      responses: {
        201: { description: 'Created', schema: scheduleInfoSchema },
        409: { description: 'Exists' },
        422: { description: 'Invalid schedule' },
      },
    },
    ({ c, body }) => {
      ctx.daemon.schedules.writable();
      if (config.schedule(body.name) !== undefined)
        throw new BatchdError('ALREADY_EXISTS', `Schedule "${body.name}" already exists`, {
          schedule: body.name,
        });
      const checked = scheduleSchema.safeParse(body);
      if (!checked.success) {
        const problems = checked.error.issues.map((i) => ({
          field: i.path.map(String).join('.'),
          message: i.message,
        }));
        throw new BatchdError(
          'ENTITY_INVALID',
          `Invalid schedule: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
          {},
          { problems },
        );
      }
      ctx.daemon.schedules.create(body);
      return c.json(scheduleInfo(ctx, find(body.name)), 201);
    },
  );

  router.add(
    {
      method: 'delete',
      path: '/schedule/:name',
      summary:
        'Delete a schedule; refused while queues use it, unless ?forced=true (those queues then start no jobs until given another)',
      tag: 'schedules',
      access: { kind: 'permission', permission: 'ManageSchedules' },
      params: z.object({ name: nameSchema }),
      query: z.object({ forced: flagSchema }).strict(),
      responses: {
        200: { description: 'Deleted', schema: okSchema },
        404: { description: 'Unknown schedule' },
        409: { description: 'Built in, or in use' },
      },
    },
    ({ c, params, query }) => {
      find(params.name);
      ctx.daemon.schedules.writable();
      if (ctx.daemon.schedules.fileOf(params.name) === undefined)
        throw new BatchdError('CONFLICT', `Schedule "${params.name}" is built in; it cannot be deleted`, {
          schedule: params.name,
        });
      const users = ctx.daemon.queues
        .names()
        .filter((q) => ctx.daemon.queues.settings(q).schedule_name === params.name);
      if (users.length > 0 && query.forced !== true) {
        throw new BatchdError(
          'CONFLICT',
          `Schedule "${params.name}" is used by queue(s) ${users.join(', ')}; add ?forced=true to delete it anyway`,
          { schedule: params.name },
        );
      }
      ctx.daemon.schedules.remove(params.name);
      return c.json({ ok: true as const });
    },
  );
}

function scheduleInfo(ctx: ApiContext, s: Schedule): ScheduleInfo {
  const hasFile = ctx.daemon.schedules.fileOf(s.name) !== undefined;
  return {
    name: s.name,
    weekdays: s.weekdays ?? null,
    time: s.time?.map((w) => ({ begin: clock(w.begin), end: clock(w.end) })) ?? null,
    timezone: s.timezone ?? null,
    builtin: !hasFile,
  };
}

function clock(seconds: number): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(Math.floor(seconds / 3600))}:${two(Math.floor((seconds % 3600) / 60))}:${two(seconds % 60)}`;
}
