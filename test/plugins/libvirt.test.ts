import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { pino } from 'pino';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { ConfigStore } from '../../daemon/config/store.ts';
import { EventBus } from '../../daemon/events.ts';
import { BatchdError, type HostProvider, type ProviderHost } from '../../daemon/plugins/api.ts';
import { Controllers } from '../../daemon/plugins/controllers.ts';
import { PluginRegistry } from '../../daemon/plugins/registry.ts';
import libvirt from '../../plugins/libvirt/index.ts';
import { readTags, withoutTags, withTags } from '../../plugins/libvirt/metadata.ts';
import type { LibvirtProvider } from '../../plugins/libvirt/provider.ts';
import { domainTemplate, type FixtureDomain, Libvirtd, writeNodeXml } from '../helpers/libvirt-fixture.ts';
import { providerContext, providerHost } from '../helpers/providers.ts';
import { original } from '../compat/original.ts';

const SPOOL = 'spool-under-test';
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(path.join(tmpdir(), 'batchd-libvirt-'));
const signal = new AbortController().signal;
const open: HostProvider[] = [];
let fixtures = 0;

/** A provider on its own fixture: libvirt's test driver keeps each connection's state apart. */
function providerOn(domains: FixtureDomain[], settings: Record<string, unknown> = {}) {
  const uri = writeNodeXml(dir, `node-${++fixtures}.xml`, domains);
  const ctx = providerContext(dir, SPOOL);
  const config = libvirt.config.parse({ connection_string: uri, ...settings });
  const provider = libvirt.create(config, ctx) as LibvirtProvider;
  open.push(provider);
  const host = (name: string, extra: Partial<ProviderHost> = {}): ProviderHost =>
    providerHost(ctx, name, extra);
  return { provider, ctx, host };
}

/** The rejection of `pending`: a PROVIDER_FAILED BatchdError whose message matches. */
async function providerFailure(
  pending: Promise<unknown> | undefined,
  message: RegExp | string,
): Promise<BatchdError> {
  const error: unknown = await pending?.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BatchdError);
  expect((error as BatchdError).code).toBe('PROVIDER_FAILED');
  expect((error as BatchdError).message).toMatch(message);
  return error as BatchdError;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close?.() ?? Promise.resolve()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('libvirt provider: batchd’s start and stop of a domain by name', () => {
  it('starts a shut-off domain and marks it as this spool’s, not as created', async () => {
    const { provider, ctx, host } = providerOn([{ name: 'vm1', state: 'shutoff' }]);
    await provider.start(host('render', { id: 'vm1' }), signal);
    expect(await provider.inspect('vm1', signal)).toEqual({
      state: 'running',
      tags: { 'batchd.spool': SPOOL, 'batchd.host': 'render' },
    });
    expect(ctx.records.map((r) => r.msg)).toContain('domain "vm1": shut off -> running');
  });

  it('resumes a paused domain', async () => {
    const { provider, ctx, host } = providerOn([{ name: 'vm1', state: 'paused' }]);
    await provider.start(host('vm1'), signal);
    expect((await provider.inspect('vm1', signal))?.state).toBe('running');
    expect(ctx.records.map((r) => r.msg)).toContain('domain "vm1": paused -> running');
  });

  it('start of a running domain and a second start change nothing', async () => {
    const { provider, ctx, host } = providerOn([{ name: 'vm1', state: 'shutoff' }]);
    await provider.start(host('vm1'), signal);
    await provider.start(host('vm1'), signal);
    expect((await provider.inspect('vm1', signal))?.state).toBe('running');
    expect(ctx.records.filter((r) => String(r.msg).endsWith('-> running'))).toHaveLength(1);
  });

  it('stop shuts a running domain down, waits until it is shut off, and removes batchd’s mark', async () => {
    const { provider, ctx, host } = providerOn([{ name: 'vm1', state: 'running' }]);
    await provider.start(host('vm1'), signal);
    expect((await provider.inspect('vm1', signal))?.tags).toBeDefined();
    await provider.stop(host('vm1'), signal);
    expect(await provider.inspect('vm1', signal)).toEqual({ state: 'shut off', tags: undefined });
    expect(ctx.records.map((r) => r.msg)).toContain('domain "vm1": running -> shut off');
    await provider.stop(host('vm1'), signal); // idempotent
    expect((await provider.inspect('vm1', signal))?.state).toBe('shut off');
  });

  it('stop_timeout 0 powers the domain off at once (destroy) instead of asking it to shut down', async () => {
    const { provider, ctx, host } = providerOn([{ name: 'vm1', state: 'paused' }], { stop_timeout: 0 });
    await provider.stop(host('vm1'), signal);
    expect((await provider.inspect('vm1', signal))?.state).toBe('shut off');
    expect(ctx.records.map((r) => r.msg)).toContain('domain "vm1": paused -> shut off');
  });

  it('an unknown domain is a PROVIDER_FAILED error that names the domain, the host and the connection', async () => {
    const { provider, host } = providerOn([{ name: 'vm1', state: 'shutoff' }]);
    const failure = provider.start(host('render', { id: 'no-such-vm' }), signal);
    await expect(failure).rejects.toMatchObject({
      code: 'PROVIDER_FAILED',
      context: { host: 'render', controller: 'vm' },
    });
    await expect(failure).rejects.toThrow(
      /host render: no domain named "no-such-vm" at test:\/\/\/.*node-\d+\.xml/,
    );
    await expect(provider.stop(host('render', { id: 'no-such-vm' }), signal)).rejects.toThrow(
      /no domain named "no-such-vm"/,
    );
  });

  it('a domain in another state (crashed) is refused with its state', async () => {
    const { provider, host } = providerOn([{ name: 'vm1', state: 'crashed' }]);
    await providerFailure(
      provider.start(host('vm1'), signal),
      /domain "vm1" is crashed: batchd starts a domain that is running, paused or shut off/,
    );
    expect((await provider.inspect('vm1', signal))?.state).toBe('crashed');
  });
});

