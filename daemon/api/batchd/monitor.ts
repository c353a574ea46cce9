import type { Hono } from 'hono';

import { can, type Principal } from '../../auth/permissions.ts';
import { BatchdError } from '../../errors.ts';
import { JOB_STATES } from '../../jobs/status.ts';
import type { Whoami } from '../../protocol/auth.ts';
import type { ApiContext, ApiEnv } from '../context.ts';
import type { Face, FaceCtx } from './face.ts';
import { MetricHistory, metricRecord } from './monitor-history.ts';
import { STATUS_OF_STATE } from './wire.ts';

/** batchd's MetricRecord (its EKG samples as stored in its database). */
export interface MetricRecord {
  name: string;
  time: string;
  daemon: 'Both';
  kind: 'c' | 'g' | 'l';
  value: number | null;
  text: string | null;
  mean: null;
  variance: null;
  count: null;
  sum: null;
  min: null;
  max: null;
}

/** batchd's default dump_timeout. */
const SAMPLE_EVERY_MS = 10_000;
/** Samples kept in memory for `/monitor/.../query` (an hour); older ones are read from the history files. */
const KEPT_SAMPLES = 360;

/**
 * batchd's metric names, sampled from what the daemon knows: job counts per queue and status
 * (`batchd.queue.<q>.jobs.<Status>`, `batchd.jobs.<Status>`), host states (`batchd.host.<h>.status`,
 * `batchd.hosts.active`), heap in use (`rts.gc.current_bytes_used`) and HTTP answers
 * (`batchd.wai.request_count`, `batchd.wai.response_status_<N>xx`).
 */
export class MetricSampler {
  readonly #ctx: ApiContext;
  readonly #samples: MetricRecord[][] = [];
  readonly #history: MetricHistory;
  readonly #timer: NodeJS.Timeout;
  #day = '';

  constructor(ctx: ApiContext) {
    this.#ctx = ctx;
    const { daemon } = ctx;
    this.#history = new MetricHistory(
      daemon.reads.root,
      daemon.config.daemon.storage.metric_records,
      daemon.log,
    );
    this.#timer = setInterval(() => {
      this.refresh().catch((error: unknown) => ctx.daemon.log.warn({ err: error }, 'metric sample failed'));
    }, SAMPLE_EVERY_MS);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  /** The records of now that need no waiting. */
  #sample(): MetricRecord[] {
    const time = new Date().toISOString();
    const out: MetricRecord[] = [];
    const gauge = (name: string, value: number): void => {
      out.push(metricRecord(name, time, 'g', value, null));
    };
    const { daemon, counts, hostStates } = this.#ctx;
    const total = new Map<string, number>();
    for (const queue of daemon.queues.names().sort()) {
      const c = counts.of(queue);
      const byStatus = new Map<string, number>();
      for (const state of JOB_STATES) {
        const status = STATUS_OF_STATE[state];
        byStatus.set(status, (byStatus.get(status) ?? 0) + c[state]);
      }
      for (const [status, n] of byStatus) {
        gauge(`batchd.queue.${queue}.jobs.${status}`, n);
        total.set(status, (total.get(status) ?? 0) + n);
      }
    }
    for (const [status, n] of total) gauge(`batchd.jobs.${status}`, n);
    let active = 0;
    for (const [host, state] of [...hostStates].sort()) {
      out.push(metricRecord(`batchd.host.${host}.status`, time, 'l', null, state));
      if (state === 'ready' || state === 'busy') active++;
    }
    gauge('batchd.hosts.active', active);
    gauge('rts.gc.current_bytes_used', process.memoryUsage().heapUsed);
    return out;
  }

  /** The records of now, with the HTTP counters (prom-client reads metrics asynchronously). */
  async sample(): Promise<MetricRecord[]> {
    const out = this.#sample();
    const time = out[0]?.time ?? new Date().toISOString();
    const metric = this.#ctx.metrics.registry.getSingleMetric('batchd_http_requests_total');
    if (metric === undefined) return out;
    const data = await metric.get();
    const byClass = new Map<string, number>();
    let all = 0;
    for (const v of data.values) {
      const status = String(v.labels.status ?? '');
      all += v.value;
      const key = `${status.slice(0, 1)}xx`;
      byClass.set(key, (byClass.get(key) ?? 0) + v.value);
    }
    out.push(metricRecord('batchd.wai.request_count', time, 'c', all, null));
    for (const [cls, n] of [...byClass].sort())
      out.push(metricRecord(`batchd.wai.response_status_${cls}`, time, 'c', n, null));
    return out;
  }

  /** Kept samples, oldest first, between two times: from memory when it reaches back far enough. */
  between(from: number, to: number): MetricRecord[] {
    const oldest = this.#samples[0]?.[0]?.time;
    if (this.#history.keeps && (oldest === undefined || Date.parse(oldest) > from))
      return this.#history.between(from, to);
    return this.#samples.flat().filter((r) => {
      const t = Date.parse(r.time);
      return t >= from && t <= to;
    });
  }

  #keep(records: MetricRecord[]): void {
    this.#samples.push(records);
    if (this.#samples.length > KEPT_SAMPLES) this.#samples.shift();
    const day = records[0]?.time.slice(0, 10) ?? '';
    if (day !== this.#day) {
      this.#day = day;
      this.#history.prune();
    }
    this.#history.append(records);
  }

  /** Take a sample now and keep it. */
  async refresh(): Promise<void> {
    this.#keep(await this.sample());
  }

  /** Kept samples up to date within half the sampling period (a query right after the start is not empty). */
  async fresh(): Promise<void> {
    const newest = this.#samples.at(-1)?.[0]?.time;
    if (newest === undefined || Date.now() - Date.parse(newest) > SAMPLE_EVERY_MS / 2) await this.refresh();
  }
}

