/**
 * Contract tests of the Linode provider against a stand-in built from Linode's API v4
 * documentation (test/helpers/linode-standin.ts): no Linode emulator exists.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { BatchdError, type HostProvider, type ProviderHost } from '../../daemon/plugins/api.ts';
import plugin from '../../plugins/linode/index.ts';
import { providerContext, providerHost, type LoggedRecord } from '../helpers/providers.ts';
import { startLinodeStandin, type LinodeStandin } from '../helpers/linode-standin.ts';

const TOKEN = 'linode-token-0123456789abcdef';
const SPOOL = '5b0d1e2f3a4b5c6d';
const ROOT = path.resolve(import.meta.dirname, '..', '..');

let standin: LinodeStandin;
let dir: string;
let records: LoggedRecord[];
const providers: HostProvider[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'batchd-linode-'));
  writeFileSync(path.join(dir, 'linode.token'), `${TOKEN}\n`, { mode: 0o600 });
});
afterEach(async () => {
  for (const p of providers.splice(0)) await p.close?.();
  await standin?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(options: { stepMs?: number; maxPageSize?: number } = {}): Promise<void> {
  standin = await startLinodeStandin({ token: TOKEN, ...options });
}

function provider(fields: Record<string, unknown> = {}, spool = SPOOL): HostProvider {
  const config = plugin.config.parse({
    token_file: 'linode.token',
    base_url: standin.baseUrl,
    poll_interval: 0.05,
    wait_timeout: 10,
    ...fields,
  });
  const ctx = providerContext(dir, spool, 'linode');
  records = ctx.records;
  const made = plugin.create(config, ctx);
  providers.push(made);
  return made;
}

function host(name: string, extra: Partial<ProviderHost> = {}, block?: unknown, spool = SPOOL): ProviderHost {
  const settings = block === undefined ? undefined : plugin.host?.parse(block);
  return providerHost(providerContext(dir, spool, 'linode'), name, { ...extra, settings });
}

const signal = (): AbortSignal => AbortSignal.timeout(30_000);

async function rejection(promise: Promise<unknown> | undefined): Promise<BatchdError> {
  const error = await (promise ?? Promise.resolve()).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BatchdError);
  return error as BatchdError;
}

const calls = (): string[] => standin.requests.map((r) => `${r.method} ${r.path.replace(/\/\d+/, '/ID')}`);

describe('Linode provider (contract test against a stand-in of API v4)', () => {
  it('boots an offline Linode found by label, waits until it runs, and shuts it down', async () => {
    await serve();
    const existing = standin.add('render-box', 'offline', ['team-a']);
    const p = provider();
    const h = host('render1', { id: 'render-box' });

    await p.start?.(h, signal());
    expect(standin.byLabel('render-box')?.status).toBe('running');
    // Booted by batchd: it carries the spool's tags while it runs; its own tags stay.
    expect(standin.byLabel('render-box')?.tags.sort()).toEqual(
      ['team-a', `batchd.spool=${SPOOL}`, 'batchd.host=render1'].sort(),
    );
    // The package lists on /v4beta/ and acts on /v4/: the stand-in serves both.
    expect(calls()).toContain('GET /v4beta/linode/instances');
    expect(calls()).toContain('POST /v4/linode/instances/ID/boot');

    const boots = calls().filter((c) => c.endsWith('/boot')).length;
    await p.start?.(h, signal()); // running: nothing to do
    expect(calls().filter((c) => c.endsWith('/boot')).length).toBe(boots);

    expect(await p.locate?.(h, signal())).toEqual({ address: existing.ipv4[0], port: 22 });

    await p.stop?.(h, signal());
    expect(standin.byLabel('render-box')?.status).toBe('offline');
    expect(calls()).toContain('POST /v4/linode/instances/ID/shutdown');
    expect(standin.byLabel('render-box')?.tags).toEqual(['team-a']);
    await p.stop?.(h, signal()); // idempotent
    expect(standin.byLabel('render-box')?.status).toBe('offline');
  });

  it('creates a missing Linode from the host block with tags, waits until it runs, and deletes it on stop', async () => {
    await serve();
    writeFileSync(path.join(dir, 'root.pass'), 'S3cret-root-pass\n');
    writeFileSync(path.join(dir, 'id.pub'), 'ssh-ed25519 AAAAC3NzaTEST batchd@test\n');
    const p = provider({ actions: 'create_and_delete' });
    const h = host(
      'gpu1',
      {},
      {
        type: 'g6-standard-2',
        image: 'linode/debian12',
        region: 'eu-west',
        root_pass_file: 'root.pass',
        stackscript_id: 1234,
        stackscript_data: { role: 'render' },
        authorized_keys: ['id.pub'],
      },
    );

    await p.start?.(h, signal());
    const made = standin.byLabel('gpu1');
    expect(made?.status).toBe('running');
    expect(made?.tags.sort()).toEqual([`batchd.spool=${SPOOL}`, 'batchd.host=gpu1', 'batchd.created'].sort());
    expect(made?.created_with).toMatchObject({
      label: 'gpu1',
      type: 'g6-standard-2',
      image: 'linode/debian12',
      region: 'eu-west',
      root_pass: 'S3cret-root-pass',
      stackscript_id: 1234,
      stackscript_data: { role: 'render' },
      authorized_keys: ['ssh-ed25519 AAAAC3NzaTEST batchd@test'],
    });
    expect(calls()).toContain('POST /v4beta/linode/instances');
    await p.start?.(h, signal()); // running: not created twice
    expect(standin.linodes().filter((l) => l.label === 'gpu1')).toHaveLength(1);
    expect(JSON.stringify(records)).not.toContain('S3cret-root-pass');

    await p.stop?.(h, signal());
    expect(standin.byLabel('gpu1')).toBeUndefined();
    expect(calls()).toContain('DELETE /v4/linode/instances/ID');
    await p.stop?.(h, signal()); // nothing left to delete
  });

  it('never deletes a Linode it did not create, even under create_and_delete', async () => {
    await serve();
    standin.add('shared', 'running', ['prod']);
    const p = provider({ actions: 'create_and_delete' });
    await p.stop?.(host('shared'), signal());
    expect(standin.byLabel('shared')?.status).toBe('offline');
  });

  it('reads the token from its file at each use; a wrong token is a clear error that never shows it', async () => {
    await serve();
    standin.add('box', 'running');
    const wrong = 'wrong-token-fedcba9876543210';
    writeFileSync(path.join(dir, 'linode.token'), `${wrong} some comment\n`);
    const p = provider();
    const error = await rejection(p.start?.(host('box'), signal()));
    expect(error.code).toBe('PROVIDER_FAILED');
    expect(error.message).toMatch(/list Linodes failed: HTTP 401: Invalid Token/);
    expect(error.context).toMatchObject({ host: 'box', controller: 'linode', status: 401 });
    const everything = JSON.stringify([error.message, error.context, error.cause ?? null, records]);
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(TOKEN);

    // A new token in the file is used by the next call, without a restart.
    writeFileSync(path.join(dir, 'linode.token'), `${TOKEN}\n`);
    await p.start?.(host('box'), signal());
    expect(standin.requests.at(-1)?.authorized).toBe(true);

    rmSync(path.join(dir, 'linode.token'));
    const missing = await rejection(p.stop?.(host('box'), signal()));
    expect(missing.message).toContain(`cannot read token_file ${path.join(dir, 'linode.token')} (ENOENT)`);
  });

  it('lists only Linodes carrying its spool tag, across pages, and reaps them', async () => {
    await serve({ maxPageSize: 2 });
    const p = provider();
    standin.add('untagged', 'running');
    standin.add('other-spool', 'running', ['batchd.spool=ffffffffffffffff', 'batchd.created']);
    standin.add('booted', 'offline');
    await p.start?.(host('booted'), signal());
    const created = provider({ actions: 'create_and_delete' });
    writeFileSync(path.join(dir, 'root.pass'), 'pw-for-root\n');
    const block = {
      type: 'g6-nanode-1',
      image: 'linode/debian12',
      region: 'us-east',
      root_pass_file: 'root.pass',
    };
    await created.start?.(host('made', {}, block), signal());
    standin.add('filler', 'offline');

    const owned = await p.owned?.(signal());
    expect(owned?.map((o) => o.host).sort()).toEqual(['booted', 'made']);
    expect(owned?.find((o) => o.host === 'booted')).toMatchObject({ running: true, created: false });
    expect(owned?.find((o) => o.host === 'made')).toMatchObject({ running: true, created: true });
    // Seven Linodes, two per page: it read every page.
    expect(calls().filter((c) => c === 'GET /v4beta/linode/instances').length).toBeGreaterThan(1);

    for (const leftover of owned ?? []) await p.reap?.(leftover, signal());
    expect(standin.byLabel('made')).toBeUndefined();
    expect(standin.byLabel('booted')?.status).toBe('offline');
    expect(standin.byLabel('untagged')?.status).toBe('running');
    expect(standin.byLabel('other-spool')?.status).toBe('running');
    expect(await p.owned?.(signal())).toEqual([]);
  });

  it("maps Linode's errors to provider failures with its reasons", async () => {
    await serve();
    writeFileSync(path.join(dir, 'root.pass'), 'pw\n');
    const p = provider({ actions: 'create_and_delete' });
    const bad = host(
      'bad1',
      {},
      { type: 'g9-huge', image: 'linode/debian12', region: 'mars', root_pass_file: 'root.pass' },
    );
    const error = await rejection(p.start?.(bad, signal()));
    expect(error.code).toBe('PROVIDER_FAILED');
    expect(error.message).toContain('create Linode failed: HTTP 400');
    expect(error.message).toContain('type: A valid plan type by that ID was not found');
    expect(error.message).toContain('region: region is not valid');

    const missing = await rejection(provider().start?.(host('nowhere'), signal()));
    expect(missing.message).toContain('no Linode is labelled "nowhere"');

    const unreachable = await rejection(provider({ base_url: 'http://127.0.0.1:1' }).owned?.(signal()));
    expect(unreachable.message).toMatch(/list Linodes failed: .*ECONNREFUSED/);
  });

  it('gives up waiting for a Linode after wait_timeout with its status', async () => {
    await serve({ stepMs: 5_000 });
    standin.add('slow', 'offline');
    const p = provider({ wait_timeout: 0.5 });
    const error = await rejection(p.start?.(host('slow'), signal()));
    expect(error.message).toMatch(/Linode \d+ is still booting after 0.5 s of waiting for running/);
  });

  it('uses the host file host_name when use_host_name is set, and its first public IPv4 otherwise', async () => {
    await serve();
    const box = standin.add('box', 'running');
    expect(
      await provider({ use_host_name: true }).locate?.(
        host('box', { hostName: '127.0.0.1', port: 2200 }),
        signal(),
      ),
    ).toEqual({
      address: '127.0.0.1',
      port: 2200,
    });
    expect((await provider().locate?.(host('box', { hostName: '127.0.0.1' }), signal()))?.address).toBe(
      box.ipv4[0],
    );
  });

  it('loads the shipped example and rejects a create block without a root password', () => {
    const shipped = parse(
      readFileSync(path.join(ROOT, 'etc', 'controllers', 'linode.yaml'), 'utf8'),
    ) as Record<string, unknown>;
    expect(plugin.drivers).toContain(shipped.driver);
    const { driver: _d, enable_start_stop: _e, ...own } = shipped;
    expect(plugin.config.safeParse(own).success).toBe(true);
    expect(plugin.config.parse({ token_file: '/etc/linode.token' })).toMatchObject({
      actions: 'boot_and_shutdown',
      wait_timeout: 60,
    });
    const noPass = plugin.host?.safeParse({
      type: 'g6-nanode-1',
      image: 'linode/debian12',
      region: 'us-east',
    });
    expect(noPass?.success).toBe(false);
    // A host without a block (the daemon passes {}) can be booted, not created.
    expect(plugin.host?.safeParse({}).success).toBe(true);
  });
});
