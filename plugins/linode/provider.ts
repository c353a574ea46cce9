import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  BatchdError,
  TAG,
  type HostAddress,
  type HostProvider,
  type OwnedHost,
  type ProviderContext,
  type ProviderHost,
} from '../../daemon/plugins/api.ts';
import type { CreateLinodeRequest, Linode, LinodeStatus } from './api.ts';
import { LinodeClient } from './client.ts';
import { isComplete, type LinodeConfig, type LinodeHostBlock } from './config.ts';
import { carries, CREATED_TAG, encodeTags, tagValue, withoutOurs } from './tags.ts';

/** Statuses a Linode passes through on its own towards running or offline: wait, don't act. */
const ON_ITS_WAY_UP: readonly LinodeStatus[] = [
  'provisioning',
  'booting',
  'rebooting',
  'migrating',
  'restoring',
];

/**
 * Linodes as batchd hosts, found by label (`controller_id`, else the host's name), as batchd did:
 * booted and shut down (`boot_and_shutdown`), or created from the host's `linode:` block and
 * deleted (`create_and_delete`). What it boots or creates carries the spool's tags.
 */
export class LinodeProvider implements HostProvider {
  readonly name = 'linode';
  readonly #config: LinodeConfig;
  readonly #ctx: ProviderContext;
  readonly #api: LinodeClient;