describe('libvirt provider: batchd’s mark in the domain’s metadata', () => {
  const LIBOSINFO =
    '<libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0"><libosinfo:os id="http://debian.org/debian/12"/></libosinfo:libosinfo>';

  it('sits beside another application’s metadata, which stays as it was', () => {
    const xml = `<domain type='kvm'>\n  <name>vm1</name>\n  <metadata>\n    ${LIBOSINFO}\n  </metadata>\n</domain>\n`;
    const tags = { 'batchd.spool': 'a&b "c"', 'batchd.host': 'h$&1' };
    const marked = withTags(xml, tags);
    expect(readTags(marked)).toEqual(tags);
    expect(marked).toContain(LIBOSINFO);
    expect(readTags(withTags(marked, { 'batchd.spool': 's2' }))).toEqual({ 'batchd.spool': 's2' });
    expect(withoutTags(marked)).toContain(LIBOSINFO);
    expect(readTags(withoutTags(marked))).toBeUndefined();
    expect(readTags(withTags(`<domain type='kvm'>\n  <name>vm1</name>\n</domain>\n`, tags))).toEqual(tags);
  });

  it('is added on start and removed on stop of a domain that has other metadata, through libvirt', async () => {
    const { provider, host } = providerOn([{ name: 'vm1', state: 'shutoff', otherMetadata: LIBOSINFO }]);
    await provider.start(host('vm1'), signal);
    expect((await provider.inspect('vm1', signal))?.tags).toEqual({
      'batchd.spool': SPOOL,
      'batchd.host': 'vm1',
    });
    await provider.stop(host('vm1'), signal);
    expect(await provider.inspect('vm1', signal)).toEqual({ state: 'shut off', tags: undefined });
  });
});

