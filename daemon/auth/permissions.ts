import type { Grant, Permission } from '../protocol/auth.ts';
import { DEFAULT_HOST } from '../protocol/config.ts';

/** Who a request is from, once authenticated. */
export interface Principal {
  name: string;
  /** Authentication disabled, or a SuperUser grant. */
  superuser: boolean;
  grants: readonly Grant[];
  via: 'none' | 'basic' | 'token' | 'proxy';
  tokenId?: string | undefined;
}

/**
 * What a permission is asked for. A missing field asks for the unrestricted permission (a grant
 * with that scope field null), as batchd's "unrestricted" checks do. `host` for CreateJobs is the
 * host a job names, or `__default__` when it names none.
 */
export interface Scope {
  queue?: string | undefined;
  type?: string | undefined;
  host?: string | undefined;
}

/**
 * The permission check, the only one. batchd's rules: SuperUser passes everything; otherwise a
 * grant of the permission whose queue is the one asked for or null (any) allows it; for CreateJobs
 * the grant's job type and host must match too (null = any; `__default__` = the job names no host).
 */
export function can(principal: Principal, permission: Permission, scope: Scope = {}): boolean {
  if (principal.superuser) return true;
  return principal.grants.some(
    (grant) =>
      grant.permission === permission &&
      covers(grant.queue_name, scope.queue) &&
      (permission !== 'CreateJobs' ||
        (covers(grant.type_name, scope.type) && covers(grant.host_name, scope.host ?? DEFAULT_HOST))),
  );
}

function covers(granted: string | null, wanted: string | undefined): boolean {
  return granted === null || granted === wanted;
}

export function principalFor(
  name: string,
  grants: readonly Grant[],
  via: Principal['via'],
  tokenId?: string,
): Principal {
  return { name, superuser: grants.some((g) => g.permission === 'SuperUser'), grants, via, tokenId };
}

/** With authentication disabled everyone is a superuser (batchd's rule); the API then listens on loopback only. */
export const ANONYMOUS: Principal = Object.freeze({
  name: 'anonymous',
  superuser: true,
  grants: [],
  via: 'none',
});
