// Peer sessions shared by the suites of one run: each peer is started once (or found unavailable
// once, with the reason kept for the report) and stopped at the end.
import { Unavailable } from '../peers/common.mjs';

export class PeerPool {
  #ctx;
  #peers;
  #sessions = new Map();

  /** @param {object} ctx the run's context @param {object[]} peers peer modules, in report order */
  constructor(ctx, peers) {
    this.#ctx = ctx;
    this.#peers = peers;
  }

  /** Peers chosen for this run (`--only` may name peers). */
  selected(names) {
    return this.#peers.filter((p) => names.includes(p.name) && this.#ctx.wants(p.name));
  }

  /** `{session}` or `{unavailable: why}`; never throws. */
  async get(peer) {
    if (!this.#sessions.has(peer.name)) {
      const attempt = (async () => {
        const started = performance.now();
        try {
          const session = await peer.start(this.#ctx);
          this.#ctx.log(`  ${peer.name}: started in ${Math.round(performance.now() - started)} ms`);
          return { session };
        } catch (error) {
          const why = error instanceof Unavailable ? error.message : `could not start: ${error.message}`;
          this.#ctx.log(`  ${peer.name}: unavailable: ${why}`);
          return { unavailable: why };
        }
      })();
      this.#sessions.set(peer.name, attempt);
    }
    return this.#sessions.get(peer.name);
  }

  async closeAll() {
    for (const [name, attempt] of this.#sessions) {
      const { session } = await attempt;
      if (session === undefined) continue;
      try {
        await session.stop();
      } catch (error) {
        this.#ctx.log(`  ${name}: stop failed: ${error.message}`);
      }
    }
    this.#sessions.clear();
  }
}

/** The tools take turns in a different order each round, so no tool always runs first or last. */
export function rotate(list, by) {
  const k = list.length === 0 ? 0 : by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}