describe('libvirt provider: domains defined from a template', () => {
  it('defines and starts the host’s domain tagged as created, lists it as owned, and undefines it on stop', async () => {
    const { provider, host } = providerOn([]);
    writeFileSync(path.join(dir, 'render.xml'), domainTemplate());
    const render = host('render', { id: 'render-vm', settings: { template: 'render.xml' } });
    await provider.start(render, signal);
    await provider.start(render, signal); // idempotent
    expect(await provider.inspect('render-vm', signal)).toEqual({
      state: 'running',
      tags: { 'batchd.spool': SPOOL, 'batchd.host': 'render', 'batchd.created': 'true' },
    });
    expect(await provider.owned(signal)).toEqual([
      { id: 'render-vm', host: 'render', running: true, created: true },
    ]);
    await provider.stop(render, signal);
    expect(await provider.inspect('render-vm', signal)).toBeUndefined();
    expect(await provider.owned(signal)).toEqual([]);
    await provider.stop(render, signal); // already gone
  });

  it('a template host will not use a same-named domain that batchd did not define', async () => {
    const { provider, host } = providerOn([{ name: 'render-vm', state: 'shutoff' }]);
    writeFileSync(path.join(dir, 'render.xml'), domainTemplate());
    const render = host('render', { id: 'render-vm', settings: { template: 'render.xml' } });
    await expect(provider.start(render, signal)).rejects.toThrow(/exists but batchd did not define it/);
    await expect(provider.stop(render, signal)).rejects.toThrow(/exists but batchd did not define it/);
    expect(await provider.inspect('render-vm', signal)).toEqual({ state: 'shut off', tags: undefined });
  });

  it('a missing template file is a PROVIDER_FAILED error naming the file', async () => {
    const { provider, host } = providerOn([]);
    const render = host('render', { settings: { template: 'missing.xml' } });
    await providerFailure(
      provider.start(render, signal),
      `cannot read the domain template ${path.join(dir, 'missing.xml')}`,
    );
  });
});

describe('libvirt provider: leftovers of a crashed daemon', () => {
  const leftovers: FixtureDomain[] = [
    { name: 'started', state: 'running', batchd: { spool: SPOOL, host: 'a' } },
    { name: 'created', state: 'running', batchd: { spool: SPOOL, host: 'b', created: 'true' } },
    { name: 'foreign', state: 'running' },
    { name: 'other-spool', state: 'running', batchd: { spool: 'another-spool', host: 'c', created: 'true' } },
  ];

  it('owned lists only the domains carrying this spool’s mark', async () => {
    const { provider } = providerOn(leftovers);
    const owned = await provider.owned(signal);
    expect(owned.sort((x, y) => x.id.localeCompare(y.id))).toEqual([
      { id: 'created', host: 'b', running: true, created: true },
      { id: 'started', host: 'a', running: true, created: false },
    ]);
  });

  it('reap shuts a started leftover down and unmarks it, and undefines a created one', async () => {
    const { provider } = providerOn(leftovers);
    for (const leftover of await provider.owned(signal)) await provider.reap(leftover, signal);
    expect(await provider.inspect('started', signal)).toEqual({ state: 'shut off', tags: undefined });
    expect(await provider.inspect('created', signal)).toBeUndefined();
    expect(await provider.owned(signal)).toEqual([]);
  });

  it('a domain without this spool’s mark is never touched, even when named to reap', async () => {
    const { provider } = providerOn(leftovers);
    await provider.reap({ id: 'foreign', host: undefined, running: true, created: false }, signal);
    await provider.reap({ id: 'other-spool', host: 'c', running: true, created: true }, signal);
    expect(await provider.inspect('foreign', signal)).toEqual({ state: 'running', tags: undefined });
    expect(await provider.inspect('other-spool', signal)).toEqual({
      state: 'running',
      tags: { 'batchd.spool': 'another-spool', 'batchd.host': 'c', 'batchd.created': 'true' },
    });
  });
});

