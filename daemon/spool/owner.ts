import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

import type { Owner } from './state-file.ts';

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** Who this process is, as recorded on the jobs it claims. */
export const SELF: Owner = { hostname: hostname(), boot_id: readBootId(), pid: process.pid };

/** A short tag for this machine and boot, used in names of staging folders. */
export const HOST_TAG = createHash('sha256')
  .update(`${SELF.hostname}\0${SELF.boot_id}`)
  .digest('hex')
  .slice(0, 8);

/**
 * `false` only when the owner certainly is dead: same machine and boot, and no such process.
 * On another machine we cannot tell, and the lock's age decides.
 */
export function ownerMayBeAlive(owner: Owner | undefined): boolean {
  if (owner === undefined) return true;
  if (owner.hostname !== SELF.hostname || owner.boot_id !== SELF.boot_id) {
    return owner.hostname !== SELF.hostname;
  }
  if (owner.pid === process.pid) return true;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

export function pidAlive(pid: number): boolean {
  return ownerMayBeAlive({ ...SELF, pid });
}
