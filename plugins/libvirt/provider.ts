import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import { ConnectListAllDomainsFlags, type Domain, DomainState, type Hypervisor } from '@unraid/libvirt';

import {
  BatchdError,
  type HostAddress,
  type HostProvider,
  type OwnedHost,
  type ProviderContext,
  type ProviderHost,
  TAG,
} from '../../daemon/plugins/api.ts';
import { domifaddr } from './address.ts';
import type { LibvirtConfig, LibvirtHost } from './config.ts';
import { Connection } from './connection.ts';
import { definition, findDomain, isRunning, stateName, stateOf, tagsOf } from './domains.ts';
import { carries, readTags, withoutTags, withTags } from './metadata.ts';
import { domainFromTemplate } from './template.ts';

/** How often `stop` looks whether a shutdown finished, and `locate` whether an address appeared. */
const SHUTDOWN_POLL_MS = 500;
const ADDRESS_POLL_MS = 2_000;

/**
 * Hosts that are libvirt domains (batchd's `driver: libvirt`): a domain named by `controller_id`,
 * started from shut off or resumed from paused, shut down gracefully on stop, and — for a host with
 * a `template` — defined on start and undefined on stop. Every domain batchd starts or defines
 * carries batchd's element in its `<metadata>`; `owned` and `reap` see no other domain.
 */
export class LibvirtProvider implements HostProvider {
  readonly name = 'libvirt';
  readonly #config: LibvirtConfig;
  readonly #ctx: ProviderContext;
  readonly #connection: Connection;

  constructor(config: LibvirtConfig, ctx: ProviderContext) {
    this.#config = config;
    this.#ctx = ctx;
    this.#connection = new Connection(config.connection_string);
  }

