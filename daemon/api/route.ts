import type { OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';

import { can, type Principal, type Scope } from '../auth/permissions.ts';
import { locateIssues } from '../config/parse.ts';
import { BatchdError } from '../errors.ts';
import type { Permission } from '../protocol/auth.ts';
import { errorBodySchema } from '../protocol/common.ts';
import { isJobId } from '../jobs/id.ts';
import { parseTaskRef } from '../jobs/task-ref.ts';
import type { JobLocation } from '../service/port.ts';
import { readBody, type RequestBody } from './body.ts';
import { type ApiContext, type ApiCtx, type ApiEnv, remoteAddress } from './context.ts';
import { failureResponse } from './errors.ts';

/**
 * Who may call a route. `permission` is checked before the handler runs, with a scope taken from
 * the path and (unvalidated) body; `job` is checked against the queue the job is in; `user` admits
 * any authenticated caller and the handler filters what it shows (or checks more itself).
 */
export type Access =
  | { kind: 'public' }
  | { kind: 'user'; note: string }
  | {
      kind: 'permission';
      permission: Permission;
      scope?: (request: { params: Record<string, string>; body: unknown }) => Scope;
    }
  | { kind: 'job'; permission: Permission };

export type Method = 'get' | 'post' | 'put' | 'delete' | 'options';

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** Default application/json. */
  mime?: string;
}

export interface RouteDef<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
> {
  method: Method;
  /** Hono style: `/queue/:q`. */
  path: string;
  summary: string;
  tag: string;
  access: Access;
  params?: P;
  query?: Q;
  body?: B;
  /** The body may also be YAML (Content-Type application/yaml). */
  yaml?: boolean;
  /** The handler validates the body itself (job files go through Daemon.submit); `body` only documents it. */
  rawBody?: boolean;
  responses: Record<number, ResponseSpec>;
}

export interface RouteInput<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  c: ApiCtx;
  ctx: ApiContext;
  principal: Principal;
  params: z.output<P>;
  query: z.output<Q>;
  body: z.output<B>;
  raw: RequestBody | undefined;
  /** For `job` access: where the job is. */
  job: JobLocation | undefined;
}

export type RouteHandler<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> = (
  input: RouteInput<P, Q, B>,
) => Response | Promise<Response>;

/** The routes of one app, registered with Hono and with the OpenAPI registry from the same schemas. */
export class Router {
  readonly app: OpenAPIHono<ApiEnv>;
  readonly ctx: ApiContext;
  readonly routes: RouteDef[] = [];

  constructor(app: OpenAPIHono<ApiEnv>, ctx: ApiContext) {
    this.app = app;
    this.ctx = ctx;
  }

  add<P extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType>(
    def: RouteDef<P, Q, B>,
    handler: RouteHandler<P, Q, B>,
  ): void {
    this.routes.push(def);
    this.#document(def);
    const ctx = this.ctx;
    const method = def.method.toUpperCase();
    const record = ctx.metrics.route(method, def.path);
    const log = ctx.daemon.log;
    this.app.on(method, def.path, (c) => {
      const started = performance.now();
      const finish = (response: Response): Response => {
        const seconds = (performance.now() - started) / 1000;
        record(response.status, seconds);
        // Method, route and status only: never headers, query strings or bodies (secrets travel there).
        if (log.isLevelEnabled('debug')) {
          const user = c.get('principal')?.name;
          const ms = Math.round(seconds * 10_000) / 10;
          log.debug({ method, route: def.path, status: response.status, ms, user }, 'http request');
        }
        return response;
      };
      const fail = (thrown: unknown): Response =>
        finish(failureResponse(c, thrown, log, def.path, ctx.auth.challenge()));
      // A request that needs no waiting (a token, no body) is answered without a promise.
      let result: Response | Promise<Response>;
      try {
        result = this.#handle(def, handler, c);
      } catch (thrown) {
        return fail(thrown);
      }
      return result instanceof Promise ? result.then(finish, fail) : finish(result);
    });
  }

