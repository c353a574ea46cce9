import {
  CreateTagsCommand,
  DeleteTagsCommand,
  EC2Client,
  paginateDescribeInstances,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  type Filter,
  type Instance,
  type RunInstancesCommandInput,
  type Tag,
} from '@aws-sdk/client-ec2';

import {
  BatchdError,
  TAG,
  type HostAddress,
  type HostProvider,
  type OwnedHost,
  type ProviderContext,
  type ProviderHost,
} from '../../daemon/plugins/api.ts';
import { START_AND_STOP, type Ec2Config, type Ec2HostBlock } from './config.ts';
import { credentialsFor } from './credentials.ts';
import { failure, refused } from './errors.ts';
import { waitForState, type WaitedState } from './waiters.ts';

/** Every state but terminated and shutting-down: an instance that can still run again. */
const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];

/**
 * EC2 instances as batchd hosts: an existing instance started and stopped by id (batchd's
 * behaviour), or one run from an AMI or launch template for the host and terminated on stop.
 * Everything it runs or starts carries the spool's tags, so that `owned` finds leftovers.
 */
export class Ec2Provider implements HostProvider {
  readonly name = 'ec2';
  readonly #config: Ec2Config;
  readonly #ctx: ProviderContext;
  readonly #client: EC2Client;

