import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createQueue, updateQueue } from '../../daemon/api/queue-admin.ts';
import { type GrantCreate, type Permission, PERMISSIONS } from '../../daemon/protocol/auth.ts';
import { waitForState } from '../helpers/dispatch.ts';
import { type Auth, type InProcessApi, startApi, writeUsersFile } from './api-helpers.ts';

/**
 * The permission matrix, generated: every endpoint × every permission and scope (unrestricted, the
 * target queue, another queue; for CreateJobs also job type and host), plus a user with no grant
 * and a caller with no credentials. The expectations come from batchd's rules (reference §1/§3,
 * its bugs fixed), stated below per endpoint, not from the implementation.
 */
const Q = 'alpha'; // the queue the requests are about
const OTHER = 'beta';
const PASSWORD = 'matrix-password';

interface Caller {
  name: string;
  grant?: GrantCreate;
}

const CALLERS: Caller[] = [
  { name: 'nogrant' },
  ...PERMISSIONS.flatMap((permission): Caller[] => [
    { name: `${permission}-any`, grant: { permission } },
    { name: `${permission}-${Q}`, grant: { permission, queue_name: Q } },
    { name: `${permission}-${OTHER}`, grant: { permission, queue_name: OTHER } },
  ]),
  { name: 'CreateJobs-type-echo', grant: { permission: 'CreateJobs', queue_name: Q, type_name: 'echo' } },
  { name: 'CreateJobs-type-sleep', grant: { permission: 'CreateJobs', queue_name: Q, type_name: 'sleep' } },
  {
    name: 'CreateJobs-host-default',
    grant: { permission: 'CreateJobs', queue_name: Q, host_name: '__default__' },
  },
  {
    name: 'CreateJobs-host-elsewhere',
    grant: { permission: 'CreateJobs', queue_name: Q, host_name: 'elsewhere' },
  },
];

/** Who may call an endpoint, in batchd's terms. */
type Rule =
  | { kind: 'public' } // no credentials needed
  | { kind: 'any' } // any authenticated user
  | { kind: 'queue'; permission: Permission; queues?: string[] } // the permission for these queues (default: alpha)
  | { kind: 'unrestricted'; permission: Permission } // a grant with no queue
  | { kind: 'superuser' }
  | { kind: 'create'; type: string; host: string } // CreateJobs for (alpha, type, host)
  | { kind: 'filtered'; sees: (c: Caller) => boolean; shows: (body: unknown) => boolean }; // 200 for all; content by grant

const superuser = (c: Caller): boolean => c.grant?.permission === 'SuperUser';
const inScope = (scoped: string | null | undefined, wanted: string): boolean =>
  scoped === undefined || scoped === null || scoped === wanted;
const holds = (c: Caller, permission: Permission, queue: string): boolean =>
  superuser(c) || (c.grant?.permission === permission && inScope(c.grant.queue_name, queue));
const mayCreate = (c: Caller, type: string | undefined, host: string | undefined): boolean =>
  superuser(c) ||
  (c.grant?.permission === 'CreateJobs' &&
    inScope(c.grant.queue_name, Q) &&
    (type === undefined || inScope(c.grant.type_name, type)) &&
    (host === undefined || inScope(c.grant.host_name, host)));

/**
 * A per-job route answers a caller who may neither view nor act on the job's queue as for a job
 * that does not exist (404): a 403 would tell that the id exists. Others are refused with a 403.
 */
function deniedStatus(endpoint: Endpoint, c: Caller): number {
  const { rule } = endpoint;
  const hidden =
    endpoint.route.startsWith('/job/:id') &&
    rule.kind === 'queue' &&
    !holds(c, 'ViewJobs', Q) &&
    !holds(c, rule.permission, Q);
  return hidden ? 404 : 403;
}

