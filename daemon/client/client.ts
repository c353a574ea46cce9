import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

import { z } from 'zod';

import { isFinished } from '../jobs/status.ts';
import { schemasOf } from '../protocol/on-demand.ts';
import type {
  AuthMethod,
  GrantCreate,
  JobInfo,
  jobSubmitSchema,
  JobUpdate,
  QueueCreate,
  QueueUpdate,
  ScheduleCreate,
  TaskResult,
  TaskStatus,
  TokenCreate,
} from '../protocol/index.ts';
import { apiPaths } from '../protocol/routes.ts';
import { ProtocolError } from './errors.ts';
import { type RequestOptions, Transport, type TransportOptions } from './transport.ts';

/** `?status=` takes a state, `all`, or batchd's names (New, Processing). */
export interface JobListQuery {
  status?: string;
  limit?: number;
  cursor?: string;
  /** Free text the server matches in ids, names, notes… (a server without it lists every job). */
  q?: string;
}

/**
 * A typed client of batchd's HTTP API. Requests and responses are the protocol's zod types, and
 * every response is validated, so a server of another version fails loudly, not subtly.
 */
export class BatchClient {
  readonly transport: Transport;

  constructor(options: TransportOptions) {
    this.transport = new Transport(options);
  }

  close(): void {
    this.transport.close();
  }

  /**
   * One request, its answer checked by `schema`: a schema, or (for one of the protocol's) its loader,
   * called once the answer is in, so that a process builds only the schemas of the answers it gets.
   */
  async #call<S extends z.ZodType>(
    schema: S | (() => Promise<S>),
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<z.output<S>> {
    const reply = await this.transport.request(method, path, options);
    const context = { method, url: this.transport.url(path).href };
    let data: unknown;
    try {
      data = reply.text.trim() === '' ? undefined : JSON.parse(reply.text);
    } catch {
      throw new ProtocolError(`${method} ${path} answered with something other than JSON`, context);
    }
    const parsed = (typeof schema === 'function' ? await schema() : schema).safeParse(data);
    if (!parsed.success) {
      const problems = parsed.error.issues
        .slice(0, 5)
        .map((i) => ({ field: i.path.join('.'), message: i.message }));
      throw new ProtocolError(`${method} ${path} answered in an unexpected shape`, context, problems);
    }
    return parsed.data;
  }

  // Authentication

  /** `OPTIONS /`: the methods the server accepts; empty when authentication is off. */
  authMethods(): Promise<AuthMethod[]> {
    return this.#call(async () => (await schemasOf.common()).authMethodsSchema, 'OPTIONS', apiPaths.root());
  }

  whoami() {
    return this.#call(async () => (await schemasOf.auth()).whoamiSchema, 'GET', apiPaths.whoami());
  }

  /** `GET /health`: running or stopping, and how many dispatchers share the spool. */
  health() {
    return this.#call(async () => (await schemasOf.health()).healthSchema, 'GET', apiPaths.health());
  }

