import { Hono } from 'hono';

import type { ApiContext, ApiEnv } from '../context.ts';
import { statusOf, toBatchdError } from '../errors.ts';
import { Native, type NativeFetch, NativeRefusal } from './forward.ts';
import { type Face } from './face.ts';
import { registerBatchdJobs } from './jobs.ts';
import { registerBatchdMeta } from './meta.ts';
import { MetricSampler, registerBatchdMonitor } from './monitor.ts';
import { JobNumbers } from './numbers.ts';
import { registerBatchdQueues } from './queues.ts';
import { registerBatchdSchedules } from './schedules.ts';
import { registerBatchdStats } from './stats.ts';
import { registerBatchdTypes } from './types.ts';
import { registerBatchdUsers } from './users.ts';
import { logBatchdConfigNotes } from './config-notes.ts';
import { registerBatchdWebClient, WebClient } from './web-client.ts';

/**
 * Where batchd's REST resources are served, in batchd's wire format: a user gives
 * `http://host:9681/batchd` to batchd's clients as their manager URL (docs/batchd-compat.md says why
 * not the root: the native API owns batchd's paths there, in its own shapes).
 */
export const BATCHD_BASE = '/batchd';

export interface BatchdFace {
  fetch(request: Request, env: ApiEnv['Bindings']): Response | Promise<Response>;
  /** Whether a root path no native route took is batchd's web client's (only with manager.web_client.path). */
  takesAtRoot(pathname: string): boolean;
  close(): void;
}

/** The batchd face of a daemon's API: translates batchd's requests to native calls and the answers back. */
export function createBatchdFace(ctx: ApiContext, native: NativeFetch): BatchdFace {
  const proxy = ctx.settings.auth === 'disable' ? undefined : ctx.settings.auth.proxy?.header;
  const face: Face = {
    ctx,
    native: new Native(native, proxy),
    numbers: new JobNumbers(ctx.daemon.reads.root),
  };
  logBatchdConfigNotes(ctx.daemon.config.daemon, ctx.daemon.log);
  const app = new Hono<ApiEnv>({ getPath: batchdPath });
  app.onError((thrown, c) => {
    // batchd's errors are plain text; the status stays the native one (its clients test for 200, 401 and 403).
    if (thrown instanceof NativeRefusal) {
      if (thrown.challenge !== undefined) c.header('WWW-Authenticate', thrown.challenge);
      return c.text(thrown.message, thrown.status);
    }
    const error = toBatchdError(thrown);
    if (error.code === 'INTERNAL')
      ctx.daemon.log.error({ err: thrown, route: c.req.path }, 'batchd request failed');
    const status = statusOf(error);
    const challenge = status === 401 ? ctx.auth.challenge() : undefined;
    if (challenge !== undefined) c.header('WWW-Authenticate', challenge);
    return c.text(error.message, status);
  });
  app.notFound((c) => c.text(`Not found: ${c.req.method} ${BATCHD_BASE}${batchdPath(c.req.raw)}`, 404));

  registerBatchdMeta(app, face);
  registerBatchdStats(app, face);
  registerBatchdQueues(app, face);
  registerBatchdJobs(app, face);
  registerBatchdSchedules(app, face);
  registerBatchdTypes(app, face);
  registerBatchdUsers(app, face);
  const sampler = new MetricSampler(ctx);
  registerBatchdMonitor(app, face, sampler);
  const folder = ctx.settings.web_client?.path;
  const web = folder === undefined ? undefined : new WebClient(ctx.daemon.config.resolve(folder));
  registerBatchdWebClient(app, face, web);

  return {
    fetch: (request, env) => app.fetch(request, env),
    takesAtRoot: (pathname) => web?.takes(pathname) ?? false,
    close: () => sampler.close(),
  };
}

/**
 * The path below the base, without a trailing slash: jquery.rest (the web client) ends every URL
 * with one, batchd's other clients never do, and batchd answered both.
 */
function batchdPath(request: Request): string {
  const url = request.url;
  const start = url.indexOf('/', url.indexOf('//') + 2);
  const query = url.indexOf('?', start);
  let p = start < 0 ? '/' : url.slice(start, query < 0 ? undefined : query);
  if (p === BATCHD_BASE || p.startsWith(`${BATCHD_BASE}/`)) p = p.slice(BATCHD_BASE.length);
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p === '' ? '/' : p;
}
