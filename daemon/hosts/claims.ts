import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import lockfile from 'proper-lockfile';

import { coerceError, errnoCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import { HOST_TAG, ownerMayBeAlive, SELF } from '../spool/owner.ts';
import type { Owner } from '../spool/state-file.ts';

/** `<spool>/.hosts/`: which dispatchers use which provider-started hosts. */
export const HOSTS_STATE_FOLDER = '.hosts';

type Release = () => Promise<void>;

/**
 * Who uses a provider-started host, shared by every dispatcher on the spool (even on other
 * machines): `.hosts/<host>/<dispatcher>` is a claim, locked (proper-lockfile, refreshed) for as
 * long as its dispatcher has the host in use. Bring-up and stop each happen under the host's
 * lifecycle lock (`.hosts/<host>.lock`), so a dispatcher never stops a host while another one's
 * claim on it is live, and one that claims a host during a stop waits and starts it again.
 * A claim whose lock went stale, or whose process is gone from this machine, is a dead
 * dispatcher's: its host was started by batchd and nobody needs it (reaping).
 */
export class HostClaims {
  readonly #root: string;
  readonly #me = `${HOST_TAG}-${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly #staleMs: number;
  readonly #log: Logger;
  readonly #held = new Map<string, Release>();

  constructor(spool: string, staleMs: number, log: Logger) {
    this.#root = path.join(spool, HOSTS_STATE_FOLDER);
    this.#staleMs = Math.max(2000, staleMs);
    this.#log = log;
  }

  /** Run `work` holding the host's lifecycle lock (waits for another dispatcher's start or stop). */
  async exclusive<T>(host: string, work: () => Promise<T>, signal: AbortSignal): Promise<T> {
    const dir = this.#dir(host);
    mkdirSync(dir, { recursive: true });
    let release: Release | undefined;
    while (release === undefined) {
      signal.throwIfAborted();
      try {
        release = await lockfile.lock(dir, {
          lockfilePath: `${dir}.lock`,
          realpath: false,
          stale: this.#staleMs,
          update: Math.floor(this.#staleMs / 4),
          onCompromised: (error) =>
            this.#log.warn({ host, err: coerceError(error) }, 'host lifecycle lock lost'),
        });
      } catch (error) {
        if (errnoCode(error) !== 'ELOCKED') throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    try {
      return await work();
    } finally {
      await release().catch(() => undefined);
    }
  }

  /** Mark this dispatcher as a user of the host (call under `exclusive`). */
  async claim(host: string): Promise<void> {
    if (this.#held.has(host)) return;
    const file = path.join(this.#dir(host), this.#me);
    writeFileSync(file, JSON.stringify(SELF));
    const release = await lockfile.lock(file, {
      realpath: false,
      stale: this.#staleMs,
      update: Math.floor(this.#staleMs / 4),
      onCompromised: (error) => this.#log.warn({ host, err: coerceError(error) }, 'host claim lost'),
    });
    this.#held.set(host, release);
  }

  /** Drop this dispatcher's claim (call under `exclusive`). */
  async unclaim(host: string): Promise<void> {
    const release = this.#held.get(host);
    this.#held.delete(host);
    await release?.().catch(() => undefined);
    rmSync(path.join(this.#dir(host), this.#me), { force: true });
  }

  /** Whether a live dispatcher other than this one claims the host. */
  async othersUse(host: string): Promise<boolean> {
    for (const claim of this.#claims(host)) {
      if (claim.name === this.#me) continue;
      if (await this.#alive(claim.file, claim.owner)) return true;
    }
    return false;
  }

  /** Hosts with claims, none of them live: started by batchd, needed by nobody. */
  async abandoned(): Promise<string[]> {
    const hosts: string[] = [];
    for (const host of this.#hosts()) {
      if (this.#held.has(host)) continue;
      const claims = this.#claims(host);
      if (claims.length === 0) continue;
      let live = false;
      for (const claim of claims) if (await this.#alive(claim.file, claim.owner)) live = true;
      if (!live) hosts.push(host);
    }
    return hosts;
  }

  /** Remove the dead claims on a host once it is stopped (call under `exclusive`). */
  async clearDead(host: string): Promise<void> {
    for (const claim of this.#claims(host)) {
      if (claim.name === this.#me || (await this.#alive(claim.file, claim.owner))) continue;
      rmSync(claim.file, { force: true });
      rmSync(`${claim.file}.lock`, { recursive: true, force: true });
    }
  }

  /** Every host some dispatcher, live or dead, has claimed. */
  claimedHosts(): string[] {
    return this.#hosts().filter((h) => this.#claims(h).length > 0);
  }

  /**
   * Stop refreshing the claims but leave their files: a host this daemon left running is then a
   * dead dispatcher's, and the next daemon on the spool reaps it once nobody needs it.
   */
  async close(): Promise<void> {
    const held = [...this.#held.values()];
    this.#held.clear();
    await Promise.allSettled(held.map((release) => release()));
  }

  #dir(host: string): string {
    return path.join(this.#root, host);
  }

  #hosts(): string[] {
    try {
      return readdirSync(this.#root, { withFileTypes: true })
        .filter((d) => d.isDirectory() && !d.name.endsWith('.lock'))
        .map((d) => d.name);
    } catch {
      return [];
    }
  }

  #claims(host: string): { name: string; file: string; owner: Owner | undefined }[] {
    let names: string[];
    try {
      names = readdirSync(this.#dir(host)).filter((n) => !n.endsWith('.lock'));
    } catch {
      return [];
    }
    return names.map((name) => {
      const file = path.join(this.#dir(host), name);
      return { name, file, owner: readOwner(file) };
    });
  }

  async #alive(file: string, owner: Owner | undefined): Promise<boolean> {
    if (!ownerMayBeAlive(owner)) return false;
    return lockfile.check(file, { realpath: false, stale: this.#staleMs }).catch(() => false);
  }
}

function readOwner(file: string): Owner | undefined {
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as Partial<Owner>;
    if (typeof data.hostname === 'string' && typeof data.boot_id === 'string' && typeof data.pid === 'number')
      return { hostname: data.hostname, boot_id: data.boot_id, pid: data.pid };
  } catch {
    // unreadable: its lock's age decides
  }
  return undefined;
}

/**
 * The spool's identity (`.hosts/spool-id`, made once): the tag that tells this spool's hosts from
 * those another batchd installation made on the same engine or account.
 */
export function spoolId(spool: string): string {
  const file = path.join(spool, HOSTS_STATE_FOLDER, 'spool-id');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    mkdirSync(path.dirname(file), { recursive: true });
    const id = randomBytes(8).toString('hex');
    try {
      writeFileSync(file, `${id}\n`, { flag: 'wx' });
      return id;
    } catch {
      return readFileSync(file, 'utf8').trim(); // made by another dispatcher meanwhile
    }
  }
}
