import { coerceError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { HostClaims } from './claims.ts';
import type { HostLayer } from './layer.ts';
import type { HostProvider } from './provider.ts';

export interface ReaperDeps {
  hosts: HostLayer;
  claims: HostClaims;
  /** Every provider of the configured controllers. */
  providers: () => { controller: string; provider: HostProvider }[];
  log: Logger;
}

/** What one pass did, for the log and the tests. */
export interface ReapReport {
  stopped: string[];
  reaped: string[];
  failed: string[];
}

/**
 * Stops what batchd started and nobody needs any more: hosts claimed only by dead dispatchers
 * (the daemon died between start and stop), and anything a provider lists with this spool's tags
 * that no live dispatcher uses. Runs at start-up and periodically. Things without our tags are
 * never listed by a provider, so never touched.
 */
export class Reaper {
  readonly #d: ReaperDeps;
  #running: Promise<ReapReport> | undefined;

  constructor(deps: ReaperDeps) {
    this.#d = deps;
  }

  /** One pass; a pass already running is joined. */
  reap(signal: AbortSignal): Promise<ReapReport> {
    this.#running ??= this.#pass(signal).finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #pass(signal: AbortSignal): Promise<ReapReport> {
    const report: ReapReport = { stopped: [], reaped: [], failed: [] };
    const { hosts, claims, log } = this.#d;
    for (const host of await claims.abandoned()) {
      if (signal.aborted) return report;
      try {
        if (await hosts.stopAbandoned(host, signal)) {
          report.stopped.push(host);
          log.info({ host }, `host ${host}: stopped (started by a dispatcher that is gone; nobody uses it)`);
        }
      } catch (error) {
        report.failed.push(host);
        log.warn({ host, err: coerceError(error) }, `host ${host}: stopping a host left behind failed`);
      }
    }
    for (const { controller, provider } of this.#d.providers()) {
      if (provider.owned === undefined || provider.reap === undefined) continue;
      let owned;
      try {
        owned = await provider.owned(signal);
      } catch (error) {
        log.warn(
          { controller, err: coerceError(error) },
          `controller ${controller}: listing its hosts failed`,
        );
        continue;
      }
      for (const leftover of owned) {
        if (signal.aborted) return report;
        const name = leftover.host;
        // Stopped, and not ours to delete: nothing to do.
        if (!leftover.running && !leftover.created) continue;
        // In use here, or claimed by a live dispatcher: not a leftover.
        if (name !== undefined && (hosts.inUse(name) || (await claims.othersUse(name)))) continue;
        const configured = name === undefined ? undefined : hosts.host(name);
        // A configured host of another controller with the same name is not this one's to judge.
        if (configured !== undefined && configured.controller !== controller) continue;
        try {
          await provider.reap(leftover, signal);
          report.reaped.push(leftover.id);
          log.info(
            { controller, host: name, id: leftover.id },
            `controller ${controller}: reaped ${leftover.id} (host ${name ?? '?'}), left behind and unused`,
          );
        } catch (error) {
          report.failed.push(leftover.id);
          log.warn({ controller, id: leftover.id, err: coerceError(error) }, `reaping ${leftover.id} failed`);
        }
      }
    }
    return report;
  }
}
