import { z } from 'zod';

import { authMethodsSchema } from '../../protocol/common.ts';
import { whoamiSchema } from '../../protocol/auth.ts';
import type { Router } from '../route.ts';

const VERSION = '0.1.0';

export function registerMetaRoutes(router: Router): void {
  const { app, ctx } = router;

  router.add(
    {
      method: 'options',
      path: '/',
      summary: 'The enabled authentication methods ([] when authentication is disabled)',
      tag: 'meta',
      access: { kind: 'public' },
      responses: { 200: { description: 'Methods', schema: authMethodsSchema } },
    },
    ({ c }) => c.json(ctx.auth.methods()),
  );

  let document: unknown;
  app.openAPIRegistry.registerComponent('securitySchemes', 'basic', { type: 'http', scheme: 'basic' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  router.add(
    {
      method: 'get',
      path: '/openapi.json',
      summary: 'This API as an OpenAPI 3 document, generated from the schemas that validate requests',
      tag: 'meta',
      access: { kind: 'public' },
      responses: { 200: { description: 'OpenAPI document', schema: z.record(z.string(), z.unknown()) } },
    },
    ({ c }) => {
      document ??= app.getOpenAPIDocument({
        openapi: '3.0.3',
        info: {
          title: 'batchd',
          version: VERSION,
          description:
            'Queues, jobs, schedules, job types, hosts, users and permissions of a batchd daemon. Errors are {"error": {"code", "message", "details"?}}.',
        },
      });
      return c.json(document);
    },
  );

  router.add(
    {
      method: 'get',
      path: '/whoami',
      summary: 'Who the daemon takes the caller for, with their grants',
      tag: 'meta',
      access: { kind: 'user', note: 'shows the caller only' },
      responses: { 200: { description: 'The caller', schema: whoamiSchema } },
    },
    ({ c, principal }) =>
      c.json({
        name: principal.name,
        superuser: principal.superuser,
        via: principal.via,
        grants: [...principal.grants],
      }),
  );

  router.add(
    {
      method: 'get',
      path: '/metrics',
      summary: 'Prometheus metrics',
      tag: 'meta',
      access: { kind: 'user', note: 'series of the queues the caller may view' },
      responses: { 200: { description: 'Prometheus text format', schema: z.string(), mime: 'text/plain' } },
    },
    async ({ c, principal }) =>
      c.body(await ctx.metrics.textFor(principal), 200, { 'Content-Type': ctx.metrics.registry.contentType }),
  );
}
