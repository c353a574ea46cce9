import { randomBytes } from 'node:crypto';

import type { Principal } from '../auth/permissions.ts';

/**
 * Download tickets: a browser saves a large file by plain navigation (`<a href download>`), which
 * streams it to disk, but a navigation cannot carry the Authorization header. So the page asks for
 * a ticket with its header (POST), and the link carries the ticket instead of the credential.
 *
 * A ticket is 32 random bytes (not derived from the token), good for one file, one use, for
 * TICKET_TTL_MS, and only for the user (and the client address) it was made for; the daemon keeps
 * it in memory only and never logs it (the API logs routes, not paths).
 */
export const TICKET_TTL_MS = 60_000;
/** Tickets not yet used; more than this and the oldest are dropped (a page makes one per click). */
const KEPT_TICKETS = 10_000;

export type DownloadTarget =
  { kind: 'output'; jobId: string; name: string } | { kind: 'task-outputs'; queue: string; task: string };

export interface Ticket {
  principal: Principal;
  address: string | undefined;
  target: DownloadTarget;
  expiresAt: number;
}

export class DownloadTickets {
  readonly #tickets = new Map<string, Ticket>();

  issue(
    principal: Principal,
    address: string | undefined,
    target: DownloadTarget,
    now = Date.now(),
  ): { ticket: string; expiresAt: number } {
    for (const [key, t] of this.#tickets) {
      if (t.expiresAt > now && this.#tickets.size < KEPT_TICKETS) break; // oldest first: the rest are newer
      this.#tickets.delete(key);
    }
    const ticket = randomBytes(32).toString('base64url');
    const expiresAt = now + TICKET_TTL_MS;
    this.#tickets.set(ticket, { principal, address, target, expiresAt });
    return { ticket, expiresAt };
  }

  /** The ticket's grant, once: it is gone after this call whatever the answer. */
  redeem(ticket: string, now = Date.now()): Ticket | undefined {
    const found = this.#tickets.get(ticket);
    if (found === undefined) return undefined;
    this.#tickets.delete(ticket);
    return found.expiresAt > now ? found : undefined;
  }
}
