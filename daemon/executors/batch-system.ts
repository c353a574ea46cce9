import { setMaxListeners } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

import { coerceError } from '../errors.ts';
import type { BatchPoller } from '../hosts/batch-system-poller.ts';
import type {
  BatchRecord,
  BatchScript,
  BatchStatus,
  BatchSystem,
  OwnedBatchJob,
} from '../hosts/batch-system.ts';
import type { Logger } from '../log.ts';
import { attemptEnd, type End } from './attempt-end.ts';
import { collectFiles, planRemote, type RemoteAttempt, sendFiles } from './batch-system-staging.ts';
import {
  BATCH_EXIT_FILE,
  readBatchRecord,
  resourcesOf,
  scriptOf,
  writeBatchRecord,
} from './batch-system-script.ts';
import { readJobState } from '../spool/state-file.ts';
import { StopControl } from './stops.ts';
import type { Executor, RunOutcome, RunRequest } from '../jobs/executor.ts';

/** After a cancel, how long to wait for the batch system to confirm the end before giving up. */
const CANCEL_CONFIRM_MS = 30_000;
/**
 * Jobs started within this long of the one before are submitted as one array. The dispatcher
 * starts all of a queue's jobs that may start in one pass, but each reaches its run after its own
 * claim (a lock, a rename, a record), so under load they arrive over a second or two, and a timer
 * blocked behind a spawn fires late: the gap allowed is generous.
 */
const ARRAY_WINDOW_MS = 100;
/** An array waits for more jobs this long after its first at most. */
const ARRAY_WAIT_MAX_MS = 2_000;
/**
 * Elements of one array at most. Slurm sends the whole script with every element it starts, and
 * the script holds the words that differ between elements (plugins/slurm/array-script.ts): each
 * element's shell reads them all, about 10 ms of CPU time here at 1,000 elements (43 KB), so a
 * task of 1,000 would pay 10 s of it. At 250 it is a quarter of that, for three more `sbatch`.
 */
export const MAX_ARRAY_JOBS = 250;
/** After a submission without an answer, how often to ask whether it arrived, and how far apart. */
const OWNED_CHECKS = 3;
const OWNED_CHECK_PAUSE_MS = 1_000;
/** A submission that failed because the controller is out of reach, not because of the job. */
const UNREACHABLE = /timed out|could not run|unable to contact|connection refused|socket timed out/i;
/** How long the copies of one attempt's files to or from the cluster may take (`staging: copy`). */
const TRANSFER_TIMEOUT_MS = 600_000;
/** Slurm states that mean the machine failed the job, not the job itself: an interruption. */
const INTERRUPTED = new Set(['NODE_FAIL', 'BOOT_FAIL', 'PREEMPTED']);

/** What a host whose controller is a batch system needs from the daemon. */
export interface BatchHostDeps {
  host: string;
  controller: string;
  system: () => BatchSystem | undefined;
  poller: () => BatchPoller | undefined;
  /** The batch system took a job: the host is up (the dispatcher admits up to max_jobs). */
  ready: () => void;
  /** Submitting failed: the host backs off like an unreachable one. */
  failed: (reason: string) => void;
  /** One `owned` call shared by the adoptions of a few seconds (recovery after a crash). */
  owned: (signal: AbortSignal) => Promise<OwnedBatchJob[]>;
  /** Runs a submission when one of the controller's few submission slots is free. */
  submitting: <T>(submit: () => Promise<T>) => Promise<T>;
  /** Runs a copy of job files to or from the cluster when one of its few copy slots is free. */
  transferring: <T>(transfer: () => Promise<T>) => Promise<T>;
  /** The queue's `parallel`: an array's `%` limit. */
  parallel: (queue: string) => number | undefined;
  /** Whether job records are fsynced (`storage.fsync`): those written before a submission are too. */
  durable: () => boolean;
  log: Logger;
}