  constructor(config: LinodeConfig, ctx: ProviderContext) {
    this.#config = config;
    this.#ctx = ctx;
    this.#api = new LinodeClient(config.base_url, ctx.resolve(config.token_file), (host, message, context) =>
      this.#fail(host, message, context),
    );
  }

  async start(host: ProviderHost, signal: AbortSignal): Promise<void> {
    const found = await this.#api.byLabel(host.name, host.id, signal);
    if (found === undefined) {
      if (this.#config.actions === 'create_and_delete') return this.#create(host, signal);
      throw this.#fail(host.name, `no Linode is labelled "${host.id}"`);
    }
    if (!found.tags.includes(CREATED_TAG) && !carries(found.tags, host.tags))
      // Tagged before it boots, so that reaping finds it if this daemon dies before shutting it down.
      await this.#api.setTags(
        host.name,
        found.id,
        [...withoutOurs(found.tags), ...encodeTags(host.tags)],
        signal,
      );
    await this.#bringUp(host, found, signal);
  }

  async stop(host: ProviderHost, signal: AbortSignal): Promise<void> {
    const found = await this.#api.byLabel(host.name, host.id, signal);
    if (found === undefined) return;
    // Only what batchd created is deleted; a Linode of the same label it did not make is shut down.
    if (this.#config.actions === 'create_and_delete' && found.tags.includes(CREATED_TAG)) {
      this.#ctx.log.info({ host: host.name, linode: found.id }, 'deleting the Linode batchd created');
      return this.#api.delete(host.name, found.id, signal);
    }
    await this.#shutDown(host.name, found, signal);
  }

  async locate(host: ProviderHost, signal: AbortSignal): Promise<HostAddress> {
    if (!this.#config.use_host_name) {
      const found = await this.#api.byLabel(host.name, host.id, signal);
      const address = found?.ipv4.find(isPublic) ?? found?.ipv4[0];
      if (address !== undefined) return { address, port: host.port };
    }
    if (host.hostName === undefined)
      throw this.#fail(
        host.name,
        `no address for the Linode labelled "${host.id}" and no host_name in the host file`,
      );
    return { address: host.hostName, port: host.port };
  }

  async owned(signal: AbortSignal): Promise<OwnedHost[]> {
    const [first = ''] = encodeTags(this.#ctx.tags);
    const found = await this.#api.tagged(first, signal);
    return found
      .filter((l) => carries(l.tags, this.#ctx.tags))
      .map((l) => ({
        id: String(l.id),
        host: tagValue(l.tags, TAG.host),
        running: l.status !== 'offline' && l.status !== 'stopped',
        created: l.tags.includes(CREATED_TAG),
      }));
  }

  async reap(leftover: OwnedHost, signal: AbortSignal): Promise<void> {
    const host = leftover.host ?? leftover.id;
    const found = await this.#api.get(host, Number(leftover.id), signal);
    // Looked at again: a Linode that lost our spool's tag is not ours any more.
    if (found === undefined || !carries(found.tags, this.#ctx.tags)) return;
    this.#ctx.log.info({ host, linode: found.id }, 'reaping a Linode left by a stopped daemon');
    if (found.tags.includes(CREATED_TAG)) await this.#api.delete(host, found.id, signal);
    else await this.#shutDown(host, found, signal);
  }

  async #create(host: ProviderHost, signal: AbortSignal): Promise<void> {
    const block = host.settings as LinodeHostBlock | undefined;
    if (!isComplete(block))
      throw this.#fail(
        host.name,
        'actions: create_and_delete needs a linode: block (type, image, region…) in the host file',
      );
    const request: CreateLinodeRequest = {
      label: host.id,
      type: block.type,
      image: block.image,
      region: block.region,
      root_pass: await this.#rootPassword(host.name, block),
      authorized_keys: await this.#authorizedKeys(host, block),
      tags: [...encodeTags(host.tags), CREATED_TAG],
      booted: true,
      ...(block.stackscript_id === undefined ? {} : { stackscript_id: block.stackscript_id }),
      ...(block.stackscript_data === undefined ? {} : { stackscript_data: block.stackscript_data }),
    };
    const made = await this.#api.create(host.name, request, signal);
    this.#ctx.log.info({ host: host.name, linode: made.id, ipv4: made.ipv4 }, 'created a Linode');
    await this.#waitFor(host.name, made.id, 'running', signal);
  }

  /** batchd's rules: offline → boot, running → nothing; on its way up → wait. */
  async #bringUp(host: ProviderHost, linode: Linode, signal: AbortSignal): Promise<void> {
    let status = linode.status;
    if (status === 'running') return;
    if (status === 'shutting_down') status = await this.#waitFor(host.name, linode.id, 'offline', signal);
    if (status === 'offline' || status === 'stopped') {
      this.#ctx.log.info({ host: host.name, linode: linode.id }, 'booting Linode');
      await this.#api.boot(host.name, linode.id, signal);
    } else if (!ON_ITS_WAY_UP.includes(status)) {
      throw this.#fail(
        host.name,
        `the Linode labelled "${linode.label}" is ${status}: batchd cannot start it`,
      );
    }
    await this.#waitFor(host.name, linode.id, 'running', signal);
  }

  async #shutDown(host: string, linode: Linode, signal: AbortSignal): Promise<void> {
    if (linode.status !== 'offline' && linode.status !== 'stopped') {
      this.#ctx.log.info({ host, linode: linode.id }, 'shutting down Linode');
      if (linode.status !== 'shutting_down') await this.#api.shutdown(host, linode.id, signal);
      await this.#waitFor(host, linode.id, 'offline', signal);
    }
    // Handed back: booted by someone else later, it must not look like a leftover of ours.
    if (withoutOurs(linode.tags).length !== linode.tags.length)
      await this.#api.setTags(host, linode.id, withoutOurs(linode.tags), signal);
  }

  /** Polls until the Linode's status is `target`, for at most `wait_timeout`; its last status. */
  async #waitFor(host: string, id: number, target: LinodeStatus, signal: AbortSignal): Promise<LinodeStatus> {
    const deadline = Date.now() + this.#config.wait_timeout * 1000;
    for (;;) {
      const linode = await this.#api.get(host, id, signal);
      if (linode === undefined)
        throw this.#fail(host, `Linode ${id} disappeared while waiting for it to be ${target}`);
      if (linode.status === target) return target;
      if (Date.now() >= deadline)
        throw this.#fail(
          host,
          `Linode ${id} is still ${linode.status} after ${this.#config.wait_timeout} s of waiting for ${target}`,
        );
      await sleep(this.#config.poll_interval * 1000, undefined, { signal });
    }
  }

  async #rootPassword(host: string, block: LinodeHostBlock): Promise<string> {
    if (block.root_pass_file === undefined) return block.root_password ?? '';
    const file = this.#ctx.resolve(block.root_pass_file);
    try {
      return (await readFile(file, 'utf8')).split('\n')[0]?.trim() ?? '';
    } catch (error) {
      throw this.#fail(
        host,
        `cannot read root_pass_file ${file} (${(error as { code?: string }).code ?? 'unreadable'})`,
      );
    }
  }

  /** batchd's: the host's public key authorized for root; plus the block's own key files. */
  async #authorizedKeys(host: ProviderHost, block: LinodeHostBlock): Promise<string[]> {
    const files = [
      ...(host.publicKey === undefined ? [] : [host.publicKey]),
      ...(block.authorized_keys ?? []),
    ];
    const keys: string[] = [];
    for (const file of files.map((f) => this.#ctx.resolve(f))) {
      try {
        keys.push((await readFile(file, 'utf8')).trim());
      } catch (error) {
        throw this.#fail(
          host.name,
          `cannot read public key ${file} (${(error as { code?: string }).code ?? 'unreadable'})`,
        );
      }
    }
    return keys;
  }

  #fail(host: string | undefined, message: string, context: Record<string, unknown> = {}): BatchdError {
    const where = `Linode (controller ${this.#ctx.name})${host === undefined ? '' : `, host ${host}`}`;
    return new BatchdError('PROVIDER_FAILED', `${where}: ${message}`, {
      ...context,
      host,
      controller: this.#ctx.name,
    });
  }
}

/** Not in a private range (Linode lists private addresses among `ipv4` too). */
function isPublic(address: string): boolean {
  return !/^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|127\.)/.test(address);
}