  createToken(request: TokenCreate = {}) {
    return this.#call(async () => (await schemasOf.auth()).tokenCreatedSchema, 'POST', apiPaths.tokens(), {
      body: request,
    });
  }

  tokens() {
    return this.#call(
      async () => z.array((await schemasOf.auth()).tokenInfoSchema),
      'GET',
      apiPaths.tokens(),
    );
  }

  async deleteToken(id: string): Promise<void> {
    await this.#call(async () => (await schemasOf.common()).okSchema, 'DELETE', apiPaths.token(id));
  }

  // Queues

  stats(queue?: string) {
    return this.#call(async () => (await schemasOf.queues()).statsSchema, 'GET', apiPaths.stats(queue));
  }

  queues() {
    return this.#call(
      async () => z.array((await schemasOf.queues()).queueInfoSchema),
      'GET',
      apiPaths.queues(),
    );
  }

  queue(name: string) {
    return this.#call(async () => (await schemasOf.queues()).queueInfoSchema, 'GET', apiPaths.queue(name));
  }

  createQueue(request: QueueCreate) {
    return this.#call(async () => (await schemasOf.queues()).queueInfoSchema, 'POST', apiPaths.queues(), {
      body: request,
    });
  }

  updateQueue(name: string, change: QueueUpdate) {
    return this.#call(async () => (await schemasOf.queues()).queueInfoSchema, 'PUT', apiPaths.queue(name), {
      body: change,
    });
  }

  async deleteQueue(name: string, forced = false): Promise<void> {
    await this.#call(async () => (await schemasOf.common()).okSchema, 'DELETE', apiPaths.queue(name), {
      query: { forced: forced ? 'true' : undefined },
    });
  }

  queueTypes(queue: string) {
    return this.#call(
      async () => z.array((await schemasOf.config()).jobTypeInfoSchema),
      'GET',
      apiPaths.queueTypes(queue),
    );
  }

  queueHosts(queue: string) {
    return this.#call(z.array(z.string()), 'GET', apiPaths.queueHosts(queue));
  }

  /** The hosts the caller may submit jobs of `type` to in `queue`. */
  queueTypeHosts(queue: string, type: string) {
    return this.#call(z.array(z.string()), 'GET', apiPaths.queueTypeHosts(queue, type));
  }

  /** Disable a queue; with `freeze`, pause its running jobs too. */
  pauseQueue(name: string, freeze: boolean) {
    return this.#call(
      async () => (await schemasOf.queues()).queuePauseSchema,
      'POST',
      apiPaths.queuePause(name),
      {
        query: { running: freeze ? 'freeze' : undefined },
      },
    );
  }

  /** Enable a queue and thaw the running jobs its pause froze. */
  resumeQueue(name: string) {
    return this.#call(
      async () => (await schemasOf.queues()).queuePauseSchema,
      'POST',
      apiPaths.queueResume(name),
    );
  }

  /** batchd's `DELETE /queue/:q?status=S`: delete finished jobs, or cancel queued ones. */
  deleteQueueJobs(name: string, status: string) {
    return this.#call(
      async () => (await schemasOf.queues()).queuePurgeSchema,
      'DELETE',
      apiPaths.queue(name),
      { query: { status } },
    );
  }

  // Jobs

  /** Submit a job file (as data, or as its YAML/JSON text unchanged). */
  submit(queue: string, job: z.input<typeof jobSubmitSchema> | { text: string; format: 'yaml' | 'json' }) {
    const body: RequestOptions =
      'text' in job && typeof job.text === 'string'
        ? {
            rawBody: {
              text: job.text,
              contentType: job.format === 'json' ? 'application/json' : 'application/yaml',
            },
          }
        : { body: job };
    return this.#call(
      async () => (await schemasOf.submit()).submitResponseSchema,
      'POST',
      apiPaths.queue(queue),
      body,
    );
  }

  /** One page of a queue's jobs (or of all queues' jobs when `queue` is undefined). */
  jobPage(queue: string | undefined, query: JobListQuery = {}) {
    return this.#call(
      async () => (await schemasOf.jobs()).jobPageSchema,
      'GET',
      queue === undefined ? apiPaths.jobs() : apiPaths.queueJobs(queue),
      { query: { ...query } },
    );
  }

  /** Follow the pages until `max` jobs; `more` says whether any were left. */
  async jobs(
    queue: string | undefined,
    query: Omit<JobListQuery, 'cursor'>,
    max = Infinity,
  ): Promise<{ jobs: JobInfo[]; more: boolean }> {
    const jobs: JobInfo[] = [];
    let cursor: string | undefined;
    for (;;) {
      const limit = Math.min(1000, max - jobs.length + 1);
      const page = await this.jobPage(queue, {
        ...query,
        limit,
        ...(cursor === undefined ? {} : { cursor }),
      });
      jobs.push(...page.jobs);
      if (jobs.length > max) return { jobs: jobs.slice(0, max), more: true };
      if (page.next_cursor === null || page.jobs.length === 0) return { jobs, more: false };
      cursor = page.next_cursor;
    }
  }

  job(id: string, options: { history?: boolean } = {}) {
    return this.#call(async () => (await schemasOf.jobs()).jobInfoSchema, 'GET', apiPaths.job(id), {
      query: { history: options.history === true ? 'true' : undefined },
    });
  }

  jobResults(id: string) {
    return this.#call(
      async () => z.array((await schemasOf.jobs()).attemptResultSchema),
      'GET',
      apiPaths.jobResults(id),
    );
  }

  lastResult(id: string) {
    return this.#call(
      async () => (await schemasOf.jobs()).attemptResultSchema,
      'GET',
      apiPaths.jobLastResult(id),
    );
  }

  /** One change (priority, move, or fields: notes, not_before, host); returns the job as it is afterwards. */
  updateJob(id: string, change: JobUpdate) {
    return this.#call(async () => (await schemasOf.jobs()).jobInfoSchema, 'PUT', apiPaths.job(id), {
      body: change,
    });
  }

  /** batchd's DELETE: cancels a queued or running job; a finished one is a conflict (its history stays). */
  deleteJob(id: string) {
    return this.#call(async () => (await schemasOf.jobs()).controlResponseSchema, 'DELETE', apiPaths.job(id));
  }

  cancel(id: string) {
    return this.#call(
      async () => (await schemasOf.jobs()).controlResponseSchema,
      'POST',
      apiPaths.jobCancel(id),
    );
  }

  retry(id: string) {
    return this.#call(
      async () => (await schemasOf.jobs()).controlResponseSchema,
      'POST',
      apiPaths.jobRetry(id),
    );
  }

  /** Freeze a running job (it stays running; its timeout is held). */
  pause(id: string) {
    return this.#call(
      async () => (await schemasOf.jobs()).controlResponseSchema,
      'POST',
      apiPaths.jobPause(id),
    );
  }

  resume(id: string) {
    return this.#call(
      async () => (await schemasOf.jobs()).controlResponseSchema,
      'POST',
      apiPaths.jobResume(id),
    );
  }

  /** The whole log as it is now. */
  async log(id: string, stream: 'stdout' | 'stderr' = 'stdout'): Promise<string> {
    return (await this.transport.request('GET', apiPaths.jobLog(id), { query: { stream } })).text;
  }

  /** The log from its start, then what is appended, until the job ends or `signal` aborts. */
  followLog(id: string, stream: 'stdout' | 'stderr', signal?: AbortSignal): Promise<IncomingMessage> {
    return this.transport.stream('GET', apiPaths.jobLog(id), {
      query: { stream, follow: '1' },
      ...(signal === undefined ? {} : { signal }),
    });
  }

  /**
   * Poll until the job is done, failed or cancelled. The interval grows from 100 ms to `maxPollMs`,
   * so a short job is seen at once and a long one costs few requests.
   */
  async waitFor(
    id: string,
    options: { signal?: AbortSignal; maxPollMs?: number; onPoll?: (job: JobInfo) => void } = {},
  ): Promise<JobInfo> {
    let delay = 100;
    for (;;) {
      const job = await this.job(id);
      options.onPoll?.(job);
      if (isFinished(job.status)) return job;
      await sleep(delay, undefined, options.signal === undefined ? {} : { signal: options.signal });
      delay = Math.min(options.maxPollMs ?? 2000, Math.round(delay * 1.5));
    }
  }

  // Tasks

  tasks(queue: string) {
    return this.#call(
      async () => z.array((await schemasOf.tasks()).taskSummarySchema),
      'GET',
      apiPaths.tasks(queue),
    );
  }

  task(queue: string, name: string): Promise<TaskStatus> {
    return this.#call(
      async () => (await schemasOf.tasks()).taskStatusSchema,
      'GET',
      apiPaths.task(queue, name),
    );
  }

  taskResults(queue: string, name: string): Promise<TaskResult[]> {
    return this.#call(
      async () => (await schemasOf.tasks()).taskResultsSchema,
      'GET',
      apiPaths.taskResults(queue, name),
    );
  }

  resumeTask(queue: string, name: string) {
    return this.#call(
      async () => (await schemasOf.tasks()).taskResumeSchema,
      'POST',
      apiPaths.taskResume(queue, name),
    );
  }

  /** Wait until the task is resolved (nothing queued or running), then its results in order. */
  async collectTask(
    queue: string,
    name: string,
    options: { signal?: AbortSignal; maxPollMs?: number; onPoll?: (status: TaskStatus) => void } = {},
  ): Promise<TaskResult[]> {
    let delay = 100;
    for (;;) {
      const status = await this.task(queue, name);
      options.onPoll?.(status);
      if (status.resolved) break;
      await sleep(delay, undefined, options.signal === undefined ? {} : { signal: options.signal });
      delay = Math.min(options.maxPollMs ?? 2000, Math.round(delay * 1.5));
    }
    return this.taskResults(queue, name);
  }

  // Schedules, types, hosts

  schedules() {
    return this.#call(
      async () => z.array((await schemasOf.config()).scheduleInfoSchema),
      'GET',
      apiPaths.schedules(),
    );
  }

  schedule(name: string) {
    return this.#call(
      async () => (await schemasOf.config()).scheduleInfoSchema,
      'GET',
      apiPaths.schedule(name),
    );
  }

  createSchedule(request: ScheduleCreate) {
    return this.#call(
      async () => (await schemasOf.config()).scheduleInfoSchema,
      'POST',
      apiPaths.schedules(),
      { body: request },
    );
  }

  async deleteSchedule(name: string, forced = false): Promise<void> {
    await this.#call(async () => (await schemasOf.common()).okSchema, 'DELETE', apiPaths.schedule(name), {
      query: { forced: forced ? 'true' : undefined },
    });
  }

  types() {
    return this.#call(
      async () => z.array((await schemasOf.config()).jobTypeInfoSchema),
      'GET',
      apiPaths.types(),
    );
  }

  type(name: string) {
    return this.#call(async () => (await schemasOf.config()).jobTypeInfoSchema, 'GET', apiPaths.type(name));
  }

  hosts() {
    return this.#call(
      async () => z.array((await schemasOf.config()).hostInfoSchema),
      'GET',
      apiPaths.hosts(),
    );
  }

  // Users and permissions

  users() {
    return this.#call(async () => z.array((await schemasOf.auth()).userInfoSchema), 'GET', apiPaths.users());
  }

  createUser(name: string, password: string) {
    return this.#call(async () => (await schemasOf.auth()).userInfoSchema, 'POST', apiPaths.users(), {
      body: { name, password },
    });
  }

  async setPassword(name: string, password: string): Promise<void> {
    await this.#call(async () => (await schemasOf.common()).okSchema, 'PUT', apiPaths.user(name), {
      body: { password },
    });
  }

  permissions(user: string) {
    return this.#call(
      async () => z.array((await schemasOf.auth()).grantSchema),
      'GET',
      apiPaths.userPermissions(user),
    );
  }

  grant(user: string, grant: GrantCreate) {
    return this.#call(
      async () => (await schemasOf.auth()).grantCreatedSchema,
      'POST',
      apiPaths.userPermissions(user),
      { body: grant },
    );
  }

  async revoke(user: string, id: number): Promise<void> {
    await this.#call(
      async () => (await schemasOf.common()).okSchema,
      'DELETE',
      apiPaths.userPermission(user, id),
    );
  }
}
