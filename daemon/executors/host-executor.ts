import { coerceError } from '../errors.ts';
import type { HostLayer } from '../hosts/layer.ts';
import type { Logger } from '../log.ts';
import { attemptEnd, type End } from './attempt-end.ts';
import { PausableRuns } from './pausable.ts';
import type { Executor, RunOutcome, RunRequest } from '../jobs/executor.ts';

/** Why the shell wrapper cannot freeze a job apart from itself, for the refusal of a pause. */
const NO_SETSID =
  'has no setsid command, so the job cannot be stopped apart from the shell that watches it (install setsid, from util-linux or busybox, or perl for the launcher)';

/**
 * What the executors of one remote host share (SSH, a provider's shell): a session of the host
 * layer for each attempt, released at its end, the same wording for an attempt that never got a
 * session or was stopped from outside, and pause and resume of the jobs running there.
 */
export abstract class HostExecutor<Session extends { release(): void }> implements Executor {
  readonly name: string;
  protected readonly host: string;
  protected readonly hosts: HostLayer;
  protected readonly log: Logger;
  /** Running jobs, for pause and resume (how each is signalled is the subclass's). */
  protected readonly running: PausableRuns;
  /** The host's wrapper said it has no setsid: logged once. */
  #toldUnpausable = false;

  constructor(kind: string, hosts: HostLayer, host: string, log: Logger) {
    this.name = `${kind}:${host}`;
    this.host = host;
    this.hosts = hosts;
    this.log = log;
    this.running = new PausableRuns(host);
  }

  /** The shell wrapper's first line: whether STOP and CONT reach the job (setsid is there). */
  protected wrapperStarted(jobId: string, pausable: boolean): void {
    if (pausable) {
      this.running.able(jobId);
      return;
    }
    this.running.unable(jobId, NO_SETSID);
    if (this.#toldUnpausable) return;
    this.#toldUnpausable = true;
    this.log.warn({ host: this.host }, `host ${this.host} ${NO_SETSID}: its jobs cannot be paused`);
  }

  async run(request: RunRequest, signal: AbortSignal): Promise<RunOutcome> {
    const { end, stopped } = attemptEnd(signal);
    if (request.job === undefined)
      return end('error', 'internal: the run request carries no job type for a remote run');
    let session: Session;
    try {
      session = await this.openSession(signal);
    } catch (error) {
      return signal.aborted ? stopped() : end('error', coerceError(error).message);
    }
    try {
      return await this.runOn(session, request, signal, end, stopped);
    } catch (error) {
      return signal.aborted ? stopped() : this.failed(session, error, end);
    } finally {
      session.release();
    }
  }

  /** SIGSTOP to the job's process group (its timeout stops meanwhile); false if it is not running here. */
  pause(jobId: string): Promise<boolean> {
    return this.running.pause(jobId);
  }

  resume(jobId: string): Promise<boolean> {
    return this.running.resume(jobId);
  }

  async close(): Promise<void> {
    // The host layer owns the connections.
  }

  protected abstract openSession(signal: AbortSignal): Promise<Session>;

  /** One attempt on the host, with its session. */
  protected abstract runOn(
    session: Session,
    request: RunRequest,
    signal: AbortSignal,
    end: End,
    stopped: () => RunOutcome,
  ): Promise<RunOutcome>;

  /** The outcome of an attempt that threw (not stopped from outside). */
  protected abstract failed(session: Session, error: unknown, end: End): RunOutcome;
}
