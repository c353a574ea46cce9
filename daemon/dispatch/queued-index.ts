import type { JobSpec } from '../jobs/spec.ts';
import type { JobState } from '../spool/state-file.ts';
import { type Entry, ReadyList } from './ready-list.ts';

/** Specs (and records) kept from acceptance until the claim (about 1.5 KiB each). */
const KEPT_SPECS = 10_000;

/** What acceptance (or a task's folder making) wrote of a job, kept until its claim. */
export interface KeptJob {
  spec: JobSpec;
  /** Its `state.yaml` as written (the claim reads the file only to see it is unchanged). */
  state: JobState;
}

/** What the index keeps of a queued job's record. */
export function entryOf(state: JobState): Entry {
  return {
    id: state.id,
    queue: state.queue,
    type: state.type,
    host: state.host,
    task: state.task,
    priority: state.priority,
    order: state.order,
    notBefore: state.not_before === undefined ? undefined : Date.parse(state.not_before),
  };
}

/**
 * The queued jobs a dispatcher knows, as entries (ids and ordering fields only). A known entry is
 * ready, in its queue's sorted list, or waiting for dependencies or its not_before. Change an
 * entry's ordering fields only between `unplace` and `place`.
 */
export class QueuedIndex {
  readonly #known = new Map<string, Entry>();
  readonly #ready = new Map<string, ReadyList>();
  /** Queued jobs waiting for dependencies or not_before. */
  readonly #waiting = new Map<string, Entry>();
  /**
   * The specs and first records of jobs accepted by this daemon, kept until they are claimed (a
   * bounded number): `job.yaml` is written once, at acceptance, so the claim need not read it
   * back, and need not check `state.yaml` against its schema while it holds what was written.
   */
  readonly #specs = new Map<string, KeptJob>();
  /** Told of each entry placed among the waiting (`quiet`: record its wait, do not log it). */
  readonly #onWait: (entry: Entry, quiet: boolean) => void;

  constructor(onWait: (entry: Entry, quiet: boolean) => void) {
    this.#onWait = onWait;
  }

  get size(): number {
    return this.#known.size;
  }

  has(id: string): boolean {
    return this.#known.has(id);
  }

  get(id: string): Entry | undefined {
    return this.#known.get(id);
  }

  /** Know a queued job (`place` it next); what acceptance wrote of it is kept while there is room. */
  know(entry: Entry, kept?: KeptJob): void {
    if (kept !== undefined && this.#specs.size < KEPT_SPECS) this.#specs.set(entry.id, kept);
    this.#known.set(entry.id, entry);
  }

  /** Put a known entry where it belongs now: its queue's ready list, or among the waiting. */
  place(entry: Entry, quiet = false): void {
    if (entry.pending !== undefined || (entry.notBefore !== undefined && entry.notBefore > Date.now())) {
      this.#waiting.set(entry.id, entry);
      this.#onWait(entry, quiet);
      return;
    }
    let list = this.#ready.get(entry.queue);
    if (list === undefined) this.#ready.set(entry.queue, (list = new ReadyList()));
    list.insert(entry);
  }

  unplace(entry: Entry): void {
    if (!this.#waiting.delete(entry.id)) this.#ready.get(entry.queue)?.remove(entry);
  }

  /** Drop a queued job that left `queued/`. */
  forget(id: string): void {
    const entry = this.#known.get(id);
    if (entry === undefined) return;
    this.unplace(entry);
    this.#known.delete(id);
    this.#specs.delete(id);
  }

  /** Take an entry out to start it; its spec and first record, if kept. */
  take(entry: Entry): KeptJob | undefined {
    this.unplace(entry);
    this.#known.delete(entry.id);
    const spec = this.#specs.get(entry.id);
    this.#specs.delete(entry.id);
    return spec;
  }

  /** Ids of the queued jobs known in a queue. */
  knownIn(queue: string): Set<string> {
    const ids = new Set<string>();
    for (const entry of this.#known.values()) if (entry.queue === queue) ids.add(entry.id);
    return ids;
  }

  /** Ready and waiting jobs of a queue. */
  countIn(queue: string): number {
    return (
      (this.#ready.get(queue)?.size ?? 0) +
      [...this.#waiting.values()].filter((e) => e.queue === queue).length
    );
  }

  /** The ready lists by queue (some may be empty). */
  get ready(): ReadonlyMap<string, ReadyList> {
    return this.#ready;
  }

  anyReady(): boolean {
    for (const list of this.#ready.values()) if (list.size > 0) return true;
    return false;
  }

  /** The waiting entries, as a copy (callers may place them meanwhile). */
  waiting(): Entry[] {
    return [...this.#waiting.values()];
  }

  /** Make ready the waiting jobs whose time has come; ms until the next one's (Infinity: none). */
  releaseWaiting(now: number): number {
    let next = Infinity;
    for (const entry of this.#waiting.values()) {
      if (entry.pending !== undefined) continue;
      if (entry.notBefore === undefined || entry.notBefore <= now) {
        this.#waiting.delete(entry.id);
        this.place(entry);
      } else next = Math.min(next, entry.notBefore - now);
    }
    return next;
  }
}
