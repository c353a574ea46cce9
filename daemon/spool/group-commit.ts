/** One item's outcome in a flushed batch. */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface GroupCommitOptions<T, R> {
  /**
   * Makes a batch durable. Returns one outcome per item, in order; throwing fails every item of
   * the batch with that error.
   */
  flush: (batch: T[]) => Promise<Settled<R>[]>;
  /**
   * How long an item that finds the committer idle waits for others to join its batch. 0: only
   * what arrives in the same turn of the event loop joins.
   */
  windowMs?: number;
  /** Items per batch at most; more wait for the next batch. */
  maxBatch?: number;
}

interface Waiter<T, R> {
  item: T;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: callers that must wait for the disk share one flush. One batch is flushed at a
 * time; whatever arrives while it runs forms the next batch, which starts as soon as it ends. So
 * under load batches grow to the arrival rate times a flush's duration, and an idle committer adds
 * at most `windowMs` to a lone caller's wait.
 */
export class GroupCommit<T, R> {
  readonly #flush: (batch: T[]) => Promise<Settled<R>[]>;
  readonly #windowMs: number;
  readonly #maxBatch: number;
  #queue: Waiter<T, R>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #running: Promise<void> | undefined;
  #runningSize = 0;
  #flushes = 0;

  constructor(options: GroupCommitOptions<T, R>) {
    const { windowMs = 0, maxBatch = 512 } = options;
    if (!Number.isFinite(windowMs) || windowMs < 0)
      throw new TypeError(`Expected \`windowMs\` to be a number ≥ 0, got \`${windowMs}\``);
    if (!Number.isInteger(maxBatch) || maxBatch < 1)
      throw new TypeError(`Expected \`maxBatch\` to be an integer ≥ 1, got \`${maxBatch}\``);
    this.#flush = options.flush;
    this.#windowMs = windowMs;
    this.#maxBatch = maxBatch;
  }

  /** Resolves with the item's outcome once the batch it joined has been flushed. */
  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (this.#running !== undefined) return; // it joins the batch that starts when this one ends
      if (this.#queue.length >= this.#maxBatch) this.#start();
      else this.#schedule(this.#windowMs);
    });
  }

  /** Items added and not yet settled. */
  get pending(): number {
    return this.#queue.length + this.#runningSize;
  }

  /** Batches started so far. */
  get flushes(): number {
    return this.#flushes;
  }

  /** Resolves once every item added so far is settled (an orderly stop waits for it). */
  async idle(): Promise<void> {
    while (this.#running !== undefined || this.#queue.length > 0) {
      if (this.#running === undefined) this.#start();
      await this.#running;
    }
  }

  /** Start a batch after `delayMs`, or (0) once this turn of the event loop has delivered its arrivals. */
  #schedule(delayMs: number): void {
    if (this.#timer !== undefined || this.#immediate !== undefined) return;
    if (delayMs > 0) this.#timer = setTimeout(() => this.#start(), delayMs);
    else this.#immediate = setImmediate(() => this.#start());
  }

  #start(): void {
    clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
    if (this.#running !== undefined) return;
    const batch = this.#queue.splice(0, this.#maxBatch);
    if (batch.length === 0) return;
    this.#runningSize = batch.length;
    this.#flushes += 1;
    this.#running = this.#run(batch).finally(() => {
      this.#running = undefined;
      this.#runningSize = 0;
      // What arrived meanwhile has waited a whole flush already: no window for it.
      if (this.#queue.length > 0) this.#schedule(0);
    });
  }

  async #run(batch: Waiter<T, R>[]): Promise<void> {
    let outcomes: Settled<R>[];
    try {
      outcomes = await this.#flush(batch.map((w) => w.item));
      if (outcomes.length !== batch.length)
        throw new Error(`flush settled ${outcomes.length} of ${batch.length} items`);
    } catch (error) {
      for (const waiter of batch) waiter.reject(error);
      return;
    }
    batch.forEach((waiter, i) => {
      const outcome = outcomes[i] as Settled<R>;
      if (outcome.ok) waiter.resolve(outcome.value);
      else waiter.reject(outcome.error);
    });
  }
}
