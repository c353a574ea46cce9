import { coerceError } from '../errors.ts';
import type { JobSpec } from '../jobs/spec.ts';
import type { Logger } from '../log.ts';
import { type AcceptedJob, acceptJobs, type ArrivalClaim, type Origin } from './accept.ts';
import { DurableAcceptor } from './durable-accept.ts';
import type { AcceptJournal } from './journal.ts';
import type { SpoolLayout } from './layout.ts';
import type { Release } from './lock.ts';
import type { Transitions } from './transition.ts';

/** A single job claimed as it is accepted: the record its claim writes, and the lock it holds. */
export interface ClaimAtAcceptance {
  record: ArrivalClaim;
  release: Release;
}

export interface AcceptanceDeps {
  layout: SpoolLayout;
  transitions: Transitions;
  log: Logger;
  /** The job may start now: its claim (Dispatcher.claimOnArrival). Undefined: it goes through `queued/`. */
  claimOnArrival: (spec: JobSpec) => ClaimAtAcceptance | undefined;
  /**
   * Committed and announced jobs, for the dispatcher. `claimed`: the lock of the one job committed
   * straight into `running/`, to run it under.
   */
  handOn: (queue: string, jobs: AcceptedJob[], claimed: Release | undefined) => void;
}

export interface AcceptOptions {
  /** A drop in `incoming/` (taken into the job's folder), or an API submission's bytes. */
  origin: Origin;
  /** On disk before it is answered and announced (storage.fsync). */
  durable: boolean;
  /**
   * A single job that may start now is claimed as it is accepted and committed straight into
   * `running/`. Not a durable one: its answer waits for the disk, and its record is the
   * acceptance's (the journal records that one).
   */
  claim: boolean;
  /**
   * The caller can wait (it gets a promise): a durable acceptance joins the next group commit and
   * shares its fsyncs with the acceptances beside it (an API submission of one job is one journal
   * append). Without it, every step of a durable acceptance is fsynced in this turn.
   */
  wait: boolean;
}

/**
 * Acceptance: the one way a job enters the spool, whether a drop or an API submission, durable or
 * not, claimed at once or not. The steps are accept.ts's (stage, take, commit, finish); durable and
 * waiting, DurableAcceptor runs them for a batch at once. Every acceptance that commits is
 * announced (Transitions.accepted) and handed on here, once.
 */
export class Acceptance {
  readonly #d: AcceptanceDeps;
  readonly #grouped: DurableAcceptor;

  constructor(deps: AcceptanceDeps) {
    this.#d = deps;
    this.#grouped = new DurableAcceptor(deps.layout);
  }

  /** The accepted jobs (`[]`: another daemon took the drop first); throws (or rejects) when refused. */
  accept(queue: string, specs: JobSpec[], options: AcceptOptions & { wait: true }): Promise<AcceptedJob[]>;
  accept(queue: string, specs: JobSpec[], options: AcceptOptions & { wait: false }): AcceptedJob[];
  accept(queue: string, specs: JobSpec[], options: AcceptOptions): AcceptedJob[] | Promise<AcceptedJob[]> {
    return options.wait ? this.#waiting(queue, specs, options) : this.#now(queue, specs, options);
  }

  /** From now on, durable API submissions of single jobs go through this journal (AcceptJournal). */
  useJournal(journal: AcceptJournal): void {
    this.#grouped.useJournal(journal);
  }

  /** Put every journaled acceptance on disk (whatever removes job folders waits for it first). */
  settle(): Promise<void> {
    return this.#grouped.settle();
  }

  /** Refuse new durable acceptances and wait for those under way (an orderly stop). */
  close(): Promise<void> {
    return this.#grouped.close();
  }

  /** Every step in this turn: fsynced when durable; a single job that may start now is claimed. */
  #now(queue: string, specs: JobSpec[], options: AcceptOptions): AcceptedJob[] {
    const single = specs.length === 1 ? specs[0] : undefined;
    const claim =
      options.claim && !options.durable && single !== undefined ? this.#d.claimOnArrival(single) : undefined;
    let jobs: AcceptedJob[];
    try {
      jobs = acceptJobs(this.#d.layout, queue, specs, options.origin, options.durable, claim?.record);
    } catch (error) {
      void claim?.release().catch(() => undefined);
      throw error;
    }
    if (jobs.length === 0) void claim?.release().catch(() => undefined);
    this.#committed(queue, jobs, claim?.release);
    return jobs;
  }

  /**
   * For a caller that waits. Not durable, it is #now: an async function runs to its first await in
   * the caller's turn, so the job is committed (and started, if claimed) before this returns.
   */
  async #waiting(queue: string, specs: JobSpec[], options: AcceptOptions): Promise<AcceptedJob[]> {
    if (!options.durable) return this.#now(queue, specs, options);
    const jobs = await this.#grouped.accept(queue, specs, options.origin);
    this.#committed(queue, jobs, undefined);
    return jobs;
  }

  /**
   * Announce and hand on what was committed. It is in the spool whatever happens next, so a
   * failure to hand it on is logged, not thrown: the caller's jobs are accepted (a queued one is
   * found again by the next rescan).
   */
  #committed(queue: string, jobs: AcceptedJob[], claimed: Release | undefined): void {
    if (jobs.length === 0) return;
    this.#d.transitions.accepted(queue, jobs);
    try {
      this.#d.handOn(queue, jobs, claimed);
    } catch (error) {
      void claimed?.().catch(() => undefined);
      this.#d.log.error(
        { queue, jobId: jobs[0]?.spec.id, err: coerceError(error) },
        'jobs accepted, but not handed on to the dispatcher',
      );
    }
  }
}