/**
 * Runs a host's jobs through a cluster scheduler (Slurm): the job type's template, planned as for
 * a local job, becomes the batch script; its id goes into `state.yaml` at once; the controller's
 * poller follows it with one status call for all jobs; cancel and timeout are the scheduler's
 * cancel. A job `running.batch` already names (recovery adopted it) is followed, not submitted.
 */
export class BatchSystemExecutor implements Executor {
  readonly name: string;
  readonly #d: BatchHostDeps;
  /** Ends the waits of running jobs when the daemon stops (their batch jobs were cancelled). */
  readonly #closing = new AbortController();
  /** Task jobs waiting (ARRAY_WINDOW_MS) to go out together, by task, queue, folder and resources. */
  readonly #arrays = new Map<string, ArrayGroup>();

  constructor(deps: BatchHostDeps) {
    this.name = `batch:${deps.host}`;
    this.#d = deps;
    // Every running job's wait listens to it: a task runs hundreds at once.
    setMaxListeners(0, this.#closing.signal);
  }

  async run(request: RunRequest, signal: AbortSignal): Promise<RunOutcome> {
    const { end, stopped } = attemptEnd(signal);
    const system = this.#d.system();
    const poller = this.#d.poller();
    if (system === undefined || poller === undefined)
      return end(
        'error',
        `host ${this.#d.host}: controller "${this.#d.controller}" has no batch-system plugin loaded`,
      );
    let record: BatchRecord;
    // With `staging: copy`, the attempt's folder on the cluster, and its files' way back.
    let remote: RemoteAttempt | undefined;
    let problems: string[] = [];
    const collect = async (): Promise<void> => {
      if (remote !== undefined) problems = await this.#collect(system, remote, request);
    };
    try {
      if (system.files !== undefined)
        remote = planRemote(request, system.files(this.#closing.signal).workDirectory);
      const found = await this.#adopted(request, signal, collect);
      if (found === 'collect')
        return this.#withProblems(
          this.#fromExitFile(request, end, { controller: this.#d.controller }),
          problems,
          request,
        );
      // A folder looked into for an exit file that was not there: nothing to report.
      if (found === undefined) problems = [];
      record = found ?? (await this.#submitFresh(system, request, remote));
    } catch (error) {
      if (signal.aborted) return stopped();
      const message = `host ${this.#d.host}: ${coerceError(error).message}`;
      // The controller out of reach holds every job back; a job Slurm refuses fails alone.
      if (UNREACHABLE.test(message)) this.#d.failed(message);
      return end('spawn-failed', message);
    }
    this.#d.ready();
    const outcome = await this.#follow(poller, record, request, signal, end, stopped, collect);
    return this.#withProblems(outcome, problems, request);
  }

  close(): Promise<void> {
    this.#closing.abort('shutdown');
    return Promise.resolve();
  }

  /**
   * Jobs started together go out as one array (`--array=0-N%parallel`), one sbatch for all of
   * them: a task's jobs, or job files of one queue dropped together, alike in their cluster
   * settings, folder and shape. A job alone goes as a job of its own.
   */
  #submitFresh(system: BatchSystem, request: RunRequest, remote?: RemoteAttempt): Promise<BatchRecord> {
    const script = submittedScript(request, remote);
    if (system.submitArray === undefined) return this.#submit(system, request, remote, script);
    // Jobs that run in their own folders (the default) still fit one array: each element enters its own.
    const cwd = request.cwd === request.dir ? '' : request.cwd;
    const key = JSON.stringify([
      request.env.BATCHD_TASK ?? '',
      request.queue,
      cwd,
      resourcesOf(request),
      shapeOf(script),
    ]);
    return new Promise((resolve, reject) => {
      let group = this.#arrays.get(key);
      if (group === undefined) {
        const created: ArrayGroup = {
          members: [],
          until: Date.now() + ARRAY_WAIT_MAX_MS,
          timer: undefined,
          immediate: undefined,
          send: () => {
            disarm(created);
            if (this.#arrays.get(key) === created) this.#arrays.delete(key);
            void this.#submitArray(system, created.members);
          },
        };
        this.#arrays.set(key, (group = created));
      }
      const joined = group;
      joined.members.push({ request, remote, script, resolve, reject });
      disarm(joined);
      // Full: it goes now, and the next job starts another array.
      if (joined.members.length >= MAX_ARRAY_JOBS) return joined.send();
      // Each job that joins gives the next ARRAY_WINDOW_MS to come, up to ARRAY_WAIT_MAX_MS. When
      // the timer fires, jobs whose claims ended while it waited for its turn still join first.
      const wait = Math.min(ARRAY_WINDOW_MS, Math.max(0, joined.until - Date.now()));
      joined.timer = setTimeout(() => (joined.immediate = setImmediate(joined.send)), wait);
    });
  }

  async #submitArray(system: BatchSystem, members: ArrayMember[]): Promise<void> {
    const first = members[0];
    if (first === undefined) return;
    try {
      if (members.length === 1 || system.submitArray === undefined) {
        first.resolve(await this.#submit(system, first.request, first.remote, first.script));
        return;
      }
      const remotes = members.flatMap(({ remote }) => (remote === undefined ? [] : [remote]));
      await this.#send(system, remotes);
      // Recorded before sbatch: after a crash in between, recovery finds each element by the
      // array's key (in its comment) and the job's index instead of submitting it again. A crash of
      // the daemon leaves the records in the page cache; past a power loss they are kept only
      // where the spool is fsynced anyway (an fsync each, 1,000 in a row, held the daemon for
      // seconds).
      const key = first.request.jobId;
      const durable = this.#d.durable();
      members.forEach(({ request }, index) => {
        rmSync(path.join(request.dir, BATCH_EXIT_FILE), { force: true });
        writeBatchRecord(request.dir, { controller: this.#d.controller, array: { key, index } }, durable);
      });
      const parallel = this.#d.parallel(first.request.queue);
      const arrayId = await this.#d
        .submitting(() =>
          (system.submitArray as NonNullable<BatchSystem['submitArray']>)(
            {
              taskId: key,
              jobs: members.map(({ script }) => script),
              ...(parallel === undefined ? {} : { parallel }),
              resources: resourcesOf(first.request),
            },
            this.#closing.signal,
          ),
        )
        .catch(async (error: unknown) => {
          const found = await this.#submittedAnyway(
            system,
            error,
            first.request.dir,
            (o) => o.taskId === key,
          );
          if (found === undefined) {
            this.#discard(system, remotes);
            throw error;
          }
          return found.split('_')[0] ?? found;
        });
      const submittedAt = new Date().toISOString();
      members.forEach(({ request, resolve }, index) => {
        const record: BatchRecord = {
          controller: this.#d.controller,
          id: `${arrayId}_${index}`,
          array: { key, index },
          submitted_at: submittedAt,
        };
        // Not fsynced: without it, recovery finds the element by the array's key and its index.
        writeBatchRecord(request.dir, record, false);
        resolve(record);
      });
      this.#d.log.debug(
        { host: this.#d.host, batchId: arrayId, jobs: members.length },
        'jobs submitted as one array',
      );
    } catch (error) {
      for (const member of members) member.reject(error);
    }
  }

  /** Submit a fresh attempt and record its id before anything else happens. */
  async #submit(
    system: BatchSystem,
    request: RunRequest,
    remote: RemoteAttempt | undefined,
    script: BatchScript,
  ): Promise<BatchRecord> {
    // An exit file of an earlier attempt would read as this one's end after a crash.
    rmSync(path.join(request.dir, BATCH_EXIT_FILE), { force: true });
    if (remote !== undefined) await this.#send(system, [remote]);
    // Not the run's signal: once sbatch took the job, its id must be known to cancel it.
    const id = await this.#d
      .submitting(() =>
        system.submit(
          { ...script, jobId: request.jobId, resources: resourcesOf(request) },
          this.#closing.signal,
        ),
      )
      .catch(async (error: unknown) => {
        const found = await this.#submittedAnyway(
          system,
          error,
          request.dir,
          (o) => o.jobId === request.jobId,
        );
        if (found === undefined) {
          if (remote !== undefined) this.#discard(system, [remote]);
          throw error;
        }
        return found;
      });
    const record: BatchRecord = {
      controller: this.#d.controller,
      id,
      submitted_at: new Date().toISOString(),
    };
    // Not fsynced: without it, recovery finds the job by its name and comment, or its exit file.
    writeBatchRecord(request.dir, record, false);
    this.#d.log.debug({ jobId: request.jobId, host: this.#d.host, batchId: id }, 'job submitted');
    return record;
  }

  /**
   * A submission that got no answer (sbatch timed out, the login node's connection broke) may
   * have reached the batch system all the same: the id of a job carrying this submission's tag
   * that no earlier attempt of the job recorded, else undefined (it did not, or nobody could tell:
   * the attempt fails as before). Submitting again instead would run the job twice.
   */
  async #submittedAnyway(
    system: BatchSystem,
    error: unknown,
    dir: string,
    tagged: (job: OwnedBatchJob) => boolean,
  ): Promise<string | undefined> {
    if (!UNREACHABLE.test(coerceError(error).message)) return undefined;
    const earlier = new Set(readJobState(dir, { locked: true }).results.map((r) => r.batch?.id));
    for (let attempt = 1; attempt <= OWNED_CHECKS; attempt++) {
      try {
        const found = (await system.owned(this.#closing.signal)).find((o) => tagged(o) && !earlier.has(o.id));
        if (found !== undefined)
          this.#d.log.warn(
            { host: this.#d.host, batchId: found.id, err: coerceError(error) },
            'a submission that got no answer had reached the batch system: following it, not submitting again',
          );
        return found?.id;
      } catch {
        if (this.#closing.signal.aborted || attempt === OWNED_CHECKS) return undefined;
        await new Promise((resolve) => setTimeout(resolve, OWNED_CHECK_PAUSE_MS));
      }
    }
    return undefined;
  }

  /**
   * A job recovery adopted: its record's id, else the job the batch system holds under its name
   * (submitted just before a crash, unrecorded), else its exit file (it ended and was forgotten
   * meanwhile: `collect`). Undefined: a fresh attempt, or one that never reached the batch system.
   */
  async #adopted(
    request: RunRequest,
    signal: AbortSignal,
    collect: () => Promise<void>,
  ): Promise<BatchRecord | 'collect' | undefined> {
    const record = readBatchRecord(request.dir);
    if (record === undefined) return undefined;
    if (record.id !== undefined) return record;
    const owned = await this.#d.owned(signal);
    const mine = owned.find((o) =>
      record.array === undefined
        ? o.jobId === request.jobId
        : o.taskId === record.array.key && o.id.split('_')[1] === String(record.array.index),
    );
    if (mine !== undefined) {
      const found = { ...record, id: mine.id };
      writeBatchRecord(request.dir, found);
      return found;
    }
    // With `staging: copy`, its exit file is on the cluster, if it ended.
    await collect();
    if (exitCodeIn(request.dir) !== undefined) return 'collect';
    return undefined;
  }

  async #follow(
    poller: BatchPoller,
    record: BatchRecord,
    request: RunRequest,
    signal: AbortSignal,
    end: End,
    stopped: () => RunOutcome,
    collect: () => Promise<void>,
  ): Promise<RunOutcome> {
    const id = record.id as string;
    // A shutdown leaves the job running in the cluster: the next start adopts it.
    const control = new StopControl(request, (sig) => {
      if (sig === 'SIGTERM' && control.stopping !== 'shutdown') poller.cancel(id);
    });
    let started = false;
    const followed = poller.follow(id, (status) => {
      // The timeout runs from the job's start in the cluster, not from its wait in the queue.
      if (status.phase === 'pending' || started) return;
      started = true;
      control.started();
    });
    control.watch(signal);
    let status: BatchStatus | undefined;
    const confirm = this.#confirmWait(signal);
    try {
      status = await Promise.race([followed.end, confirm.wait]);
    } finally {
      confirm.done();
      control.ended();
      followed.stop();
    }
    const batch = (s: BatchStatus | undefined): BatchRecord =>
      s !== undefined && 'state' in s ? { ...record, state: s.state, reason: s.reason } : record;
    const stopping = control.stopping;
    if (status === undefined && control.stopping === 'shutdown')
      return { ...stopped(), batch: batch(followed.last()), detached: true };
    // Ended or forgotten (not a cancel whose end never came): its files are complete.
    if (status !== undefined) await collect();
    if (status === undefined) return { ...stopped(), batch: batch(followed.last()) };
    if (stopping === 'timeout')
      return end('timeout', `timed out after ${Math.round((request.timeoutMs ?? 0) / 1000)} s`, {
        batch: batch(status),
      });
    if (status.phase === 'ended' && status.state === 'TIMEOUT')
      return end('timeout', "timed out: the cluster's time limit ended it", { batch: batch(status) });
    if (stopping !== undefined) return { ...stopped(), batch: batch(status) };
    if (status.phase !== 'ended') return this.#fromExitFile(request, end, record, followed.last());
    const extra = {
      exitCode: status.exitCode,
      signal: status.signal === null ? null : String(status.signal),
    };
    const why = `Slurm: ${status.state}${status.reason === '' || status.reason === 'None' ? '' : `, ${status.reason}`}`;
    if (status.state === 'COMPLETED' && status.exitCode === 0)
      return end('success', undefined, { ...extra, batch: batch(status) });
    if (INTERRUPTED.has(status.state))
      return end('interrupted', `the cluster lost the job (${why})`, { ...extra, batch: batch(status) });
    if (status.state === 'CANCELLED')
      return end('error', `cancelled in the cluster, not by batchd (${why})`, {
        ...extra,
        batch: batch(status),
      });
    const code = status.exitCode ?? exitCodeIn(request.dir);
    if (status.signal !== null && status.signal !== 0)
      return end('signal', `killed by signal ${status.signal} (${why})`, { ...extra, batch: batch(status) });
    return end('exit-code', `exit code ${code ?? '?'} (${why})`, {
      ...extra,
      exitCode: code,
      batch: batch(status),
    });
  }

  /**
   * Resolves undefined at a shutdown, once a cancelled job's end was not confirmed in time, or
   * when the daemon stops;
   * `done` removes its listeners when the end came first.
   */
  #confirmWait(signal: AbortSignal): { wait: Promise<undefined>; done: () => void } {
    let timer: NodeJS.Timeout | undefined;
    let give: () => void = () => undefined;
    const wait = new Promise<undefined>((resolve) => (give = () => resolve(undefined)));
    const stop = (): void => {
      // A shutdown waits for nothing: the job goes on in the cluster, and the next start adopts it.
      if (signal.reason === 'shutdown') return give();
      timer = setTimeout(give, CANCEL_CONFIRM_MS);
      timer.unref();
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
    this.#closing.signal.addEventListener('abort', give, { once: true });
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
      this.#closing.signal.removeEventListener('abort', give);
    };
    return { wait, done };
  }

  /** Makes the attempts' folders on the cluster and uploads their inputs (`staging: copy`). */
  async #send(system: BatchSystem, attempts: readonly RemoteAttempt[]): Promise<void> {
    if (system.files === undefined || attempts.length === 0) return;
    const signal = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(TRANSFER_TIMEOUT_MS)]);
    const files = system.files(signal);
    await this.#d.transferring(() => sendFiles(files, attempts, this.#d.host, signal));
  }

  /** Brings an ended attempt's files back from the cluster; what could not be fetched. */
  #collect(system: BatchSystem, attempt: RemoteAttempt, request: RunRequest): Promise<string[]> {
    if (system.files === undefined) return Promise.resolve([]);
    const signal = AbortSignal.any([this.#closing.signal, AbortSignal.timeout(TRANSFER_TIMEOUT_MS)]);
    const files = system.files(signal);
    return this.#d.transferring(() =>
      collectFiles(files, attempt, request.dir, this.#d.host, (message) =>
        this.#d.log.warn({ jobId: request.jobId, host: this.#d.host }, message),
      ),
    );
  }

  /** Removes the folders of attempts that never reached the batch system; best effort. */
  #discard(system: BatchSystem, attempts: readonly RemoteAttempt[]): void {
    if (system.files === undefined || attempts.length === 0) return;
    const files = system.files(AbortSignal.timeout(TRANSFER_TIMEOUT_MS));
    void this.#d
      .transferring(() => files.remove(attempts.map((a) => a.dir)))
      .catch((error: unknown) =>
        this.#d.log.warn(
          { host: this.#d.host, err: coerceError(error) },
          'removing the job folders of a failed submission on the cluster failed',
        ),
      );
  }

  /** Files that did not come back fail a job that succeeded; a failed job keeps its own error. */
  #withProblems(outcome: RunOutcome, problems: readonly string[], request: RunRequest): RunOutcome {
    if (problems.length === 0) return outcome;
    if (outcome.outcome === 'success') return { ...outcome, outcome: 'error', error: problems.join('; ') };
    this.#d.log.warn(
      { jobId: request.jobId, host: this.#d.host, problems },
      'files of a failed cluster job were not all fetched',
    );
    return outcome;
  }

  /** The batch system forgot the job: its exit file says how it ended, if it ended. */
  #fromExitFile(request: RunRequest, end: End, record: BatchRecord, last?: BatchStatus): RunOutcome {
    const code = exitCodeIn(request.dir);
    if (code === 0) return end('success', undefined, { exitCode: 0, batch: record });
    if (code !== undefined) return end('exit-code', `exit code ${code}`, { exitCode: code, batch: record });
    const seen = last !== undefined && 'state' in last ? ` (last seen ${last.state})` : '';
    return end('error', `the cluster forgot the job before its end was seen${seen}`, { batch: record });
  }
}