  /** Authenticate; then check access, parse and validate (#admit). */
  #handle<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(
    def: RouteDef<P, Q, B>,
    handler: RouteHandler<P, Q, B>,
    c: ApiCtx,
  ): Response | Promise<Response> {
    if (def.method !== 'get' && def.method !== 'options' && this.ctx.daemon.stopping) throw stoppingError();
    const principal =
      def.access.kind === 'public'
        ? PUBLIC
        : this.ctx.auth.authenticate({
            header: (name) => c.req.header(name),
            remoteAddress: remoteAddress(c),
          });
    return principal instanceof Promise
      ? principal.then((p) => this.#admit(def, handler, c, p))
      : this.#admit(def, handler, c, principal);
  }

  #admit<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(
    def: RouteDef<P, Q, B>,
    handler: RouteHandler<P, Q, B>,
    c: ApiCtx,
    principal: Principal,
  ): Response | Promise<Response> {
    const ctx = this.ctx;
    c.set('principal', principal);
    const access = def.access;
    const path =
      access.kind === 'job' ? this.#withJobId(c.req.param(), principal, access.permission) : c.req.param();
    const params = parseParams(def.params, path);
    let job: JobLocation | undefined;
    if (def.access.kind === 'job') {
      const id = path.id ?? '';
      job = isJobId(id) ? ctx.daemon.locate(id) : undefined;
      // A 403 would tell a caller who may not even see the queue that the id exists: such a
      // caller is answered exactly as for a job that does not exist.
      const hidden =
        job !== undefined &&
        !can(principal, 'ViewJobs', { queue: job.queue }) &&
        !can(principal, def.access.permission, { queue: job.queue });
      if (job === undefined || hidden)
        throw new BatchdError('UNKNOWN_JOB', `No job ${id} in any queue`, { jobId: id });
      demand(principal, def.access.permission, { queue: job.queue });
    }
    const query = parseQuery(def.query, c.req.query());
    const run = (raw: RequestBody | undefined): Response | Promise<Response> => {
      if (def.access.kind === 'permission') {
        demand(
          principal,
          def.access.permission,
          def.access.scope?.({ params: c.req.param(), body: raw?.data }) ?? {},
        );
      }
      const body =
        def.body === undefined || def.rawBody === true || raw === undefined
          ? raw?.data
          : validateBody(def.body, raw);
      return handler({ c, ctx, principal, params, query, body, raw, job } as RouteInput<P, Q, B>);
    };
    if (def.body === undefined) return run(undefined);
    return readBody(c, ctx.settings.max_body_bytes, def.yaml === true).then(run);
  }

  /** A task-relative name (`render#3`, jobs/task-ref.ts) stands for its job's id wherever an id goes. */
  #withJobId(
    params: Record<string, string>,
    principal: Principal,
    permission: Permission,
  ): Record<string, string> {
    const given = params.id ?? '';
    const ref = isJobId(given) ? undefined : parseTaskRef(given);
    if (ref === undefined) return params;
    const queues = this.ctx.daemon.queues
      .names()
      .filter((queue) => can(principal, 'ViewJobs', { queue }) || can(principal, permission, { queue }));
    return { ...params, id: this.ctx.daemon.reads.taskJobId(queues, ref) };
  }

  #document(def: RouteDef<z.ZodType, z.ZodType, z.ZodType>): void {
    const responses: Record<string, unknown> = {};
    for (const [status, spec] of Object.entries(def.responses)) {
      responses[status] =
        spec.schema === undefined
          ? { description: spec.description }
          : {
              description: spec.description,
              content: { [spec.mime ?? 'application/json']: { schema: spec.schema } },
            };
    }
    if (def.access.kind !== 'public') {
      responses['401'] ??= {
        description: 'Not authenticated',
        content: { 'application/json': { schema: errorBodySchema } },
      };
      responses['403'] ??= {
        description: 'Not permitted',
        content: { 'application/json': { schema: errorBodySchema } },
      };
    }
    responses['400'] ??= {
      description: 'Malformed request',
      content: { 'application/json': { schema: errorBodySchema } },
    };
    const content: Record<string, { schema: z.ZodType }> = {};
    if (def.body !== undefined) {
      content['application/json'] = { schema: def.body };
      if (def.yaml === true) content['application/yaml'] = { schema: def.body };
    }
    this.app.openAPIRegistry.registerPath({
      method: def.method === 'options' ? 'options' : def.method,
      path: def.path.replace(/:([A-Za-z_]+)/g, '{$1}'),
      summary: def.summary,
      description: describeAccess(def.access),
      tags: [def.tag],
      ...(def.access.kind === 'public' ? {} : { security: [{ basic: [] }, { bearer: [] }] }),
      request: {
        ...(def.params instanceof z.ZodObject ? { params: def.params } : {}),
        ...(def.query instanceof z.ZodObject ? { query: def.query } : {}),
        ...(def.body === undefined ? {} : { body: { content, required: true } }),
      },
      responses: responses as never,
    });
  }
}

