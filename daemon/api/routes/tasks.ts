import { z } from 'zod';

import { nameSchema } from '../../protocol/common.ts';
import {
  taskResultsSchema,
  taskResumeSchema,
  taskStatusSchema,
  taskSummarySchema,
} from '../../protocol/tasks.ts';
import { resumeTask, taskStatus } from '../../tasks/tasks.ts';
import { assertQueue } from '../queue-admin.ts';
import type { Router } from '../route.ts';

const taskParams = z.object({ q: nameSchema, name: nameSchema });

export function registerTaskRoutes(router: Router): void {
  const { ctx } = router;
  const { daemon } = ctx;
  const load = (q: string, name: string) => {
    assertQueue(ctx, q);
    return daemon.reads.task(q, name);
  };

  router.add(
    {
      method: 'get',
      path: '/queue/:q/tasks',
      summary: 'The tasks submitted to a queue',
      tag: 'tasks',
      access: { kind: 'permission', permission: 'ViewJobs', scope: ({ params }) => ({ queue: params.q }) },
      params: z.object({ q: nameSchema }),
      responses: {
        200: { description: 'Tasks', schema: z.array(taskSummarySchema) },
        404: { description: 'Unknown queue' },
      },
    },
    ({ c, params }) => {
      assertQueue(ctx, params.q);
      const names = daemon.reads.taskNames(params.q).sort();
      const out: z.infer<typeof taskSummarySchema>[] = [];
      for (const name of names) {
        try {
          const m = daemon.reads.manifest(params.q, name);
          out.push({ name: m.name, count: m.count, submitted_at: m.submitted_at ?? null });
        } catch {
          // not a task folder (or half-written by hand): left out
        }
      }
      return c.json(out);
    },
  );

  router.add(
    {
      method: 'get',
      path: '/queue/:q/task/:name',
      summary: "A task's status: its jobs counted by state; resolved once none is queued or running",
      tag: 'tasks',
      access: { kind: 'permission', permission: 'ViewJobs', scope: ({ params }) => ({ queue: params.q }) },
      params: taskParams,
      responses: {
        200: { description: 'Status', schema: taskStatusSchema },
        404: { description: 'Unknown queue or task' },
      },
    },
    ({ c, params }) => {
      const { manifest, jobs } = load(params.q, params.name);
      return c.json(taskStatus(manifest, jobs));
    },
  );

  router.add(
    {
      method: 'get',
      path: '/queue/:q/task/:name/results',
      summary: "Every job's outcome and result.json, in the task's order",
      tag: 'tasks',
      access: { kind: 'permission', permission: 'ViewJobs', scope: ({ params }) => ({ queue: params.q }) },
      params: taskParams,
      responses: {
        200: { description: 'Results in order', schema: taskResultsSchema },
        404: { description: 'Unknown queue or task' },
      },
    },
    ({ c, params }) => {
      const { jobs } = load(params.q, params.name);
      return c.json(daemon.reads.taskResults(jobs));
    },
  );

  router.add(
    {
      method: 'post',
      path: '/queue/:q/task/:name/resume',
      summary:
        "Queue again only the task's failed and cancelled jobs (done, queued and running ones are left alone)",
      tag: 'tasks',
      access: { kind: 'permission', permission: 'ManageJobs', scope: ({ params }) => ({ queue: params.q }) },
      params: taskParams,
      responses: {
        200: { description: 'The jobs queued again', schema: taskResumeSchema },
        404: { description: 'Unknown queue or task' },
      },
    },
    async ({ c, params }) => {
      const { jobs } = load(params.q, params.name);
      const { resumed, errors } = await resumeTask(jobs, (id) => daemon.control.retry(id));
      if (errors.length > 0)
        daemon.log.warn(
          { queue: params.q, task: params.name, errors },
          'some jobs of the task could not be resumed',
        );
      return c.json({ resumed });
    },
  );
}