/** EKG's JSON tree: names split on dots, leaves `{type, val}`. */
function toTree(records: readonly MetricRecord[]): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const r of records) {
    const parts = r.name.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      node = (next !== null && typeof next === 'object' ? next : (node[part] = {})) as Record<
        string,
        unknown
      >;
    }
    node[parts.at(-1) as string] = { type: r.kind, val: r.kind === 'l' ? r.text : r.value };
  }
  return root;
}

/** `?from=YYYY-MM-DDTHH:MM:SS[&to=]` (server local time, as batchd) or `?last=SECONDS`. */
function period(c: FaceCtx): { from: number; to: number } {
  const last = c.req.query('last');
  const now = Date.now();
  if (last !== undefined) {
    const seconds = Number(last);
    if (!Number.isFinite(seconds) || seconds < 0)
      throw new BatchdError('REQUEST_INVALID', `Expected ?last=SECONDS, got ${JSON.stringify(last)}`);
    return { from: now - seconds * 1000, to: now };
  }
  const parse = (name: string, fallback: number): number => {
    const raw = c.req.query(name);
    if (raw === undefined) return fallback;
    const t = Date.parse(raw);
    if (Number.isNaN(t))
      throw new BatchdError(
        'REQUEST_INVALID',
        `Expected ?${name}=YYYY-MM-DDTHH:MM:SS, got ${JSON.stringify(raw)}`,
      );
    return t;
  };
  const from = parse('from', Number.NaN);
  if (Number.isNaN(from))
    throw new BatchdError('REQUEST_INVALID', 'Give ?from=YYYY-MM-DDTHH:MM:SS or ?last=SECONDS');
  return { from, to: parse('to', now) };
}

/**
 * Which metrics a caller sees, by the rule of the native `/metrics`: a queue's series with
 * ViewQueues on that queue; sums over every queue and host states with ViewQueues on all queues;
 * the daemon's own (heap, HTTP answers) for any user.
 */
export function visibleTo(principal: Principal): (name: string) => boolean {
  if (can(principal, 'ViewQueues')) return () => true;
  return (name) => {
    const queue = QUEUE_METRIC.exec(name)?.[1];
    if (queue !== undefined) return can(principal, 'ViewQueues', { queue });
    return DAEMON_OWN.test(name);
  };
}

/** `batchd.queue.<q>.jobs.<Status>`: the queue and the status. */
const QUEUE_METRIC = /^batchd\.queue\.(.+)\.jobs\.([A-Za-z]+)$/;
const DAEMON_OWN = /^(rts\.|batchd\.wai\.)/;

/** `/monitor/*`: any authenticated user (the native `/whoami` authenticates the caller), each seeing what they may view. */
export function registerBatchdMonitor(app: Hono<ApiEnv>, face: Face, sampler: MetricSampler): void {
  const viewer = async (c: FaceCtx): Promise<(name: string) => boolean> => {
    const me = await face.native.call<Whoami>(c, 'GET', '/whoami');
    return visibleTo({ name: me.name, superuser: me.superuser, grants: me.grants, via: me.via });
  };
  const current = async (c: FaceCtx, prefix: string, view: string): Promise<Response> => {
    const sees = await viewer(c);
    const records = (await sampler.sample()).filter((r) => r.name.startsWith(prefix) && sees(r.name));
    if (view === 'plain') return c.json(records, 200);
    if (view === 'tree') return c.json(toTree(records), 200);
    throw new BatchdError('NOT_FOUND', `Not found: /monitor/.../current/${view}`);
  };

  app.get('/monitor/current/:view', (c) => current(c, '', c.req.param('view')));
  app.get('/monitor/:prefix/current/:view', (c) => current(c, c.req.param('prefix'), c.req.param('view')));

  app.get('/monitor/jobs', async (c) => {
    const sees = await viewer(c);
    await sampler.fresh();
    const { from, to } = period(c);
    const rows = sampler.between(from, to).flatMap((r) => {
      const m = QUEUE_METRIC.exec(r.name);
      return m === null || !sees(r.name) ? [] : [{ time: r.time, queue: m[1], status: m[2], jobs: r.value }];
    });
    return c.json(rows, 200);
  });

  app.get('/monitor/:name/last', async (c) => {
    const sees = await viewer(c);
    const name = c.req.param('name');
    const found = (await sampler.sample()).filter((r) => r.name === name && sees(r.name));
    if (found.length === 0) throw new BatchdError('NOT_FOUND', `Metric not found: ${name}`);
    return c.json(toTree(found), 200);
  });

  app.get('/monitor/:prefix/query', async (c) => {
    const sees = await viewer(c);
    await sampler.fresh();
    const { from, to } = period(c);
    const prefix = c.req.param('prefix');
    return c.json(
      sampler.between(from, to).filter((r) => r.name.startsWith(prefix) && sees(r.name)),
      200,
    );
  });
}