/** Throws 403 unless the principal holds the permission for the scope. */
export function demand(principal: Principal, permission: Permission, scope: Scope): void {
  if (can(principal, permission, scope)) return;
  const where = [
    scope.queue && `queue "${scope.queue}"`,
    scope.type && `type "${scope.type}"`,
    scope.host && `host "${scope.host}"`,
  ]
    .filter(Boolean)
    .join(', ');
  throw new BatchdError(
    'FORBIDDEN',
    `${principal.name} lacks the ${permission} permission${where === '' ? '' : ` for ${where}`}`,
    { permission, ...scope },
  );
}

export function describeAccess(access: Access): string {
  switch (access.kind) {
    case 'public':
      return 'No authentication needed.';
    case 'user':
      return `Any authenticated user; ${access.note}.`;
    case 'permission':
      return `Needs ${access.permission}${access.scope === undefined ? ' (unrestricted)' : " for the resource's scope"}.`;
    case 'job':
      return `Needs ${access.permission} for the job's queue.`;
  }
}

/** Seconds a client is told to wait before it tries a write again, during a graceful stop. */
const STOPPING_RETRY_AFTER = 10;

/** The answer to a write during a graceful stop: reads still work, this one may after a restart. */
function stoppingError(): BatchdError {
  return new BatchdError(
    'STOPPING',
    'batchd is stopping (it waits for running jobs to finish) and takes no submissions or changes now; ' +
      'try again once it has been restarted',
    { retryAfter: STOPPING_RETRY_AFTER },
  );
}

/** A placeholder principal for public routes (they never look at it). */
const PUBLIC: Principal = Object.freeze({ name: 'public', superuser: false, grants: [], via: 'none' });

function parseParams(schema: z.ZodType | undefined, params: Record<string, string>): unknown {
  if (schema === undefined) return params;
  const result = schema.safeParse(params);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.map(String).join('.') ?? '';
  throw new BatchdError(
    'NAME_INVALID',
    `Invalid ${field} ${JSON.stringify(params[field] ?? '')} in the path: ${issue?.message ?? 'invalid'}`,
    { field },
  );
}

function parseQuery(schema: z.ZodType | undefined, query: Record<string, string>): unknown {
  if (schema === undefined) return query;
  const result = schema.safeParse(query);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => ({
    field: i.path.map(String).join('.') || String((i as { keys?: string[] }).keys?.[0] ?? ''),
    message: i.message,
  }));
  const summary = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
  throw new BatchdError('REQUEST_INVALID', `Invalid query: ${summary}`, {}, { problems });
}

function validateBody(schema: z.ZodType, raw: RequestBody): unknown {
  const result = schema.safeParse(raw.data);
  if (result.success) return result.data;
  const problems = locateIssues(raw.text, result.error.issues, raw.data);
  const summary = problems
    .map((p) => (p.field === undefined ? p.message : `${p.field}: ${p.message}`))
    .join('; ');
  throw new BatchdError(
    'ENTITY_INVALID',
    `Invalid request body: ${summary}`,
    { field: problems[0]?.field },
    { problems },
  );
}