  async start(host: ProviderHost, signal: AbortSignal): Promise<void> {
    const hypervisor = await this.#open(host.name, signal);
    let domain = await this.#call(host.name, `look up domain "${host.id}"`, signal, () =>
      findDomain(hypervisor, host.id),
    );
    const template = settingsOf(host).template;
    if (domain === undefined) {
      if (template === undefined)
        throw this.#fail(
          host.name,
          `no domain named "${host.id}" at ${this.#uri()} (the host's controller_id, else its name, must name a domain; or give the host a template)`,
        );
      domain = await this.#define(hypervisor, host, template, signal);
    } else if (template !== undefined) await this.#assertCreatedByUs(host, domain, signal);
    const state = await this.#call(host.name, `read the state of "${host.id}"`, signal, () =>
      stateOf(domain),
    );
    if (isRunning(state)) return this.#tag(hypervisor, host, domain, signal);
    if (state !== DomainState.PAUSED && state !== DomainState.SHUTOFF)
      throw this.#fail(
        host.name,
        `domain "${host.id}" is ${stateName(state)}: batchd starts a domain that is running, paused or shut off`,
      );
    await this.#tag(hypervisor, host, domain, signal);
    const [verb, act] =
      state === DomainState.PAUSED ? ['resume', () => domain.resume()] : ['start', () => domain.create()];
    await this.#call(host.name, `${verb} domain "${host.id}"`, signal, act);
    const now = await this.#call(host.name, `read the state of "${host.id}"`, signal, () => stateOf(domain));
    this.#transition(host.name, host.id, state, now);
    if (!isRunning(now))
      throw this.#fail(host.name, `domain "${host.id}" is ${stateName(now)} after "${verb}", not running`);
  }

  async stop(host: ProviderHost, signal: AbortSignal): Promise<void> {
    const hypervisor = await this.#open(host.name, signal);
    const domain = await this.#call(host.name, `look up domain "${host.id}"`, signal, () =>
      findDomain(hypervisor, host.id),
    );
    const template = settingsOf(host).template;
    if (domain === undefined) {
      if (template !== undefined) return; // already removed
      throw this.#fail(host.name, `no domain named "${host.id}" at ${this.#uri()} to stop`);
    }
    if (template !== undefined) await this.#assertCreatedByUs(host, domain, signal);
    await this.#release(hypervisor, host.name, host.id, domain, signal);
  }

  async locate(host: ProviderHost, signal: AbortSignal): Promise<HostAddress> {
    if (this.#config.use_host_name || host.hostName !== undefined) {
      if (host.hostName === undefined)
        throw this.#fail(host.name, 'use_host_name is set but the host file has no host_name');
      return { address: host.hostName, port: host.port };
    }
    const deadline = Date.now() + this.#config.address_timeout * 1000;
    for (;;) {
      const said: string[] = [];
      for (const source of this.#config.address_sources) {
        signal.throwIfAborted();
        const answer = await domifaddr(
          this.#config.virsh,
          this.#config.connection_string,
          host.id,
          source,
          signal,
        );
        if (answer.address !== undefined) return { address: answer.address, port: host.port };
        said.push(`--source ${source}: ${answer.error ?? 'no address yet'}`);
      }
      signal.throwIfAborted();
      if (Date.now() >= deadline)
        throw this.#fail(
          host.name,
          `no address for domain "${host.id}" from \`virsh domifaddr\` after ${this.#config.address_timeout}s (${said.join('; ')}); set host_name in the host file to use it instead`,
        );
      await sleep(ADDRESS_POLL_MS, undefined, { signal });
    }
  }

  async owned(signal: AbortSignal): Promise<OwnedHost[]> {
    const hypervisor = await this.#open(undefined, signal);
    const domains = await this.#call(undefined, 'list the domains', signal, () =>
      hypervisor.connectListAllDomains(),
    );
    const found = await Promise.all(
      domains.map(async (domain) => {
        try {
          const tags = await tagsOf(domain);
          if (!carries(tags, this.#ctx.tags)) return [];
          const [id, state] = await Promise.all([domain.getName(), stateOf(domain)]);
          return [
            {
              id,
              host: tags?.[TAG.host],
              running: state !== DomainState.SHUTOFF,
              created: tags?.[TAG.created] === 'true',
            },
          ];
        } catch {
          return []; // undefined while we listed: nothing left to own
        }
      }),
    );
    return found.flat();
  }

  async reap(leftover: OwnedHost, signal: AbortSignal): Promise<void> {
    const who = leftover.host ?? leftover.id;
    const hypervisor = await this.#open(who, signal);
    const domain = await this.#call(who, `look up domain "${leftover.id}"`, signal, () =>
      findDomain(hypervisor, leftover.id),
    );
    if (domain === undefined) return;
    const tags = await this.#call(who, `read the metadata of "${leftover.id}"`, signal, () => tagsOf(domain));
    if (!carries(tags, this.#ctx.tags)) return; // not ours (any more): never touched
    await this.#release(hypervisor, who, leftover.id, domain, signal);
  }

  /** A domain's state and batchd's tags on it, undefined when there is no such domain (diagnostics). */
  async inspect(
    id: string,
    signal: AbortSignal,
  ): Promise<{ state: string; tags: Record<string, string> | undefined } | undefined> {
    const hypervisor = await this.#open(undefined, signal);
    return this.#call(undefined, `inspect domain "${id}"`, signal, async () => {
      const domain = await findDomain(hypervisor, id);
      if (domain === undefined) return undefined;
      return { state: stateName(await stateOf(domain)), tags: await tagsOf(domain) };
    });
  }

  async close(): Promise<void> {
    await this.#connection.close();
  }

  /** Down, and as batchd found it: removed when batchd created it, else shut down and untagged. */
  async #release(
    hypervisor: Hypervisor,
    who: string,
    id: string,
    domain: Domain,
    signal: AbortSignal,
  ): Promise<void> {
    const tags = await this.#call(who, `read the metadata of "${id}"`, signal, () => tagsOf(domain));
    const created = carries(tags, this.#ctx.tags) && tags?.[TAG.created] === 'true';
    await this.#shutDown(who, id, domain, created ? 0 : this.#config.stop_timeout, signal);
    if (created) {
      await this.#call(who, `undefine domain "${id}"`, signal, () => domain.undefine());
      this.#ctx.log.info({ host: who, domain: id }, `domain "${id}": undefined (batchd had defined it)`);
    } else if (carries(tags, this.#ctx.tags)) {
      const xml = await this.#call(who, `read the definition of "${id}"`, signal, () => definition(domain));
      await this.#call(who, `remove batchd's metadata from "${id}"`, signal, () =>
        hypervisor.domainDefineXML(withoutTags(xml)),
      );
    }
  }

  /** Graceful shutdown, waiting up to `timeoutS` for shut off, then destroy (0: destroy at once). */
  async #shutDown(
    who: string,
    id: string,
    domain: Domain,
    timeoutS: number,
    signal: AbortSignal,
  ): Promise<void> {
    const from = await this.#call(who, `read the state of "${id}"`, signal, () => stateOf(domain));
    if (from === DomainState.SHUTOFF) return;
    const graceful =
      timeoutS > 0 && (isRunning(from) || from === DomainState.PAUSED || from === DomainState.SHUTDOWN);
    if (graceful) {
      // A paused guest cannot act on the request to shut down.
      if (from === DomainState.PAUSED)
        await this.#call(who, `resume domain "${id}"`, signal, () => domain.resume());
      if (from !== DomainState.SHUTDOWN)
        await this.#call(who, `shut down domain "${id}"`, signal, () => domain.shutdown());
      const deadline = Date.now() + timeoutS * 1000;
      for (;;) {
        const now = await this.#call(who, `read the state of "${id}"`, signal, () => stateOf(domain));
        if (now === DomainState.SHUTOFF) return this.#transition(who, id, from, now);
        if (Date.now() >= deadline) break;
        await sleep(Math.min(SHUTDOWN_POLL_MS, Math.max(0, deadline - Date.now())), undefined, { signal });
      }
      this.#ctx.log.warn(
        { host: who, domain: id, stop_timeout: timeoutS },
        `domain "${id}" did not shut down within stop_timeout (${timeoutS}s): destroying it`,
      );
    }
    await this.#call(who, `destroy domain "${id}"`, signal, () => domain.destroy());
    this.#transition(who, id, from, DomainState.SHUTOFF);
  }

  async #define(
    hypervisor: Hypervisor,
    host: ProviderHost,
    template: string,
    signal: AbortSignal,
  ): Promise<Domain> {
    const file = this.#ctx.resolve(template);
    let text: string;
    try {
      text = await readFile(file, { encoding: 'utf8', signal });
    } catch (error) {
      signal.throwIfAborted();
      throw this.#fail(host.name, `cannot read the domain template ${file}: ${messageOf(error)}`, error);
    }
    let xml: string;
    try {
      xml = domainFromTemplate(text, host.id, { ...host.tags, [TAG.created]: 'true' });
    } catch (error) {
      throw this.#fail(host.name, `domain template ${file}: ${messageOf(error)}`, error);
    }
    const domain = await this.#call(host.name, `define domain "${host.id}" from ${file}`, signal, () =>
      hypervisor.domainDefineXML(xml),
    );
    this.#ctx.log.info(
      { host: host.name, domain: host.id, template: file },
      `domain "${host.id}": defined from template`,
    );
    return domain;
  }

  /** Mark a domain batchd is about to use (so a crash leaves it findable); a created one already is. */
  async #tag(hypervisor: Hypervisor, host: ProviderHost, domain: Domain, signal: AbortSignal): Promise<void> {
    const xml = await this.#call(host.name, `read the definition of "${host.id}"`, signal, () =>
      definition(domain),
    );
    if (carries(readTags(xml), host.tags)) return;
    if (!(await this.#persistent(hypervisor, host, signal))) return; // defining it would make it persistent
    await this.#call(host.name, `add batchd's metadata to "${host.id}"`, signal, () =>
      hypervisor.domainDefineXML(withTags(xml, host.tags)),
    );
  }

  async #persistent(hypervisor: Hypervisor, host: ProviderHost, signal: AbortSignal): Promise<boolean> {
    return this.#call(host.name, 'list the persistent domains', signal, async () => {
      const persistent = await hypervisor.connectListAllDomains(ConnectListAllDomainsFlags.PERSISTENT);
      return (await Promise.all(persistent.map((d) => d.getName()))).includes(host.id);
    });
  }

  /** A host with a template uses only a domain batchd defined: a same-named domain of someone else's is left alone. */
  async #assertCreatedByUs(host: ProviderHost, domain: Domain, signal: AbortSignal): Promise<void> {
    const tags = await this.#call(host.name, `read the metadata of "${host.id}"`, signal, () =>
      tagsOf(domain),
    );
    if (carries(tags, this.#ctx.tags) && tags?.[TAG.created] === 'true') return;
    throw this.#fail(
      host.name,
      `domain "${host.id}" exists but batchd did not define it; the host has a template, so batchd will not use or remove it (rename the host's controller_id or remove that domain)`,
    );
  }

  async #open(who: string | undefined, signal: AbortSignal): Promise<Hypervisor> {
    signal.throwIfAborted();
    try {
      return await this.#connection.hypervisor();
    } catch (error) {
      throw this.#fail(who, `cannot connect to libvirt at ${this.#uri()}: ${messageOf(error)}`, error);
    }
  }

  /** Run one libvirt call, turning its failure into a PROVIDER_FAILED error that says what was tried. */
  async #call<T>(
    who: string | undefined,
    what: string,
    signal: AbortSignal,
    act: () => Promise<T>,
  ): Promise<T> {
    signal.throwIfAborted();
    try {
      return await act();
    } catch (error) {
      if (error instanceof BatchdError) throw error;
      await this.#connection.recover();
      throw this.#fail(who, `libvirt ${this.#uri()}: ${what} failed: ${messageOf(error)}`, error);
    }
  }

  #transition(who: string, id: string, from: DomainState, to: DomainState): void {
    this.#ctx.log.info(
      { host: who, domain: id, from: stateName(from), to: stateName(to) },
      `domain "${id}": ${stateName(from)} -> ${stateName(to)}`,
    );
  }

  #fail(who: string | undefined, message: string, cause?: unknown): BatchdError {
    return new BatchdError(
      'PROVIDER_FAILED',
      who === undefined ? message : `host ${who}: ${message}`,
      { host: who, controller: this.#ctx.name },
      cause === undefined ? {} : { cause },
    );
  }

  /** The connection string as shown in messages: a password in it (rare, but possible) is hidden. */
  #uri(): string {
    return this.#config.connection_string.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
  }
}

function settingsOf(host: ProviderHost): LibvirtHost {
  return (host.settings as LibvirtHost | undefined) ?? {};
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