interface ArrayGroup {
  members: ArrayMember[];
  /** When it goes out at the latest (ARRAY_WAIT_MAX_MS after its first job). */
  until: number;
  timer: NodeJS.Timeout | undefined;
  immediate: NodeJS.Immediate | undefined;
  /** Submits the group (once: it leaves the waiting groups first). */
  send: () => void;
}

interface ArrayMember {
  request: RunRequest;
  remote: RemoteAttempt | undefined;
  script: BatchScript;
  resolve: (record: BatchRecord) => void;
  reject: (error: unknown) => void;
}

function disarm(group: ArrayGroup): void {
  clearTimeout(group.timer);
  clearImmediate(group.immediate);
}

/** The attempt's script as the batch system gets it: the cluster's copy, or the job's own in its folder. */
function submittedScript(request: RunRequest, remote: RemoteAttempt | undefined): BatchScript {
  return remote?.script ?? { ...scriptOf(request), workdir: request.cwd };
}

function exitCodeIn(dir: string): number | undefined {
  try {
    const code = Number.parseInt(readFileSync(path.join(dir, BATCH_EXIT_FILE), 'utf8').trim(), 10);
    return Number.isNaN(code) ? undefined : code;
  } catch {
    return undefined;
  }
}

/**
 * What makes scripts run alike in one array script (a batch system writes the words that differ
 * once per element, plugins/slurm/array-script.ts): the same environment names, interpreter line
 * and command length. Jobs of one job type share it; jobs of other types go in arrays of their own.
 */
function shapeOf(script: BatchScript): string {
  const line = script.body.slice(0, Math.max(0, script.body.indexOf('\n')));
  return [Object.keys(script.env ?? {}).join(','), line, script.command?.length ?? -1].join('\0');
}
