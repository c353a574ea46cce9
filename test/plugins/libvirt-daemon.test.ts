import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import libvirt from '../../plugins/libvirt/index.ts';
import type { LibvirtProvider } from '../../plugins/libvirt/provider.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { dropJob, makeDispatchEnv, startInProcess } from '../helpers/dispatch.ts';
import { makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { definableDomain, domainTemplate, Libvirtd, writeNodeXml } from '../helpers/libvirt-fixture.ts';
import { GATED, gatedJobRuns, providerContext, spoolId } from '../helpers/providers.ts';
import { finished, hostFile, hostState, log } from '../ssh/ssh-env.ts';
import { type Sshd, startSshd } from '../ssh/sshd.ts';

/** waitFor for a check that asks libvirt. */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const signal = new AbortController().signal;

/**
 * The domains are libvirt's test driver's (a node XML fixture per daemon); the SSH endpoint the
 * hosts point at with host_name/port is a real sshd on loopback.
 */
describe('jobs on libvirt hosts through the daemon', () => {
  let sshd: Sshd;
  let env: TestEnv;
  let daemon: Daemon;
  const gate = (name: string): string => path.join(env.root, `gate-${name}`);
  const provider = (): LibvirtProvider => daemon.controllers.provider('v') as unknown as LibvirtProvider;
  const domain = (id: string) => provider().inspect(id, signal);

  beforeAll(async () => {
    sshd = await startSshd();
    env = makeDispatchEnv({
      queues: { default: null },
      config: { dispatcher: { workers: 2, reap_interval: 1, lock_stale: 3 } },
      jobTypes: {
        hello: { template: 'echo hello from $BATCHD_HOST' },
        // Runs until the test lets it go, so the domain can be looked at while it serves a job.
        gated: GATED,
      },
    });
    const uri = writeNodeXml(env.root, 'node.xml', [
      { name: 'render-vm', state: 'shutoff' },
      { name: 'paused-vm', state: 'paused' },
      { name: 'broken-vm', state: 'crashed' },
      { name: 'stranger', state: 'running' },
    ]);
    env.writeConfig('controllers/v.yaml', { driver: 'libvirt', connection_string: uri, stop_timeout: 5 });
    env.writeConfig('templates/made.xml', domainTemplate());
    const remote = path.join(env.root, 'remote');
    const host = (extra: Record<string, unknown>) =>
      hostFile(sshd, remote, { controller: 'v', startup_time: 0, shutdown_timeout: 1, ...extra });
    env.writeConfig('hosts/render.yaml', host({ controller_id: 'render-vm' }));
    env.writeConfig('hosts/paused.yaml', host({ controller_id: 'paused-vm' }));
    env.writeConfig('hosts/crashed.yaml', host({ controller_id: 'broken-vm' }));
    env.writeConfig('hosts/ghost.yaml', host({ controller_id: 'no-such-vm' }));
    env.writeConfig('hosts/made.yaml', host({ libvirt: { template: 'templates/made.xml' } }));
    daemon = await startInProcess(env);
  });

  afterAll(async () => {
    await daemon?.stop();
    await sshd?.stop();
    env?.cleanup();
  });

  it('starts a shut-off domain for a job, runs the job over SSH, and shuts the domain down after shutdown_timeout', async () => {
    expect(await domain('render-vm')).toEqual({ state: 'shut off', tags: undefined });
    const id = await dropJob(
      env,
      'default',
      { type: 'gated', host: 'render', params: { gate: gate('render') } },
      'render',
    );
    await gatedJobRuns(env, id);
    const spool = spoolId(env);
    expect(await domain('render-vm')).toEqual({
      state: 'running',
      tags: { 'batchd.spool': spool, 'batchd.host': 'render' },
    });
    writeFileSync(gate('render'), '');
    const job = await finished(env, id, 20_000);
    expect(job.state, job.record.last?.error).toBe('done');
    expect(log(job.dir, 'stdout.log')).toBe('waiting\nthrough\n');
    await waitFor(() => hostState(daemon, 'render') === 'stopped', 15_000, 'render stopped');
    // Not defined by batchd: shut down and kept, without batchd's mark.
    expect(await domain('render-vm')).toEqual({ state: 'shut off', tags: undefined });
  });

  it('resumes a paused domain for a job', async () => {
    const id = await dropJob(env, 'default', { type: 'hello', host: 'paused' }, 'paused');
    const job = await finished(env, id, 20_000);
    expect(job.state, job.record.last?.error).toBe('done');
    expect(log(job.dir, 'stdout.log')).toBe('hello from paused\n');
    await waitFor(() => hostState(daemon, 'paused') === 'stopped', 15_000, 'paused stopped');
    expect((await domain('paused-vm'))?.state).toBe('shut off');
  });

  it('defines a host’s domain from its template, and removes it once the host is idle', async () => {
    const id = await dropJob(
      env,
      'default',
      { type: 'gated', host: 'made', params: { gate: gate('made') } },
      'made',
    );
    await gatedJobRuns(env, id);
    const spool = spoolId(env);
    const tags = { 'batchd.spool': spool, 'batchd.host': 'made', 'batchd.created': 'true' };
    expect(await domain('made')).toEqual({ state: 'running', tags });
    expect(await provider().owned(signal)).toEqual([
      { id: 'made', host: 'made', running: true, created: true },
    ]);
    writeFileSync(gate('made'), '');
    const job = await finished(env, id, 20_000);
    expect(job.state, job.record.last?.error).toBe('done');
    await until(async () => (await domain('made')) === undefined, 15_000, 'the defined domain removed');
    expect(await provider().owned(signal)).toEqual([]);
  });

  it('fails the jobs of a host whose domain is missing or in a state batchd does not start, with the reason', async () => {
    const ghost = await dropJob(env, 'default', { type: 'hello', host: 'ghost' }, 'ghost');
    const crashed = await dropJob(env, 'default', { type: 'hello', host: 'crashed' }, 'crashed');
    const [g, c] = await Promise.all([finished(env, ghost, 20_000), finished(env, crashed, 20_000)]);
    expect(g.state).toBe('failed');
    expect(g.record.last?.error).toContain('no domain named "no-such-vm"');
    expect(c.state).toBe('failed');
    expect(c.record.last?.error).toContain('domain "broken-vm" is crashed');
    expect((await domain('broken-vm'))?.state).toBe('crashed');
  });

  it('leaves a domain batchd never used alone', async () => {
    expect(await domain('stranger')).toEqual({ state: 'running', tags: undefined });
  });
});

/**
 * A crash needs a hypervisor that outlives the daemon: libvirt's test driver in a private
 * libvirtd (`test+unix:///default`), whose domains keep their state across batchd processes.
 */
describe('when the daemon is killed while a job runs on a libvirt host', () => {
  let sshd: Sshd;
  let libvirtd: Libvirtd;
  let env: TestEnv;
  let daemon: DaemonProcess | undefined;
  let observer: LibvirtProvider;
  const domain = (id: string) => observer.inspect(id, signal);

  beforeAll(async () => {
    [sshd, libvirtd] = await Promise.all([startSshd(), Libvirtd.start()]);
    await libvirtd.define(definableDomain('render-vm'), false);
    await libvirtd.define(definableDomain('spare-vm'), false);
    env = makeEnv({
      config: { dispatcher: { workers: 2, grace_time: 0.5, reap_interval: 1, lock_stale: 3 } },
      queues: { default: null },
      jobTypes: {
        hello: { template: 'echo hello from $BATCHD_HOST' },
        gated: { ...GATED, on_fail: 'retry' },
      },
    });
    env.writeConfig('controllers/v.yaml', {
      driver: 'libvirt',
      connection_string: libvirtd.uri,
      stop_timeout: 5,
    });
    env.writeConfig('templates/made.xml', domainTemplate());
    const remote = path.join(env.root, 'remote');
    const host = (extra: Record<string, unknown>) =>
      hostFile(sshd, remote, { controller: 'v', startup_time: 0, shutdown_timeout: 1, ...extra });
    env.writeConfig('hosts/render.yaml', host({ controller_id: 'render-vm' }));
    // These stay up once started (shutdown_timeout 1 h): only reaping stops them.
    env.writeConfig('hosts/spare.yaml', host({ controller_id: 'spare-vm', shutdown_timeout: 3600 }));
    env.writeConfig(
      'hosts/made.yaml',
      host({ libvirt: { template: 'templates/made.xml' }, shutdown_timeout: 3600 }),
    );
    observer = libvirt.create(
      libvirt.config.parse({ connection_string: libvirtd.uri }),
      providerContext(env.root, 'observer'),
    ) as LibvirtProvider;
  });

  afterAll(async () => {
    daemon?.kill('SIGKILL');
    await daemon?.exited;
    await observer?.close();
    await Promise.all([libvirtd?.stop(), sshd?.stop()]);
    env?.cleanup();
  });

  it('recovers the job, stops or removes the dead daemon’s domains once idle, and leaves others alone', async () => {
    daemon = await startDaemon(env.etc, env.spool);
    for (const host of ['spare', 'made']) {
      const warm = await dropJob(env, 'default', { type: 'hello', host }, `warm-${host}`);
      const job = await finished(env, warm, 20_000);
      expect(job.state, job.record.last?.error).toBe('done');
    }
    const gate = path.join(env.root, 'gate');
    const id = await dropJob(
      env,
      'default',
      { type: 'gated', host: 'render', params: { gate } },
      'interrupted',
    );
    await gatedJobRuns(env, id);
    const spool = spoolId(env);
    daemon.kill('SIGKILL');
    await daemon.exited;
    // The hypervisor kept what the dead daemon started, marked as this spool's.
    expect(await domain('render-vm')).toEqual({
      state: 'running',
      tags: { 'batchd.spool': spool, 'batchd.host': 'render' },
    });
    expect((await domain('spare-vm'))?.state).toBe('running');
    expect((await domain('made'))?.tags).toEqual({
      'batchd.spool': spool,
      'batchd.host': 'made',
      'batchd.created': 'true',
    });
    // One of ours that no dispatcher claims (its host file is gone), and another spool's.
    await libvirtd.define(definableDomain('orphan', { spool, host: 'orphan', created: 'true' }), true);
    await libvirtd.define(
      definableDomain('other-spool', { spool: 'another-spool', host: 'render', created: 'true' }),
      true,
    );

    daemon = await startDaemon(env.etc, env.spool);
    writeFileSync(gate, '');
    const job = await finished(env, id, 30_000);
    expect(job.state, JSON.stringify(job.record.history)).toBe('done');
    expect(job.record.attempts).toBe(2);
    await until(
      async () =>
        (await domain('spare-vm'))?.state === 'shut off' &&
        (await domain('render-vm'))?.state === 'shut off' &&
        (await domain('made')) === undefined &&
        (await domain('orphan')) === undefined,
      30_000,
      'the dead daemon’s domains stopped or removed',
    );
    expect(await domain('render-vm')).toEqual({ state: 'shut off', tags: undefined });
    // libvirt's own `test` domain (no mark) and another spool's are untouched.
    expect(await domain('test')).toEqual({ state: 'running', tags: undefined });
    expect(await domain('other-spool')).toEqual({
      state: 'running',
      tags: { 'batchd.spool': 'another-spool', 'batchd.host': 'render', 'batchd.created': 'true' },
    });
  });
});
