import { BatchdError } from '../errors.ts';
import type { JobSpec } from '../jobs/spec.ts';
import {
  abandonStaged,
  type AcceptedJob,
  commitStaged,
  finishStaged,
  type Origin,
  type Staged,
  stageJobs,
  takeOrigin,
} from './accept.ts';
import { diskError, fsyncAll } from './atomic.ts';
import { GroupCommit, type Settled } from './group-commit.ts';
import type { AcceptJournal, JournalRecord } from './journal.ts';
import type { SpoolLayout } from './layout.ts';

interface Pending {
  staged: Staged;
  origin: Origin;
}

export interface DurableAcceptorOptions {
  /** How long a lone acceptance waits for others to share its fsyncs (ms). */
  windowMs?: number;
  /** Acceptances per batch at most. */
  maxBatch?: number;
}

/**
 * Durable acceptance (storage.fsync) with group commit, for callers that can wait (acceptance.ts
 * chooses it). Each acceptance is staged at once, in the caller's turn; then a batch of them is
 * made durable together. API submissions of single jobs, when the daemon has an acceptance journal, are
 * one journal append for the batch and then their commits (spool/journal.ts). Everything else goes
 * through acceptJobs' steps, with the fsyncs of each step issued concurrently for the whole batch:
 *   1. fsync every staged file and folder; 2. take each drop, commit each acceptance (renames);
 *   3. fsync the folders those renames changed; 4. tasks: remove their staging folders.
 * A caller's promise resolves only after its batch's last step: then its job is on disk. A crash
 * at any point leaves what acceptJobs leaves: the drop in incoming/, or a committed acceptance.
 */
export class DurableAcceptor {
  readonly #layout: SpoolLayout;
  readonly #commits: GroupCommit<Pending, AcceptedJob[]>;
  #journal: AcceptJournal | undefined;
  #closed = false;

  constructor(layout: SpoolLayout, options: DurableAcceptorOptions = {}) {
    this.#layout = layout;
    this.#commits = new GroupCommit({ ...options, flush: (batch) => this.#flush(batch) });
  }