function allowed(rule: Rule, c: Caller): boolean {
  switch (rule.kind) {
    case 'public':
    case 'any':
    case 'filtered':
      return true;
    case 'queue':
      return (rule.queues ?? [Q]).every((q) => holds(c, rule.permission, q));
    case 'unrestricted':
      return (
        superuser(c) || (c.grant?.permission === rule.permission && (c.grant.queue_name ?? null) === null)
      );
    case 'superuser':
      return superuser(c);
    case 'create':
      return mayCreate(c, rule.type, rule.host);
  }
}

interface Kit {
  t: InProcessApi;
  /** A job of alpha that has run (failed): for read-only job endpoints. */
  ranJob(): Promise<string>;
  queuedJob(): string;
  cancelledJob(): Promise<string>;
}

interface Endpoint {
  method: string;
  /** The route pattern (checked against the app's route list). */
  route: string;
  rule: Rule;
  ok: number;
  /** Tells apart entries of one route (shown in the test name). */
  note?: string;
  request(
    k: Kit,
    caller: Caller,
  ): Promise<{ path: string; body?: unknown }> | { path: string; body?: unknown };
  /** After each call, put things back (the matrix reuses one daemon). */
  after?(k: Kit): Promise<void> | void;
}

const listed = (body: unknown, key: string, value: string): boolean =>
  Array.isArray(body) && body.some((x) => (x as Record<string, unknown>)[key] === value);
const jobsOf = (body: unknown): { queue: string }[] => (body as { jobs: { queue: string }[] }).jobs;
let seq = 0;