describe('libvirt provider: where to SSH', () => {
  const nic: FixtureDomain[] = [{ name: 'vm1', state: 'running', nic: true }];

  it('uses the host file’s host_name when it has one', async () => {
    const { provider, host } = providerOn(nic);
    expect(await provider.locate(host('vm1', { hostName: '127.0.0.1', port: 2222 }), signal)).toEqual({
      address: '127.0.0.1',
      port: 2222,
    });
  });

  it('falls back to the domain’s interface address from virsh domifaddr on the same connection URI', async () => {
    const { provider, host } = providerOn(nic);
    expect(await provider.locate(host('vm1'), signal)).toEqual({ address: '192.168.0.1', port: 22 });
  });

  it('use_host_name: true never asks the domain, and requires a host_name', async () => {
    const { provider, host } = providerOn(nic, { use_host_name: true });
    expect(await provider.locate(host('vm1', { hostName: '127.0.0.1' }), signal)).toEqual({
      address: '127.0.0.1',
      port: 22,
    });
    await expect(provider.locate(host('vm1'), signal)).rejects.toMatchObject({
      code: 'PROVIDER_FAILED',
      message: 'host vm1: use_host_name is set but the host file has no host_name',
    });
  });

  it('no address for the domain is a PROVIDER_FAILED error with virsh’s answer', async () => {
    const { provider, host } = providerOn(nic, { address_timeout: 0 });
    await providerFailure(
      provider.locate(host('render', { id: 'no-such-vm' }), signal),
      /no address for domain "no-such-vm".*--source lease: failed to get domain 'no-such-vm'/,
    );
  });
});

describe('libvirt provider: its connection', () => {
  let libvirtd: Libvirtd | undefined;
  afterAll(() => libvirtd?.stop());

  it('opens a new connection after libvirtd restarted, once a call on the old one failed', async () => {
    libvirtd = await Libvirtd.start();
    const provider = libvirt.create(
      libvirt.config.parse({ connection_string: libvirtd.uri }),
      providerContext(dir, SPOOL),
    ) as LibvirtProvider;
    open.push(provider);
    expect((await provider.inspect('test', signal))?.state).toBe('running');
    await libvirtd.restart();
    await providerFailure(provider.inspect('test', signal), /inspect domain "test" failed/);
    expect((await provider.inspect('test', signal))?.state).toBe('running');
  });
});

describe('libvirt controller files', () => {
  it('batchd’s own qemu.yaml and the shipped example load, and creating their providers connects nowhere', async () => {
    const etc = path.join(dir, 'etc');
    mkdirSync(path.join(etc, 'controllers'), { recursive: true });
    copyFileSync(
      original('sample-configs', 'controllers', 'qemu.yaml'),
      path.join(etc, 'controllers', 'batchd.yaml'),
    );
    copyFileSync(
      path.join(REPO, 'etc', 'controllers', 'qemu.yaml'),
      path.join(etc, 'controllers', 'example.yaml'),
    );
    const log = pino({ level: 'silent' });
    const events = new EventBus(() => undefined);
    const controllers = new Controllers(
      new ConfigStore(etc, events, log),
      new PluginRegistry(etc),
      events,
      log,
      {
        'batchd.spool': SPOOL,
      },
    );
    await controllers.start();
    expect(controllers.get('batchd')).toMatchObject({
      driver: 'libvirt',
      enable_start_stop: true,
      settings: { connection_string: 'qemu:///system', stop_timeout: 120, use_host_name: false },
    });
    expect(controllers.get('example')).toMatchObject({ driver: 'libvirt', enable_start_stop: false });
    // There is no libvirtd here: a provider that connected on creation would fail.
    expect(controllers.provider('batchd')?.name).toBe('libvirt');
    expect('start' in (controllers.provider('example') ?? {})).toBe(false);
    await controllers.close();
  });

  it('a misspelt field is refused with its name', () => {
    const parsed = libvirt.config.safeParse({ connection_string: 'qemu:///system', stop_timout: 5 });
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toContain('stop_timout');
  });

  it('a connection that cannot be opened is a PROVIDER_FAILED error on first use', async () => {
    const { host } = providerOn([]);
    const broken = libvirt.create(
      libvirt.config.parse({ connection_string: `test://${path.join(dir, 'no-such-node.xml')}` }),
      providerContext(dir, SPOOL),
    );
    open.push(broken);
    await providerFailure(
      broken.start?.(host('vm1'), signal),
      /cannot connect to libvirt at test:\/\/\/.*no-such-node\.xml/,
    );
    await expect(broken.owned?.(signal)).rejects.toThrow(/cannot connect to libvirt/);
  });
});
