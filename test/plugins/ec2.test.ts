import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  CreateLaunchTemplateCommand,
  DescribeInstancesCommand,
  RunInstancesCommand,
  StopInstancesCommand,
  type EC2Client,
  type Instance,
} from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { BatchdError, type HostProvider, type ProviderHost } from '../../daemon/plugins/api.ts';
import plugin from '../../plugins/ec2/index.ts';
import { regionCode } from '../../plugins/ec2/regions.ts';
import { providerContext, providerHost, type LoggedRecord } from '../helpers/providers.ts';
import { MOTO_CREDENTIALS, startMoto, type Moto } from '../helpers/moto.ts';

const SPOOL = 'spool-ec2-test';
const ROOT = path.resolve(import.meta.dirname, '..', '..');

let moto: Moto;
let ec2: EC2Client;
let dir: string;
let records: LoggedRecord[];
const providers: HostProvider[] = [];

beforeAll(async () => {
  moto = await startMoto();
  ec2 = moto.client();
});
afterAll(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  await moto.reset();
  dir = mkdtempSync(path.join(tmpdir(), 'batchd-ec2-'));
});
afterEach(async () => {
  for (const p of providers.splice(0)) await p.close?.();
  rmSync(dir, { recursive: true, force: true });
});

/** The plugin's provider for a controller file's fields, as the daemon makes it. */
function provider(fields: Record<string, unknown> = {}, spool = SPOOL): HostProvider {
  const config = plugin.config.parse({
    region: 'us-east-1',
    endpoint: moto.endpoint,
    credentials: { access_key: MOTO_CREDENTIALS.accessKeyId, secret_key: MOTO_CREDENTIALS.secretAccessKey },
    poll_interval: 0.2,
    wait_timeout: 20,
    ...fields,
  });
  const ctx = providerContext(dir, spool, 'amazon');
  records = ctx.records;
  const made = plugin.create(config, ctx);
  providers.push(made);
  return made;
}

/** A host of the controller `amazon`, with its `awsec2:` block parsed as the daemon does. */
function host(name: string, extra: Partial<ProviderHost> = {}, block?: unknown): ProviderHost {
  const ctx = providerContext(dir, SPOOL, 'amazon');
  const settings = block === undefined ? undefined : plugin.host?.parse(block);
  return providerHost(ctx, name, { ...extra, settings });
}

const signal = (): AbortSignal => AbortSignal.timeout(30_000);

async function runBare(tags: Record<string, string> = {}, client = ec2): Promise<string> {
  const out = await client.send(
    new RunInstancesCommand({
      ImageId: await moto.imageId(),
      MinCount: 1,
      MaxCount: 1,
      ...(Object.keys(tags).length === 0
        ? {}
        : {
            TagSpecifications: [
              {
                ResourceType: 'instance',
                Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
              },
            ],
          }),
    }),
  );
  return out.Instances?.[0]?.InstanceId ?? '';
}

async function instance(id: string, client = ec2): Promise<Instance> {
  const out = await client.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  const found = out.Reservations?.[0]?.Instances?.[0];
  if (found === undefined) throw new Error(`no instance ${id}`);
  return found;
}