const ENDPOINTS: Endpoint[] = [
  { method: 'OPTIONS', route: '/', rule: { kind: 'public' }, ok: 200, request: () => ({ path: '/' }) },
  {
    method: 'GET',
    route: '/openapi.json',
    rule: { kind: 'public' },
    ok: 200,
    request: () => ({ path: '/openapi.json' }),
  },
  {
    method: 'GET',
    route: '/health',
    rule: { kind: 'public' },
    ok: 200,
    request: () => ({ path: '/health' }),
  },
  { method: 'GET', route: '/whoami', rule: { kind: 'any' }, ok: 200, request: () => ({ path: '/whoami' }) },
  { method: 'GET', route: '/metrics', rule: { kind: 'any' }, ok: 200, request: () => ({ path: '/metrics' }) },
  { method: 'GET', route: '/events', rule: { kind: 'any' }, ok: 200, request: () => ({ path: '/events' }) },
  { method: 'GET', route: '/type', rule: { kind: 'any' }, ok: 200, request: () => ({ path: '/type' }) },
  {
    method: 'GET',
    route: '/type/:name',
    rule: { kind: 'any' },
    ok: 200,
    request: () => ({ path: '/type/echo' }),
  },
  { method: 'GET', route: '/host', rule: { kind: 'any' }, ok: 200, request: () => ({ path: '/host' }) },
  {
    method: 'GET',
    route: '/stats',
    rule: {
      kind: 'filtered',
      sees: (c) => holds(c, 'ViewQueues', Q),
      shows: (b) => Object.hasOwn(b as object, Q),
    },
    ok: 200,
    request: () => ({ path: '/stats' }),
  },
  {
    method: 'GET',
    route: '/stats/:q',
    rule: { kind: 'queue', permission: 'ViewQueues' },
    ok: 200,
    request: () => ({ path: `/stats/${Q}` }),
  },
  {
    method: 'GET',
    route: '/queue',
    rule: { kind: 'filtered', sees: (c) => holds(c, 'ViewQueues', Q), shows: (b) => listed(b, 'name', Q) },
    ok: 200,
    request: () => ({ path: '/queue' }),
  },
  {
    method: 'POST',
    route: '/queue',
    rule: { kind: 'queue', permission: 'ManageQueues' },
    ok: 201,
    request: (k) => {
      deleteAlpha(k);
      return { path: '/queue', body: { name: Q, enabled: false } };
    },
    after: (k) => ensureAlpha(k),
  },
  {
    method: 'GET',
    route: '/queue/:q',
    rule: { kind: 'queue', permission: 'ViewQueues' },
    ok: 200,
    request: () => ({ path: `/queue/${Q}` }),
  },
  {
    method: 'PUT',
    route: '/queue/:q',
    rule: { kind: 'queue', permission: 'ManageQueues' },
    ok: 200,
    request: () => ({ path: `/queue/${Q}`, body: { title: `t${++seq}` } }),
  },
  {
    method: 'POST',
    route: '/queue/:q/pause',
    rule: { kind: 'queue', permission: 'ManageQueues', queues: [OTHER] },
    ok: 200,
    request: () => ({ path: `/queue/${OTHER}/pause` }),
  },
  {
    method: 'POST',
    route: '/queue/:q/resume',
    rule: { kind: 'queue', permission: 'ManageQueues', queues: [OTHER] },
    ok: 200,
    request: () => ({ path: `/queue/${OTHER}/resume` }),
    after: (k) => updateQueue(k.t.api.ctx, OTHER, { enabled: false }),
  },
  {
    method: 'DELETE',
    route: '/queue/:q',
    rule: { kind: 'queue', permission: 'ManageQueues' },
    ok: 200,
    request: () => ({ path: `/queue/${Q}?forced=true` }),
    after: (k) => ensureAlpha(k),
  },
  {
    // batchd's bulk delete by state: finished job folders go.
    method: 'DELETE',
    route: '/queue/:q',
    note: '?status=cancelled',
    rule: { kind: 'queue', permission: 'ManageQueues' },
    ok: 200,
    request: async (k) => {
      await k.cancelledJob();
      return { path: `/queue/${Q}?status=cancelled` };
    },
  },
  {
    // ... and queued jobs are cancelled: ManageQueues for the queue as well (batchd's rule).
    method: 'DELETE',
    route: '/queue/:q',
    note: '?status=queued',
    rule: { kind: 'queue', permission: 'ManageQueues' },
    ok: 200,
    request: (k) => {
      k.queuedJob();
      return { path: `/queue/${Q}?status=queued` };
    },
  },
  {
    method: 'GET',
    route: '/queue/:q/jobs',
    rule: { kind: 'queue', permission: 'ViewJobs' },
    ok: 200,
    request: () => ({ path: `/queue/${Q}/jobs?status=all` }),
  },
  {
    method: 'POST',
    route: '/queue/:q',
    rule: { kind: 'create', type: 'echo', host: '__default__' },
    ok: 201,
    request: () => ({ path: `/queue/${Q}`, body: { type: 'echo', params: { message: 'matrix' } } }),
  },
  {
    method: 'GET',
    route: '/queue/:q/type',
    rule: {
      kind: 'filtered',
      sees: (c) => mayCreate(c, 'echo', undefined),
      shows: (b) => listed(b, 'name', 'echo'),
    },
    ok: 200,
    request: () => ({ path: `/queue/${Q}/type` }),
  },
  {
    method: 'GET',
    route: '/queue/:q/host',
    rule: {
      kind: 'filtered',
      sees: (c) => mayCreate(c, undefined, '__default__'),
      shows: (b) => Array.isArray(b) && b.includes('__default__'),
    },
    ok: 200,
    request: () => ({ path: `/queue/${Q}/host` }),
  },
  {
    method: 'GET',
    route: '/queue/:q/type/:t/host',
    rule: {
      kind: 'filtered',
      sees: (c) => mayCreate(c, 'echo', '__default__'),
      shows: (b) => Array.isArray(b) && b.includes('__default__'),
    },
    ok: 200,
    request: () => ({ path: `/queue/${Q}/type/echo/host` }),
  },
  {
    method: 'GET',
    route: '/queue/:q/tasks',
    rule: { kind: 'queue', permission: 'ViewJobs' },
    ok: 200,
    request: () => ({ path: `/queue/${Q}/tasks` }),
  },
  {
    method: 'GET',
    route: '/queue/:q/task/:name',
    rule: { kind: 'queue', permission: 'ViewJobs' },
    ok: 200,
    request: (k) => ({ path: `/queue/${Q}/task/${task(k)}` }),
  },
  {
    method: 'GET',
    route: '/queue/:q/task/:name/results',
    rule: { kind: 'queue', permission: 'ViewJobs' },
    ok: 200,
    request: (k) => ({ path: `/queue/${Q}/task/${task(k)}/results` }),
  },
  {
    method: 'GET',
    route: '/queue/:q/task/:name/outputs',
    rule: { kind: 'queue', permission: 'ViewJobs' },
    ok: 200,
    request: (k) => ({ path: `/queue/${Q}/task/${task(k)}/outputs` }),
  },
  {
    method: 'POST',
    route: '/queue/:q/task/:name/outputs/ticket',
    rule: { kind: 'queue', permission: 'ViewJobs' },
    ok: 201,
    request: (k) => ({ path: `/queue/${Q}/task/${task(k)}/outputs/ticket` }),
  },
  {
    // Public, as the link is followed without credentials: an unknown ticket is 404 for everyone.
    method: 'GET',
    route: '/download/:ticket',
    rule: { kind: 'public' },
    ok: 404,
    request: () => ({ path: `/download/${'0'.repeat(43)}` }),
  },
  {
    method: 'POST',
    route: '/queue/:q/task/:name/resume',
    rule: { kind: 'queue', permission: 'ManageJobs' },
    ok: 200,
    request: (k) => ({ path: `/queue/${Q}/task/${task(k)}/resume` }),
  },
  {
    method: 'GET',
    route: '/jobs',
    rule: {
      kind: 'filtered',
      sees: (c) => holds(c, 'ViewJobs', Q),
      shows: (b) => jobsOf(b).some((j) => j.queue === Q),
    },
    ok: 200,
    request: () => ({ path: '/jobs?status=all' }),
  },
  {
    method: 'GET',
    route: '/job/:id',
    rule: { kind: 'queue', permission: 'ViewJobs' },
    ok: 200,
    request: async (k) => ({ path: `/job/${await k.ranJob()}` }),
  },
  {
    method: 'GET',
    route: '/job/:id/results',
    rule: { kind: 'queue', permission: 'ViewJobs' },
    ok: 200,
    request: async (k) => ({ path: `/job/${await k.ranJob()}/results` }),
  },
  {
    method: 'GET',
    route: '/job/:id/results/last',
    rule: { kind: 'queue', permission: 'ViewJobs' },
    ok: 200,
    request: async (k) => ({ path: `/job/${await k.ranJob()}/results/last` }),
  },
  {
    method: 'GET',
    route: '/job/:id/log',
    rule: { kind: 'queue', permission: 'ViewJobs' },
    ok: 200,
    request: async (k) => ({ path: `/job/${await k.ranJob()}/log` }),
  },
  {
    method: 'GET',
    route: '/job/:id/outputs',
    rule: { kind: 'queue', permission: 'ViewJobs' },
    ok: 200,
    request: async (k) => ({ path: `/job/${await k.ranJob()}/outputs` }),
  },
  {
    method: 'GET',
    route: '/job/:id/outputs/:name',
    rule: { kind: 'queue', permission: 'ViewJobs' },
    ok: 200,
    request: async (k) => {
      // The ran job publishes one file, as a job writing to outputs/ in its folder would.
      const id = await k.ranJob();
      const dir = k.t.daemon.locate(id)?.dir ?? '';
      mkdirSync(path.join(dir, 'outputs'), { recursive: true });
      writeFileSync(path.join(dir, 'outputs', 'frame.txt'), 'frame\n');
      return { path: `/job/${id}/outputs/${encodeURIComponent('outputs/frame.txt')}` };
    },
  },
  {
    method: 'POST',
    route: '/job/:id/outputs/:name/ticket',
    rule: { kind: 'queue', permission: 'ViewJobs' },
    ok: 201,
    request: async (k) => {
      const id = await k.ranJob();
      const dir = k.t.daemon.locate(id)?.dir ?? '';
      mkdirSync(path.join(dir, 'outputs'), { recursive: true });
      writeFileSync(path.join(dir, 'outputs', 'frame.txt'), 'frame\n');
      return { path: `/job/${id}/outputs/${encodeURIComponent('outputs/frame.txt')}/ticket` };
    },
  },
  {
    method: 'PUT',
    route: '/job/:id',
    rule: { kind: 'queue', permission: 'ManageJobs' },
    ok: 200,
    request: (k) => ({ path: `/job/${k.queuedJob()}`, body: { priority: 5 } }),
  },
  {
    method: 'PUT',
    route: '/job/:id',
    note: 'priority more',
    rule: { kind: 'queue', permission: 'ManageJobs' },
    ok: 200,
    request: (k) => ({ path: `/job/${k.queuedJob()}`, body: { priority: 'more' } }),
  },
  {
    // batchd's field update: start time and host (here "*": none of its own).
    method: 'PUT',
    route: '/job/:id',
    note: 'start_time, host_name',
    rule: { kind: 'queue', permission: 'ManageJobs' },
    ok: 200,
    request: (k) => ({
      path: `/job/${k.queuedJob()}`,
      body: { start_time: '2030-01-01T00:00:00Z', host_name: '*' },
    }),
  },
  {
    // batchd did not check the target queue; here moving needs ManageJobs on both queues.
    method: 'PUT',
    route: '/job/:id',
    rule: { kind: 'queue', permission: 'ManageJobs', queues: [Q, OTHER] },
    ok: 200,
    request: (k) => ({ path: `/job/${k.queuedJob()}`, body: { move: OTHER } }),
  },
  // batchd's DELETE /job needed unrestricted ManageJobs; here ManageJobs for the job's queue.
  {
    method: 'DELETE',
    route: '/job/:id',
    rule: { kind: 'queue', permission: 'ManageJobs' },
    ok: 200,
    request: (k) => ({ path: `/job/${k.queuedJob()}` }),
  },
  {
    method: 'POST',
    route: '/job/:id/cancel',
    rule: { kind: 'queue', permission: 'ManageJobs' },
    ok: 200,
    request: (k) => ({ path: `/job/${k.queuedJob()}/cancel` }),
  },
  {
    method: 'POST',
    route: '/job/:id/pause',
    rule: { kind: 'queue', permission: 'ManageJobs' },
    ok: 409,
    note: '(a queued job: refused after the check)',
    request: (k) => ({ path: `/job/${k.queuedJob()}/pause` }),
  },
  {
    method: 'POST',
    route: '/job/:id/resume',
    rule: { kind: 'queue', permission: 'ManageJobs' },
    ok: 409,
    note: '(a queued job: refused after the check)',
    request: (k) => ({ path: `/job/${k.queuedJob()}/resume` }),
  },
  {
    method: 'POST',
    route: '/job/:id/retry',
    rule: { kind: 'queue', permission: 'ManageJobs' },
    ok: 200,
    request: async (k) => ({ path: `/job/${await k.cancelledJob()}/retry` }),
  },
  {
    method: 'POST',
    route: '/job/:id/delete',
    rule: { kind: 'queue', permission: 'ManageJobs' },
    ok: 200,
    request: async (k) => ({ path: `/job/${await k.cancelledJob()}/delete` }),
  },
  {
    method: 'GET',
    route: '/schedule',
    rule: { kind: 'unrestricted', permission: 'ViewSchedules' },
    ok: 200,
    request: () => ({ path: '/schedule' }),
  },
  {
    method: 'GET',
    route: '/schedule/:name',
    rule: { kind: 'unrestricted', permission: 'ViewSchedules' },
    ok: 200,
    request: () => ({ path: '/schedule/anytime' }),
  },
  {
    method: 'POST',
    route: '/schedule',
    rule: { kind: 'unrestricted', permission: 'ManageSchedules' },
    ok: 201,
    request: () => ({ path: '/schedule', body: { name: `made-${++seq}`, weekdays: ['Monday'] } }),
  },
  {
    method: 'DELETE',
    route: '/schedule/:name',
    rule: { kind: 'unrestricted', permission: 'ManageSchedules' },
    ok: 200,
    request: (k) => {
      const file = path.join(k.t.env.etc, 'schedules', 'doomed.yaml');
      if (!existsSync(file)) {
        writeFileSync(file, 'weekdays: [Sunday]\n');
        k.t.daemon.config.reloadFile(file);
      }
      return { path: '/schedule/doomed' };
    },
  },
  { method: 'GET', route: '/user', rule: { kind: 'superuser' }, ok: 200, request: () => ({ path: '/user' }) },
  {
    method: 'POST',
    route: '/user',
    rule: { kind: 'superuser' },
    ok: 201,
    request: () => ({ path: '/user', body: { name: `made-${++seq}`, password: PASSWORD } }),
  },
  {
    method: 'PUT',
    route: '/user/:n',
    rule: { kind: 'superuser' },
    ok: 200,
    request: async (k) => ({ path: `/user/${await victim(k)}`, body: { password: PASSWORD } }),
  },
  {
    method: 'DELETE',
    route: '/user/:n',
    rule: { kind: 'superuser' },
    ok: 200,
    request: async (k) => ({ path: `/user/${await victim(k)}` }),
  },
  {
    method: 'GET',
    route: '/user/:n/permissions',
    rule: { kind: 'superuser' },
    ok: 200,
    request: async (k) => ({ path: `/user/${await victim(k)}/permissions` }),
  },
  {
    method: 'POST',
    route: '/user/:n/permissions',
    rule: { kind: 'superuser' },
    ok: 201,
    request: async (k) => ({
      path: `/user/${await victim(k)}/permissions`,
      body: { permission: 'ViewJobs', queue_name: Q },
    }),
  },
  {
    method: 'DELETE',
    route: '/user/:n/permissions/:id',
    rule: { kind: 'superuser' },
    ok: 200,
    request: async (k) => {
      const name = await victim(k);
      const grant = await k.t.api.ctx.users.addGrant(name, { permission: 'ViewQueues' });
      return { path: `/user/${name}/permissions/${grant.id}` };
    },
  },
  {
    method: 'POST',
    route: '/token',
    rule: { kind: 'any' },
    ok: 201,
    request: () => ({ path: '/token', body: { ttl: 60 } }),
  },
  { method: 'GET', route: '/token', rule: { kind: 'any' }, ok: 200, request: () => ({ path: '/token' }) },
  {
    method: 'DELETE',
    route: '/token/:id',
    rule: { kind: 'any' }, // one's own token; someone else's is in the attack tests
    ok: 200,
    request: async (k, caller) => ({
      path: `/token/${(await k.t.api.ctx.users.createToken(caller.name, 60_000, 'matrix')).info.id}`,
    }),
  },
];