  /**
   * Accept jobs durably: resolves with them once they are on disk in `queued/` (`[]`: another
   * daemon took the drop). A drop leaves `incoming/` only once its job's files are on disk; the
   * caller must not offer it again before this settles.
   */
  async accept(queue: string, specs: JobSpec[], origin: Origin): Promise<AcceptedJob[]> {
    if (this.#closed) throw new BatchdError('INTERNAL', 'The daemon is stopping: no more acceptances');
    // Staged in the caller's turn: a task is its manifest alone, whatever its size.
    const staged = stageJobs(this.#layout, queue, specs, origin);
    if (staged === undefined) return [];
    if (this.#closed) {
      abandonStaged(staged, origin);
      throw new BatchdError('INTERNAL', 'The daemon is stopping: no more acceptances');
    }
    return this.#commits.add({ staged, origin });
  }

  /** From now on, API submissions of single jobs go through this journal (see AcceptJournal). */
  useJournal(journal: AcceptJournal): void {
    this.#journal = journal;
  }

  /** Put every journaled acceptance on disk (before job folders are removed). */
  async settle(): Promise<void> {
    await this.#journal?.settle();
  }

  /** Acceptances staged and not yet settled. */
  get pending(): number {
    return this.#commits.pending;
  }

  /** Batches flushed so far (each shares its fsyncs among its acceptances). */
  get batches(): number {
    return this.#commits.flushes;
  }

  /** Refuse new acceptances and wait for the ones under way (an orderly stop). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#commits.idle();
    await this.#journal?.close();
  }

  async #flush(batch: Pending[]): Promise<Settled<AcceptedJob[]>[]> {
    const outcomes: Settled<AcceptedJob[]>[] = batch.map(() => ({ ok: true, value: [] }));
    const index = new Map(batch.map((p, i) => [p, i]));
    const put = (p: Pending, outcome: Settled<AcceptedJob[]>): void => {
      outcomes[index.get(p) ?? -1] = outcome;
    };
    const journal = this.#journal;
    const journaled: Pending[] = [];
    const fsynced: Pending[] = [];
    for (const p of batch) {
      const single = p.origin.kind === 'bytes' && p.staged.files !== undefined;
      (journal !== undefined && single ? journaled : fsynced).push(p);
    }
    const flushPart = async (part: Pending[], flush: () => Promise<void>): Promise<void> => {
      if (part.length === 0) return;
      try {
        await flush();
      } catch (error) {
        for (const p of part) put(p, { ok: false, error });
      }
    };
    await Promise.all([
      flushPart(fsynced, () => this.#flushFsynced(fsynced, put)),
      flushPart(journaled, () => this.#flushJournaled(journal as AcceptJournal, journaled, put)),
    ]);
    return outcomes;
  }

  /**
   * API submissions of single jobs: one journal append for the batch, then the commits, with no
   * fsync of the folders (the journal's checkpoint puts them on disk).
   */
  async #flushJournaled(
    journal: AcceptJournal,
    batch: Pending[],
    put: (p: Pending, outcome: Settled<AcceptedJob[]>) => void,
  ): Promise<void> {
    const records: JournalRecord[] = batch.map(({ staged }) => ({
      queue: staged.queue,
      id: (staged.jobs[0] as AcceptedJob).spec.id,
      into: staged.into,
      files: staged.files ?? {},
    }));
    let ticket;
    try {
      ticket = await journal.append(records);
    } catch (error) {
      for (const p of batch) abandonStaged(p.staged, p.origin);
      throw diskError(error, journal.dir);
    }
    const failed: JournalRecord[] = [];
    try {
      batch.forEach(({ staged, origin }, i) => {
        try {
          takeOrigin(staged, origin);
          commitStaged(this.#layout, staged, origin);
          put(batch[i] as Pending, { ok: true, value: staged.jobs });
        } catch (error) {
          abandonStaged(staged, origin);
          failed.push(records[i] as JournalRecord);
          put(batch[i] as Pending, { ok: false, error: diskError(error, staged.dir) });
        }
      });
      // Refused after all: recovery must not write these jobs again (withdraw does not throw:
      // the jobs committed beside them are answered as committed).
      if (failed.length > 0) await journal.withdraw(ticket, failed);
    } finally {
      journal.committed(ticket);
    }
  }

  /** Everything else: each step's files and folders fsynced, the batch's fsyncs issued together. */
  async #flushFsynced(
    batch: Pending[],
    put: (p: Pending, outcome: Settled<AcceptedJob[]>) => void,
  ): Promise<void> {
    try {
      await fsyncAll(batch.flatMap((p) => p.staged.written));
    } catch (error) {
      for (const p of batch) abandonStaged(p.staged, p.origin);
      throw diskError(error, batch[0]?.staged.dir ?? '');
    }
    const changed = new Set<string>();
    const committed: Pending[] = [];
    for (const p of batch) {
      const { staged, origin } = p;
      try {
        if (takeOrigin(staged, origin)) {
          for (const dir of commitStaged(this.#layout, staged, origin)) changed.add(dir);
          committed.push(p);
        } else abandonStaged(staged, origin); // another daemon took the drop
      } catch (error) {
        abandonStaged(staged, origin);
        put(p, { ok: false, error: diskError(error, staged.dir) });
      }
    }
    // Committed but not yet known durable: a failure from here on fails the whole batch, and the
    // jobs already in queued/ are found by the next rescan (tasks by recovery at the next start).
    await fsyncAll(changed);
    changed.clear();
    for (const p of committed) {
      const { staged } = p;
      try {
        for (const dir of finishStaged(this.#layout, staged)) changed.add(dir);
        put(p, { ok: true, value: staged.jobs });
      } catch (error) {
        put(p, { ok: false, error: diskError(error, staged.dir) }); // committed: recovery finishes it
      }
    }
    await fsyncAll(changed);
  }
}
