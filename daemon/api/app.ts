import { OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';

import { Authenticator } from '../auth/authenticate.ts';
import { UserStore } from '../auth/store.ts';
import type { ManagerSettings } from '../config/manager.ts';
import type { DaemonPort } from '../service/port.ts';
import { BatchdError } from '../errors.ts';
import { BATCHD_BASE, createBatchdFace } from './batchd/index.ts';
import type { ApiContext, ApiEnv } from './context.ts';
import { errorResponse, failureResponse } from './errors.ts';
import { ApiMetrics } from './metrics.ts';
import { type RouteDef, Router } from './route.ts';
import { registerConfigRoutes } from './routes/config.ts';
import { registerEventRoutes } from './routes/events.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerJobRoutes } from './routes/jobs.ts';
import { registerLogRoutes } from './routes/log.ts';
import { registerMetaRoutes } from './routes/meta.ts';
import { registerOutputRoutes } from './routes/outputs.ts';
import { registerQueueRoutes } from './routes/queues.ts';
import { registerScheduleRoutes } from './routes/schedules.ts';
import { registerTaskRoutes } from './routes/tasks.ts';
import { registerTokenRoutes } from './routes/tokens.ts';
import { registerUserRoutes } from './routes/users.ts';
import { registerWebRoutes } from './routes/web.ts';

export interface ApiOptions {
  /** Defaults to `<config>/users.yaml`. */
  users?: UserStore;
  /** Defaults to batchd.yaml's `manager` section as it is now (changes need a restart). */
  settings?: ManagerSettings;
}

export interface Api {
  app: OpenAPIHono<ApiEnv>;
  ctx: ApiContext;
  /** Every route with its access rule (the permission matrix test walks this list). */
  routes: readonly RouteDef[];
  close(): void;
}

/**
 * Build the HTTP API of a daemon, seen through its port (service/port.ts). It does not listen:
 * serve.ts does, tests call `app.request()`.
 */
export function createApi(daemon: DaemonPort, options: ApiOptions = {}): Api {
  const settings = options.settings ?? daemon.config.daemon.manager;
  const users = options.users ?? UserStore.forConfigDir(daemon.config.dir, daemon.log);
  const counts = daemon.reads.counts;
  const ctx: ApiContext = {
    daemon,
    settings,
    users,
    auth: new Authenticator(settings.auth, users),
    counts,
    metrics: new ApiMetrics(daemon, counts),
    hostStates: new Map(),
  };
  const unsubscribe = [
    daemon.events.on('host:state', (e) => ctx.hostStates.set(e.host, e.state)),
    daemon.events.on('config:reloaded', ({ file }) => {
      if (options.settings !== undefined || !file.endsWith('batchd.yaml')) return;
      if (JSON.stringify(daemon.config.daemon.manager) !== JSON.stringify(settings)) {
        daemon.log.warn(
          { file },
          'manager settings changed in batchd.yaml: they take effect when the daemon restarts',
        );
      }
    }),
  ];

  // No middleware for every request: a route on its own takes Hono's fast path, and each route
  // keeps its own metrics and access log (route.ts).
  const app = new OpenAPIHono<ApiEnv>();
  if (settings.cors !== undefined) {
    const handler: MiddlewareHandler<ApiEnv> = cors({
      origin: settings.cors.origins,
      credentials: settings.cors.credentials,
      allowMethods: ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
      allowHeaders: ['Authorization', 'Content-Type', 'Last-Event-ID'],
      maxAge: 600,
    });
    // A plain `OPTIONS /` is batchd's "which auth methods" call, not a CORS preflight.
    const unlessAuthMethods: MiddlewareHandler<ApiEnv> = (c, next) =>
      c.req.method === 'OPTIONS' && c.req.header('access-control-request-method') === undefined
        ? next()
        : handler(c, next);
    app.use('*', unlessAuthMethods);
  }
  app.onError((thrown, c) => failureResponse(c, thrown, daemon.log, c.req.routePath, ctx.auth.challenge()));
  // batchd's clients, with BATCHD_BASE as their manager URL: every request becomes a native call.
  const batchd = createBatchdFace(ctx, (request, env) => app.fetch(request, env));
  app.notFound((c) => {
    // batchd's web client calls the root with URLs no native route has (batchd/web-client.ts).
    if (batchd.takesAtRoot(c.req.path)) return batchd.fetch(c.req.raw, c.env);
    ctx.metrics.unmatched(c.req.method, 404);
    return errorResponse(
      c,
      new BatchdError('NOT_FOUND', `No such endpoint: ${c.req.method} ${new URL(c.req.url).pathname}`),
    );
  });

  const router = new Router(app, ctx);
  registerMetaRoutes(router);
  registerHealthRoutes(router);
  registerQueueRoutes(router);
  registerTaskRoutes(router);
  registerJobRoutes(router);
  registerLogRoutes(router);
  registerOutputRoutes(router);
  registerScheduleRoutes(router);
  registerConfigRoutes(router);
  registerUserRoutes(router);
  registerTokenRoutes(router);
  registerEventRoutes(router);
  registerWebRoutes(app);
  app.all(BATCHD_BASE, (c) => batchd.fetch(c.req.raw, c.env));
  app.all(`${BATCHD_BASE}/*`, (c) => batchd.fetch(c.req.raw, c.env));

  return {
    app,
    ctx,
    routes: router.routes,
    close: () => {
      for (const off of unsubscribe) off();
      batchd.close();
      ctx.metrics.close();
    },
  };
}
