/** Longest delay setTimeout takes (about 24.8 days); a longer wait is rearmed when it fires. */
const MAX_DELAY_MS = 2_147_000_000;

/**
 * The one timer that wakes the dispatch loop, at the earliest moment anything asked for: a job's
 * not_before, a queue's schedule opening.
 */
export class WakeTimer {
  readonly #wake: () => void;
  #timer: NodeJS.Timeout | undefined;
  #at = Infinity;

  constructor(wake: () => void) {
    this.#wake = wake;
  }

  /** Wake in `ms` (at least 1) unless a wake-up is due sooner already; Infinity asks nothing. */
  arm(ms: number): void {
    if (!Number.isFinite(ms)) return;
    const at = Date.now() + Math.max(ms, 1);
    if (this.#timer !== undefined && this.#at <= at) return;
    clearTimeout(this.#timer);
    this.#at = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#at = Infinity;
        this.#wake();
      },
      Math.min(Math.max(ms, 1), MAX_DELAY_MS),
    );
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }
}
