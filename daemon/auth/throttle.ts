import { BatchdError } from '../errors.ts';

export interface ThrottleLimits {
  /** Failed logins allowed for one user name within `window`. */
  per_user: number;
  /** Failed logins allowed from one client address within `window`. */
  per_address: number;
  /** In milliseconds. */
  window: number;
}

/** Keys tracked at most; past this the oldest are dropped (a flood of names must not fill memory). */
const MAX_KEYS = 20_000;

/**
 * Failed password logins, counted per user name and per client address over a sliding window.
 * Past either limit every login for that name or from that address is refused with 429 and a
 * Retry-After before any scrypt is spent, until the oldest counted failure leaves the window. A
 * credential verified before (the authenticator's cache) still works, so flooding a user's name
 * cannot lock out a session that is already in use.
 */
export class LoginThrottle {
  readonly #limits: ThrottleLimits;
  /** key → times (ms) of the failures still in the window, oldest first. */
  readonly #failures = new Map<string, number[]>();

  constructor(limits: ThrottleLimits) {
    this.#limits = limits;
  }

  /** Throws RATE_LIMITED when the user or the address has used up its failures. */
  check(user: string, address: string | undefined, now = Date.now()): void {
    const wait = Math.max(
      this.#wait(userKey(user), this.#limits.per_user, now),
      address === undefined ? 0 : this.#wait(addressKey(address), this.#limits.per_address, now),
    );
    if (wait <= 0) return;
    const retryAfter = Math.max(1, Math.ceil(wait / 1000));
    throw new BatchdError('RATE_LIMITED', `Too many failed logins; try again in ${retryAfter} s`, {
      retryAfter,
    });
  }

  failed(user: string, address: string | undefined, now = Date.now()): void {
    this.#add(userKey(user), now);
    if (address !== undefined) this.#add(addressKey(address), now);
  }

  /** A good password clears its user's failures (not its address's). */
  succeeded(user: string): void {
    this.#failures.delete(userKey(user));
  }

  /** Milliseconds until `key` may try again (0 or less: now). */
  #wait(key: string, limit: number, now: number): number {
    const times = this.#recent(key, now);
    if (times === undefined || times.length < limit) return 0;
    return (times[times.length - limit] ?? now) + this.#limits.window - now;
  }

  #recent(key: string, now: number): number[] | undefined {
    const times = this.#failures.get(key);
    if (times === undefined) return undefined;
    const from = times.findIndex((t) => t > now - this.#limits.window);
    if (from < 0) {
      this.#failures.delete(key);
      return undefined;
    }
    if (from > 0) times.splice(0, from);
    return times;
  }

  #add(key: string, now: number): void {
    const times = this.#recent(key, now) ?? [];
    times.push(now);
    // Only as many as the largest limit matter.
    if (times.length > Math.max(this.#limits.per_user, this.#limits.per_address)) times.shift();
    this.#failures.delete(key); // re-inserted last: the map's order is least recently failed first
    this.#failures.set(key, times);
    if (this.#failures.size > MAX_KEYS) {
      const oldest = this.#failures.keys().next().value;
      if (oldest !== undefined) this.#failures.delete(oldest);
    }
  }
}

function userKey(user: string): string {
  return `u:${user}`;
}

/** IPv4 peers seen as IPv6-mapped addresses count as the same address. */
function addressKey(address: string): string {
  return `a:${address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '')}`;
}
