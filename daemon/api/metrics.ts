import { Counter, Gauge, Histogram, Registry } from 'prom-client';

import { can, type Principal } from '../auth/permissions.ts';
import type { DaemonPort } from '../service/port.ts';
import { JOB_STATES } from '../jobs/status.ts';

/**
 * Prometheus metrics, one registry per daemon (several daemons may share a process in tests).
 * Job gauges are read from the spool when scraped; counters follow the event stream.
 */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly #http: Counter<'method' | 'route' | 'status'>;
  readonly #latency: Histogram<'method' | 'route'>;
  readonly streams: Gauge;
  readonly #unsubscribe: (() => void)[] = [];

  constructor(daemon: DaemonPort, counts: DaemonPort['reads']['counts']) {
    const registers = [this.registry];
    new Gauge({
      name: 'batchd_jobs',
      help: 'Jobs by queue and state (from the state folders)',
      labelNames: ['queue', 'state'],
      registers,
      collect() {
        this.reset();
        for (const queue of daemon.queues.names()) {
          const c = counts.of(queue);
          for (const state of JOB_STATES) this.set({ queue, state }, c[state]);
        }
      },
    });
    new Gauge({
      name: 'batchd_dispatcher_running',
      help: 'Jobs this daemon runs now',
      registers,
      collect() {
        this.set(daemon.control.runningCount);
      },
    });
    new Gauge({
      name: 'batchd_dispatcher_indexed',
      help: 'Queued jobs held in the dispatcher index',
      registers,
      collect() {
        this.set(daemon.control.queuedCount);
      },
    });
    new Gauge({
      name: 'batchd_process_resident_memory_bytes',
      help: 'Resident memory of the daemon process',
      registers,
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    new Gauge({
      name: 'batchd_job_containment',
      help: 'How local jobs are contained: 1 for the kind in use (cgroup-v2, cgroup-v1 or group)',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        this.set({ kind: daemon.containment.kind }, 1);
      },
    });
    const sorts = daemon.reads.sorts.facts;
    new Counter({
      name: 'batchd_job_sort_file_reads_total',
      help: 'Job files the job list sorts read because a value was not in memory: for a page (request) or ahead (background)',
      labelNames: ['for'],
      registers,
      collect() {
        this.reset();
        for (const [by, n] of Object.entries(sorts.reads)) this.inc({ for: by }, n);
      },
    });
    new Gauge({
      name: 'batchd_job_sort_known_jobs',
      help: 'Jobs whose values for every sort of the job list are in memory',
      registers,
      collect() {
        this.set(sorts.size);
      },
    });
    const transitions = new Counter({
      name: 'batchd_job_transitions_total',
      help: 'Job state changes',
      labelNames: ['queue', 'from', 'to'],
      registers,
    });
    const accepted = new Counter({
      name: 'batchd_jobs_accepted_total',
      help: 'Jobs accepted (drops and API)',
      labelNames: ['queue'],
      registers,
    });
    const rejected = new Counter({
      name: 'batchd_drops_rejected_total',
      help: 'Drops set aside as invalid',
      labelNames: ['queue'],
      registers,
    });
    this.#http = new Counter({
      name: 'batchd_http_requests_total',
      help: 'HTTP requests',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.#latency = new Histogram({
      name: 'batchd_http_request_duration_seconds',
      help: 'HTTP request latency per route (until the response starts)',
      labelNames: ['method', 'route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.streams = new Gauge({
      name: 'batchd_http_open_streams',
      help: 'Open event and log streams',
      registers,
    });
    this.#unsubscribe.push(
      daemon.events.on('job:transition', (e) =>
        transitions.inc({ queue: e.toQueue ?? e.queue, from: e.from, to: e.to }),
      ),
      daemon.events.on('job:accepted', (e) => accepted.inc({ queue: e.queue })),
      daemon.events.on('job:rejected', (e) => rejected.inc({ queue: e.queue })),
    );
  }

  /**
   * The recorder of one route, called by the route itself (route.ts) instead of by a middleware
   * around every request, so that a lone route takes Hono's fast path: the middleware cost about
   * 20 µs of a status read's 140 µs of JavaScript. Its label sets are built once.
   */
  route(method: string, route: string): (status: number, seconds: number) => void {
    const latency = this.#latency.labels(method, route);
    const byStatus = new Map<number, { inc(): void }>();
    return (status, seconds) => {
      let count = byStatus.get(status);
      if (count === undefined)
        byStatus.set(status, (count = this.#http.labels(method, route, String(status))));
      count.inc();
      latency.observe(seconds);
    };
  }

  /**
   * The metrics as `principal` may see them: a series of a queue only with ViewQueues on it, and
   * series summed over every queue (the dispatcher's counts) only with ViewQueues on all queues;
   * the daemon's own (HTTP, memory) for any user.
   */
  async textFor(principal: Principal): Promise<string> {
    const text = await this.registry.metrics();
    if (can(principal, 'ViewQueues')) return text;
    return text
      .split('\n')
      .filter((line) => {
        if (line.startsWith('#') || line === '') return true;
        const queue = QUEUE_LABEL.exec(line)?.[1];
        if (queue !== undefined) return can(principal, 'ViewQueues', { queue });
        return DAEMON_OWN.test(line);
      })
      .join('\n');
  }

  /** A request no route took (it has no time worth measuring: nothing ran). */
  unmatched(method: string, status: number): void {
    this.#http.inc({ method, route: 'unmatched', status: String(status) });
  }

  close(): void {
    for (const off of this.#unsubscribe.splice(0)) off();
  }
}

const QUEUE_LABEL = /[{,]queue="([^"]*)"/;
/** Series about the daemon itself, not about any queue's jobs. */
const DAEMON_OWN = /^batchd_(http_|process_)/;