async function instancesTagged(key: string, value: string, client = ec2): Promise<Instance[]> {
  const out = await client.send(
    new DescribeInstancesCommand({ Filters: [{ Name: `tag:${key}`, Values: [value] }] }),
  );
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

const tagsOf = (i: Instance): Record<string, string> =>
  Object.fromEntries((i.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
const stateOf = async (id: string): Promise<string | undefined> => (await instance(id)).State?.Name;

async function rejection(promise: Promise<unknown>): Promise<BatchdError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BatchdError);
  return error as BatchdError;
}

describe('EC2 provider against moto', () => {
  it('starts a stopped instance by id, waits until it runs, and stops it again (batchd awsec2)', async () => {
    const id = await runBare();
    await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    expect(await stateOf(id)).toBe('stopped');
    const p = provider();
    const h = host('render1', { id });

    await p.start?.(h, signal());
    expect(await stateOf(id)).toBe('running');
    // Started by batchd: it carries the spool's tags while it runs, so reaping can find it.
    expect(tagsOf(await instance(id))).toMatchObject({ 'batchd.spool': SPOOL, 'batchd.host': 'render1' });
    await p.start?.(h, signal()); // idempotent
    expect(await stateOf(id)).toBe('running');

    await p.stop?.(h, signal());
    expect(await stateOf(id)).toBe('stopped');
    // Stopped and handed back: started by someone else later, it is not a leftover of ours.
    expect(tagsOf(await instance(id))).not.toHaveProperty('batchd.spool');
    await p.stop?.(h, signal()); // idempotent
    expect(await stateOf(id)).toBe('stopped');
  });

  it('runs an instance from an AMI with the spool, host and created tags, and terminates it on stop', async () => {
    const p = provider();
    const image = await moto.imageId();
    const h = host(
      'gpu1',
      {},
      { image_id: image, instance_type: 't3.micro', user_data: '#!/bin/sh\necho hi\n' },
    );

    await p.start?.(h, signal());
    await p.start?.(h, signal()); // idempotent: the running one is reused, not a second one run
    const ours = (await instancesTagged('batchd.host', 'gpu1')).filter((i) => i.State?.Name === 'running');
    expect(ours).toHaveLength(1);
    const made = ours[0] as Instance;
    expect(made.ImageId).toBe(image);
    expect(made.InstanceType).toBe('t3.micro');
    expect(tagsOf(made)).toMatchObject({
      'batchd.spool': SPOOL,
      'batchd.host': 'gpu1',
      'batchd.created': 'true',
      Name: 'gpu1',
    });
    const address = await p.locate?.(h, signal());
    expect(address?.address).toBe(made.PublicDnsName);

    await p.stop?.(h, signal());
    expect(await stateOf(made.InstanceId ?? '')).toBe('terminated');
    await p.stop?.(h, signal()); // nothing left to terminate
  });

  it('runs an instance from a launch template', async () => {
    const image = await moto.imageId();
    await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: 'batchd-workers',
        LaunchTemplateData: { ImageId: image, InstanceType: 't3.nano' },
      }),
    );
    const p = provider();
    const h = host('tpl1', {}, { launch_template: 'batchd-workers' });
    await p.start?.(h, signal());
    const [made] = await instancesTagged('batchd.host', 'tpl1');
    expect(made?.State?.Name).toBe('running');
    expect(made?.InstanceType).toBe('t3.nano');
    expect(tagsOf(made as Instance)).toMatchObject({ 'batchd.created': 'true', 'batchd.spool': SPOOL });
  });

  it('lists and reaps only instances carrying its spool tag; others are never touched', async () => {
    const p = provider();
    const created = host('made', {}, { image_id: await moto.imageId() });
    await p.start?.(created, signal());
    const [made] = await instancesTagged('batchd.host', 'made');
    const startedId = await runBare();
    await p.start?.(host('started', { id: startedId }), signal());
    const untagged = await runBare();
    const otherSpool = await runBare({
      'batchd.spool': 'someone-else',
      'batchd.host': 'made',
      'batchd.created': 'true',
    });

    const owned = await p.owned?.(signal());
    expect(owned?.map((o) => o.id).sort()).toEqual([made?.InstanceId, startedId].sort());
    expect(owned?.find((o) => o.id === startedId)).toEqual({
      id: startedId,
      host: 'started',
      running: true,
      created: false,
    });
    expect(owned?.find((o) => o.id === made?.InstanceId)).toMatchObject({ host: 'made', created: true });

    for (const leftover of owned ?? []) await p.reap?.(leftover, signal());
    expect(await stateOf(made?.InstanceId ?? '')).toBe('terminated'); // batchd ran it: terminated
    expect(await stateOf(startedId)).toBe('stopped'); // batchd only started it: stopped
    expect(await stateOf(untagged)).toBe('running');
    expect(await stateOf(otherSpool)).toBe('running');
    expect(await p.owned?.(signal())).toEqual([]);

    // Reaping something that is not ours (an id the list never gave) does nothing.
    await p.reap?.({ id: untagged, host: 'made', running: true, created: true }, signal());
    expect(await stateOf(untagged)).toBe('running');
  });

  it('reports a refused call with the call, AWS error code and message, and never the secret', async () => {
    const p = provider();
    const h = host('ghost', { id: 'i-0123456789abcdef0' });
    const error = await rejection(p.start?.(h, signal()) ?? Promise.resolve());
    expect(error.code).toBe('PROVIDER_FAILED');
    expect(error.message).toMatch(
      /StartInstances failed: InvalidInstanceID\.NotFound: .*i-0123456789abcdef0/,
    );
    expect(error.context).toMatchObject({ host: 'ghost', controller: 'amazon', call: 'StartInstances' });
    const everything = JSON.stringify([error.message, error.context, records]);
    expect(everything).not.toContain(MOTO_CREDENTIALS.secretAccessKey);
  });

  it('reports an unreachable endpoint as a provider failure naming the call', async () => {
    const p = provider({ endpoint: 'http://127.0.0.1:1' });
    const error = await rejection(p.owned?.(signal()) ?? Promise.resolve());
    expect(error.code).toBe('PROVIDER_FAILED');
    expect(error.message).toContain('DescribeInstances failed');
  });

  it("maps batchd's region names to AWS regions and works in that region", async () => {
    expect(regionCode('Virginia')).toBe('us-east-1');
    expect(regionCode('NorthVirginia')).toBe('us-east-1');
    expect(regionCode('Ohio')).toBe('us-east-2');
    expect(regionCode('NorthCalifornia')).toBe('us-west-1');
    expect(regionCode('Oregon')).toBe('us-west-2');
    expect(regionCode('Ireland')).toBe('eu-west-1');
    expect(regionCode('Frankfurt')).toBe('eu-central-1');
    expect(regionCode('Tokyo')).toBe('ap-northeast-1');
    expect(regionCode('Singapore')).toBe('ap-southeast-1');
    expect(regionCode('Sydney')).toBe('ap-southeast-2');
    expect(regionCode('SaoPaulo')).toBe('sa-east-1');
    expect(regionCode('eu-north-1')).toBe('eu-north-1');
    const bad = plugin.config.safeParse({ region: 'Atlantis' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toContain('"Atlantis"');

    const p = provider({ region: 'Ireland' });
    await p.start?.(host('dublin', {}, { image_id: await moto.imageId() }), signal());
    expect(await instancesTagged('batchd.host', 'dublin', moto.client('eu-west-1'))).toHaveLength(1);
    expect(await instancesTagged('batchd.host', 'dublin')).toHaveLength(0);
  });

  it('signs with the keys of a {path, profile} shared credentials file', async () => {
    const file = path.join(dir, 'credentials');
    writeFileSync(
      file,
      '[default]\naws_access_key_id = AKIAWRONGPROFILE\naws_secret_access_key = x\n\n' +
        '[batchd]\naws_access_key_id = AKIAFROMFILE\naws_secret_access_key = file-secret-value\n',
    );
    const p = provider({ region: 'Oregon', credentials: { path: 'credentials', profile: 'batchd' } });
    await moto.record();
    expect(await p.owned?.(signal())).toEqual([]);
    const authorizations = await moto.recordedAuthorizations();
    expect(authorizations.length).toBeGreaterThan(0);
    for (const a of authorizations) expect(a).toMatch(/Credential=AKIAFROMFILE\/\d+\/us-west-2\/ec2\//);

    const missing = provider({ credentials: { path: 'credentials', profile: 'nobody' } });
    const error = await rejection(missing.owned?.(signal()) ?? Promise.resolve());
    expect(error.code).toBe('PROVIDER_FAILED');
    expect(error.message).toContain('nobody');
    expect(error.message).not.toContain('file-secret-value');
  });

  it('always uses the host file host_name when use_host_name is set', async () => {
    const p = provider({ use_host_name: true });
    const h = host('local', { hostName: '127.0.0.1', port: 2222, id: await runBare() });
    expect(await p.locate?.(h, signal())).toEqual({ address: '127.0.0.1', port: 2222 });
  });

  it("loads batchd's sample controller file and the shipped example unchanged", () => {
    const sample = parse(
      'driver: awsec2\nenable_start_stop: true\ncredentials:\n  path: /home/user/.aws/credentials\n  profile: batchd\nregion: Virginia\n',
    ) as Record<string, unknown>;
    const { driver: _d, enable_start_stop: _e, ...fields } = sample;
    expect(plugin.config.parse(fields)).toMatchObject({ region: 'us-east-1' });
    const shipped = parse(
      readFileSync(path.join(ROOT, 'etc', 'controllers', 'amazon.yaml'), 'utf8'),
    ) as Record<string, unknown>;
    expect(plugin.drivers).toContain(shipped.driver);
    const { driver: _d2, enable_start_stop: _e2, ...own } = shipped;
    expect(plugin.config.safeParse(own).success).toBe(true);
    expect(plugin.config.parse({ region: 'us-east-1' }).credentials).toBe('discover');
    expect(plugin.host?.safeParse({ actions: 'create_and_delete', instance_type: 't3.micro' }).success).toBe(
      false,
    );
    // A host without a block (the daemon passes {}): its instance is started and stopped.
    expect(plugin.host?.parse({})).toEqual({ actions: 'start_and_stop' });
  });
});
