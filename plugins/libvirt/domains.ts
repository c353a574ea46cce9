import { type Domain, DomainGetXMLDescFlags, DomainState, type Hypervisor } from '@unraid/libvirt';

import { readTags } from './metadata.ts';

/** libvirt's domain states as `virsh domstate` words them, for messages and logs. */
export const STATE_NAMES: Readonly<Record<DomainState, string>> = {
  [DomainState.NOSTATE]: 'no state',
  [DomainState.RUNNING]: 'running',
  [DomainState.BLOCKED]: 'idle',
  [DomainState.PAUSED]: 'paused',
  [DomainState.SHUTDOWN]: 'in shutdown',
  [DomainState.SHUTOFF]: 'shut off',
  [DomainState.CRASHED]: 'crashed',
  [DomainState.PMSUSPENDED]: 'pmsuspended',
};

export function stateName(state: DomainState): string {
  return STATE_NAMES[state] ?? `state ${String(state)}`;
}

/** Running as far as batchd is concerned: it executes (`idle` is a running domain waiting on I/O). */
export function isRunning(state: DomainState): boolean {
  return state === DomainState.RUNNING || state === DomainState.BLOCKED;
}

/**
 * The domain named `name`, or undefined when there is none. A failed lookup is told apart from a
 * missing domain by listing the names (the binding gives every error the same code).
 */
export async function findDomain(hypervisor: Hypervisor, name: string): Promise<Domain | undefined> {
  try {
    return await hypervisor.domainLookupByName(name);
  } catch (error) {
    const all = await hypervisor.connectListAllDomains();
    const names = await Promise.all(all.map((d) => d.getName()));
    if (names.includes(name)) throw error;
    return undefined;
  }
}

export async function stateOf(domain: Domain): Promise<DomainState> {
  return (await domain.getInfo()).state;
}

/**
 * The definition batchd tags: the persistent one (what the next boot uses and `virsh dumpxml
 * --inactive` shows), with secrets kept so that defining it again loses nothing.
 */
export function definition(domain: Domain): Promise<string> {
  return domain.getXMLDesc(DomainGetXMLDescFlags.INACTIVE | DomainGetXMLDescFlags.SECURE);
}

export async function tagsOf(domain: Domain): Promise<Record<string, string> | undefined> {
  return readTags(await definition(domain));
}