  constructor(config: Ec2Config, ctx: ProviderContext) {
    this.#config = config;
    this.#ctx = ctx;
    this.#client = new EC2Client({
      region: config.region,
      ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }),
      credentials: credentialsFor(config.credentials, (p) => ctx.resolve(p)),
    });
  }

  async start(host: ProviderHost, signal: AbortSignal): Promise<void> {
    const block = blockOf(host);
    if (block.actions === 'create_and_delete') {
      const [existing] = await this.#createdFor(host, signal);
      if (existing === undefined) return this.#run(host, block, signal);
      return this.#bringUp(host, instanceId(existing), existing.State?.Name, signal);
    }
    // Tagged before it starts, so that reaping finds it if this daemon dies before stopping it.
    const tags = new CreateTagsCommand({ Resources: [host.id], Tags: tagList(host.tags) });
    await this.#call('CreateTags', host.name, signal, () => this.#client.send(tags, { abortSignal: signal }));
    await this.#bringUp(host, host.id, undefined, signal);
  }

  async stop(host: ProviderHost, signal: AbortSignal): Promise<void> {
    if (blockOf(host).actions === 'create_and_delete') {
      const ids = (await this.#createdFor(host, signal)).map(instanceId);
      if (ids.length > 0) await this.#terminate(host.name, ids, signal);
      return;
    }
    await this.#stopById(host.name, host.id, signal);
  }

  async locate(host: ProviderHost, signal: AbortSignal): Promise<HostAddress> {
    if (this.#config.use_host_name) {
      if (host.hostName === undefined)
        throw failure(this.#ctx, host.name, 'use_host_name is set but the host file has no host_name');
      return { address: host.hostName, port: host.port };
    }
    const [instance] =
      blockOf(host).actions === 'create_and_delete'
        ? await this.#createdFor(host, signal)
        : await this.#describe({ ids: [host.id], ours: false }, host.name, signal);
    const address = instance?.PublicDnsName || instance?.PublicIpAddress || host.hostName;
    if (address === undefined || address === '')
      throw failure(
        this.#ctx,
        host.name,
        `instance ${instance?.InstanceId ?? host.id} has no public DNS name or address, and the host file no host_name`,
      );
    return { address, port: host.port };
  }

  async owned(signal: AbortSignal): Promise<OwnedHost[]> {
    return (await this.#describe({ ours: true }, undefined, signal)).map((instance) => ({
      id: instanceId(instance),
      host: tagValue(instance, TAG.host),
      running: instance.State?.Name === 'pending' || instance.State?.Name === 'running',
      created: tagValue(instance, TAG.created) !== undefined,
    }));
  }

  async reap(leftover: OwnedHost, signal: AbortSignal): Promise<void> {
    // Looked up again with the spool's filters: an instance that lost our tag is not touched.
    const host = leftover.host ?? leftover.id;
    let instance: Instance | undefined;
    try {
      [instance] = await this.#describe({ ids: [leftover.id], ours: true }, host, signal);
    } catch (error) {
      if (awsCode(error) === 'InvalidInstanceID.NotFound') return;
      throw error;
    }
    if (instance === undefined) return;
    this.#ctx.log.info({ host, instance: leftover.id }, 'reaping an EC2 instance left by a stopped daemon');
    if (tagValue(instance, TAG.created) !== undefined) await this.#terminate(host, [leftover.id], signal);
    else await this.#stopById(host, leftover.id, signal);
  }

  close(): Promise<void> {
    this.#client.destroy();
    return Promise.resolve();
  }

  /** Start `id` from whatever state it is in (undefined: not looked at), and wait until it runs. */
  async #bringUp(
    host: ProviderHost,
    id: string,
    state: string | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    if (state === 'running') return;
    if (state === 'pending') return this.#wait(host.name, 'running', [id], signal);
    if (state === 'stopping') await this.#wait(host.name, 'stopped', [id], signal);
    else if (state !== undefined && state !== 'stopped')
      throw failure(this.#ctx, host.name, `instance ${id} is ${state}: it cannot be started`);
    this.#ctx.log.info({ host: host.name, instance: id }, 'starting EC2 instance');
    try {
      await this.#startInstance(host.name, id, signal);
    } catch (error) {
      // Started while it was still stopping: let it stop, then start it.
      if (awsCode(error) !== 'IncorrectInstanceState') throw error;
      await this.#wait(host.name, 'stopped', [id], signal);
      await this.#startInstance(host.name, id, signal);
    }
    await this.#wait(host.name, 'running', [id], signal);
  }

  #startInstance(host: string, id: string, signal: AbortSignal): Promise<unknown> {
    return this.#call('StartInstances', host, signal, () =>
      this.#client.send(new StartInstancesCommand({ InstanceIds: [id] }), { abortSignal: signal }),
    );
  }

  async #stopById(host: string, id: string, signal: AbortSignal): Promise<void> {
    this.#ctx.log.info({ host, instance: id }, 'stopping EC2 instance');
    const stop = () =>
      this.#call('StopInstances', host, signal, () =>
        this.#client.send(new StopInstancesCommand({ InstanceIds: [id] }), { abortSignal: signal }),
      );
    try {
      await stop();
    } catch (error) {
      // Stopped while it was still pending: let it run, then stop it.
      if (awsCode(error) !== 'IncorrectInstanceState') throw error;
      await this.#wait(host, 'running', [id], signal);
      await stop();
    }
    await this.#wait(host, 'stopped', [id], signal);
    // Not batchd's any more: started by someone else later, it must not look like a leftover.
    const untag = new DeleteTagsCommand({
      Resources: [id],
      Tags: [...Object.keys(this.#ctx.tags), TAG.host].map((Key) => ({ Key })),
    });
    await this.#call('DeleteTags', host, signal, () => this.#client.send(untag, { abortSignal: signal }));
  }

  async #terminate(host: string, ids: string[], signal: AbortSignal): Promise<void> {
    this.#ctx.log.info({ host, instances: ids }, 'terminating EC2 instances batchd ran');
    await this.#call('TerminateInstances', host, signal, () =>
      this.#client.send(new TerminateInstancesCommand({ InstanceIds: ids }), { abortSignal: signal }),
    );
    await this.#wait(host, 'terminated', ids, signal);
  }

  async #run(host: ProviderHost, block: Ec2HostBlock, signal: AbortSignal): Promise<void> {
    const tags = tagList({ Name: host.name, ...host.tags, [TAG.created]: 'true' });
    const input: RunInstancesCommandInput = {
      MinCount: 1,
      MaxCount: 1,
      ImageId: block.image_id,
      LaunchTemplate: launchTemplate(block.launch_template),
      InstanceType: block.instance_type as RunInstancesCommandInput['InstanceType'],
      KeyName: block.key_name,
      SecurityGroupIds: block.security_group_ids,
      SubnetId: block.subnet_id,
      UserData: block.user_data === undefined ? undefined : Buffer.from(block.user_data).toString('base64'),
      TagSpecifications: [
        { ResourceType: 'instance', Tags: tags },
        { ResourceType: 'volume', Tags: tags },
      ],
    };
    const output = await this.#call('RunInstances', host.name, signal, () =>
      this.#client.send(new RunInstancesCommand(input), { abortSignal: signal }),
    );
    const id = output.Instances?.[0]?.InstanceId;
    if (id === undefined) throw failure(this.#ctx, host.name, 'RunInstances answered without an instance');
    this.#ctx.log.info({ host: host.name, instance: id }, 'ran EC2 instance');
    await this.#wait(host.name, 'running', [id], signal);
  }

  /** The live instances batchd ran for this host, running ones first. */
  async #createdFor(host: ProviderHost, signal: AbortSignal): Promise<Instance[]> {
    const filters = [
      { Name: `tag:${TAG.host}`, Values: [host.name] },
      { Name: 'tag-key', Values: [TAG.created] },
    ];
    const found = await this.#describe({ filters, ours: true }, host.name, signal);
    return found.sort((a, b) => Number(b.State?.Name === 'running') - Number(a.State?.Name === 'running'));
  }

  /**
   * Live (not terminated) instances: `ids` if given (AWS refuses unknown ids), narrowed to those
   * carrying the spool's tags when `ours`, and by `filters`.
   */
  async #describe(
    query: { ids?: string[]; filters?: Filter[]; ours: boolean },
    host: string | undefined,
    signal: AbortSignal,
  ): Promise<Instance[]> {
    const spool = query.ours ? Object.entries(this.#ctx.tags) : [];
    const input = {
      InstanceIds: query.ids,
      Filters: [
        { Name: 'instance-state-name', Values: LIVE_STATES },
        ...spool.map(([key, value]) => ({ Name: `tag:${key}`, Values: [value] })),
        ...(query.filters ?? []),
      ],
    };
    return this.#call('DescribeInstances', host, signal, async () => {
      const found: Instance[] = [];
      for await (const page of paginateDescribeInstances({ client: this.#client }, input)) {
        signal.throwIfAborted();
        for (const reservation of page.Reservations ?? []) found.push(...(reservation.Instances ?? []));
      }
      return found;
    });
  }

  async #wait(host: string, state: WaitedState, ids: string[], signal: AbortSignal): Promise<void> {
    await waitForState(this.#client, this.#config, state, ids, signal, (message) =>
      failure(this.#ctx, host, message),
    );
  }

  /** One AWS call, its refusal reported with the call's name; an abort is passed on as it is. */
  async #call<Output>(
    call: string,
    host: string | undefined,
    signal: AbortSignal,
    send: () => Promise<Output>,
  ): Promise<Output> {
    try {
      return await send();
    } catch (error) {
      if (signal.aborted) throw error;
      throw refused(this.#ctx, call, error, host);
    }
  }
}

function blockOf(host: ProviderHost): Ec2HostBlock {
  return (host.settings as Ec2HostBlock | undefined) ?? START_AND_STOP;
}

function instanceId(instance: Instance): string {
  return instance.InstanceId ?? '';
}

function tagList(tags: Readonly<Record<string, string>>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

function tagValue(instance: Instance, key: string): string | undefined {
  return instance.Tags?.find((t) => t.Key === key)?.Value;
}

function awsCode(error: unknown): string | undefined {
  return error instanceof BatchdError && typeof error.context.awsCode === 'string'
    ? error.context.awsCode
    : undefined;
}

function launchTemplate(
  template: Ec2HostBlock['launch_template'],
): RunInstancesCommandInput['LaunchTemplate'] {
  if (template === undefined) return undefined;
  if (typeof template === 'string')
    return template.startsWith('lt-') ? { LaunchTemplateId: template } : { LaunchTemplateName: template };
  return { LaunchTemplateId: template.id, LaunchTemplateName: template.name, Version: template.version };
}