function deleteAlpha(k: Kit): void {
  if (!k.t.daemon.queues.has(Q)) return;
  rmSync(path.join(k.t.env.spool, Q), { recursive: true, force: true });
  k.t.daemon.forgetQueue(Q);
}

function ensureAlpha(k: Kit): void {
  if (!k.t.daemon.queues.has(Q)) createQueue(k.t.api.ctx, { name: Q, enabled: false });
}

let taskName: string | undefined;
function task(k: Kit): string {
  if (taskName !== undefined && existsSync(path.join(k.t.env.spool, Q, 'tasks', taskName))) return taskName;
  taskName = k.t.daemon.submit(Q, {
    data: { type: 'echo', task: 'matrixtask', params: { message: ['x', 'y'] } },
  })[0]?.spec.task?.name;
  return taskName ?? '';
}

async function victim(k: Kit): Promise<string> {
  if (!k.t.api.ctx.users.has('victim')) await k.t.api.ctx.users.addUser('victim', PASSWORD);
  return 'victim';
}

describe('permission matrix', () => {
  let t: InProcessApi;
  let kit: Kit;

  beforeAll(async () => {
    t = await startApi({
      auth: { basic: true, token: true },
      queues: { [Q]: { enabled: false }, [OTHER]: { enabled: false } },
    });
    await writeUsersFile(
      t.env.etc,
      CALLERS.map((c) => ({ name: c.name, grants: c.grant === undefined ? [] : [c.grant] })),
      PASSWORD,
    );
    t.daemon.queues.override(Q, { enabled: false }); // alpha's jobs stay queued unless a test runs one
    let ran: string | undefined;
    kit = {
      t,
      ranJob: async () => {
        if (ran !== undefined && t.daemon.locate(ran) !== undefined) return ran;
        t.daemon.queues.override(Q, { enabled: true });
        ran =
          t.daemon.submit(Q, { data: { command: 'echo ran; exit 1', priority: 1_000_000 } })[0]?.spec.id ??
          '';
        await waitForState(t.env, ran, 'failed');
        t.daemon.queues.override(Q, { enabled: false });
        return ran;
      },
      queuedJob: () => t.daemon.submit(Q, { data: { command: 'true' } })[0]?.spec.id ?? '',
      cancelledJob: async () => {
        const id = kit.queuedJob();
        await t.daemon.dispatcher.cancel(id);
        return id;
      },
    };
  }, 120_000);
  afterAll(async () => t.close());

  it('covers every route of the app', () => {
    const covered = new Set(ENDPOINTS.map((e) => `${e.method} ${e.route}`));
    const routes = t.api.routes.map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(routes.filter((r) => !covered.has(r))).toEqual([]);
  });

  for (const endpoint of ENDPOINTS) {
    const label = `${endpoint.method} ${endpoint.route}${endpoint.note === undefined ? '' : ` ${endpoint.note}`}${endpoint.rule.kind === 'queue' && endpoint.rule.queues !== undefined ? ` (${endpoint.rule.queues.join(' + ')})` : ''}`;
    describe(label, () => {
      it(`without credentials: ${endpoint.rule.kind === 'public' ? 'allowed' : '401'}`, async () => {
        try {
          const request = await endpoint.request(kit, CALLERS[0] as Caller);
          const res = await t.request(endpoint.method, request.path, { body: request.body });
          await res.body?.cancel();
          expect(res.status).toBe(endpoint.rule.kind === 'public' ? endpoint.ok : 401);
        } finally {
          await endpoint.after?.(kit);
        }
      });
      for (const caller of CALLERS) {
        const expected = allowed(endpoint.rule, caller);
        const denied = deniedStatus(endpoint, caller);
        it(`${caller.name}: ${expected ? 'allowed' : `denied (${denied})`}`, async () => {
          try {
            const auth: Auth = { basic: [caller.name, PASSWORD] };
            const request = await endpoint.request(kit, caller);
            const res = await t.request(endpoint.method, request.path, { auth, body: request.body });
            const body: unknown =
              res.headers.get('content-type')?.includes('json') === true
                ? await res.json()
                : await res.body?.cancel();
            expect(res.status, JSON.stringify(body)).toBe(expected ? endpoint.ok : denied);
            if (endpoint.rule.kind === 'filtered')
              expect(endpoint.rule.shows(body), JSON.stringify(body)).toBe(endpoint.rule.sees(caller));
          } finally {
            await endpoint.after?.(kit);
          }
        });
      }
    });
  }
});
