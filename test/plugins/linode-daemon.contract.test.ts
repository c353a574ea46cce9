/**
 * Contract tests of Linode hosts through the daemon: the Linodes are a stand-in built from
 * Linode's API v4 documentation (test/helpers/linode-standin.ts); the SSH endpoint of every
 * host is a real sshd on loopback, reached through the controller's `use_host_name`.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { dropJob, makeDispatchEnv, startInProcess } from '../helpers/dispatch.ts';
import { makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { type LinodeStandin, startLinodeStandin } from '../helpers/linode-standin.ts';
import { GATED, gatedJobRuns, spoolId } from '../helpers/providers.ts';
import { finished, hostFile, hostState, log } from '../ssh/ssh-env.ts';
import { type Sshd, startSshd } from '../ssh/sshd.ts';

const TOKEN = 'daemon-test-token-0f1e2d3c4b5a';

let sshd: Sshd;
let standin: LinodeStandin;

beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await Promise.all([sshd?.stop(), standin?.stop()]);
});

/** Two controllers on the stand-in (batchd's two actions), their token in a file of the config. */
function controllers(env: TestEnv): void {
  env.writeConfig('linode.token', `${TOKEN}\n`);
  env.writeConfig('linode.wrong-token', 'not-the-token-9a8b7c\n');
  env.writeConfig('root.pass', 'Root-pass-for-tests\n');
  const common = {
    driver: 'linode',
    token_file: 'linode.token',
    base_url: standin.baseUrl,
    use_host_name: true,
    poll_interval: 0.1,
    wait_timeout: 15,
  };
  env.writeConfig('controllers/linode.yaml', { ...common, actions: 'boot_and_shutdown' });
  env.writeConfig('controllers/linode-made.yaml', { ...common, actions: 'create_and_delete' });
  env.writeConfig('controllers/linode-locked.yaml', { ...common, token_file: 'linode.wrong-token' });
}

const BLOCK = {
  type: 'g6-nanode-1',
  image: 'linode/debian12',
  region: 'eu-west',
  root_pass_file: 'root.pass',
};

describe('jobs on Linode hosts through the daemon (contract test)', () => {
  let env: TestEnv;
  let daemon: Daemon;

  beforeAll(async () => {
    standin = await startLinodeStandin({ token: TOKEN, stepMs: 200 });
    standin.add('render-box', 'offline');
    standin.add('stranger', 'running');
    env = makeDispatchEnv({
      queues: { default: null },
      config: { dispatcher: { workers: 2, reap_interval: 1, lock_stale: 3 } },
      jobTypes: { hello: { template: 'echo hello from $BATCHD_HOST' }, gated: GATED },
    });
    controllers(env);
    const remote = path.join(env.root, 'remote');
    const host = (extra: Record<string, unknown>) =>
      hostFile(sshd, remote, { controller: 'linode', startup_time: 0, shutdown_timeout: 1, ...extra });
    env.writeConfig('hosts/render.yaml', host({ controller_id: 'render-box' }));
    env.writeConfig('hosts/ghost.yaml', host({ controller_id: 'no-such-box' }));
    env.writeConfig('hosts/locked.yaml', host({ controller: 'linode-locked', controller_id: 'stranger' }));
    env.writeConfig('hosts/made.yaml', host({ controller: 'linode-made', linode: BLOCK }));
    daemon = await startInProcess(env);
  });
  afterAll(async () => {
    await daemon?.stop();
    await standin?.stop();
    env?.cleanup();
  });

  it('boots an offline Linode for a job, runs the job over SSH, and shuts it down after shutdown_timeout', async () => {
    const gate = path.join(env.root, 'gate-render');
    const id = await dropJob(env, 'default', { type: 'gated', host: 'render', params: { gate } }, 'render');
    await gatedJobRuns(env, id);
    expect(standin.byLabel('render-box')?.status).toBe('running');
    expect(standin.byLabel('render-box')?.tags).toContain(`batchd.spool=${spoolId(env)}`);
    writeFileSync(gate, '');
    const job = await finished(env, id, 20_000);
    expect(job.state, job.record.last?.error).toBe('done');
    expect(log(job.dir, 'stdout.log')).toBe('waiting\nthrough\n');
    await waitFor(() => hostState(daemon, 'render') === 'stopped', 15_000, 'render stopped');
    expect(standin.byLabel('render-box')?.status).toBe('offline');
    expect(standin.byLabel('render-box')?.tags).toEqual([]);
  });

  it('creates a Linode from the host block for a job and deletes it once the host is idle', async () => {
    const id = await dropJob(env, 'default', { type: 'hello', host: 'made' }, 'made');
    const job = await finished(env, id, 20_000);
    expect(job.state, job.record.last?.error).toBe('done');
    expect(log(job.dir, 'stdout.log')).toBe('hello from made\n');
    expect(standin.requests.some((r) => r.method === 'POST' && r.path === '/v4beta/linode/instances')).toBe(
      true,
    );
    await waitFor(() => standin.byLabel('made') === undefined, 15_000, 'made deleted');
    expect(
      standin.requests.some((r) => r.method === 'DELETE' && r.path.startsWith('/v4/linode/instances/')),
    ).toBe(true);
  });

  it("records a refused start on the job with Linode's reason, never the token", async () => {
    const ghost = await dropJob(env, 'default', { type: 'hello', host: 'ghost' }, 'ghost');
    const locked = await dropJob(env, 'default', { type: 'hello', host: 'locked' }, 'locked');
    const [g, l] = await Promise.all([finished(env, ghost, 20_000), finished(env, locked, 20_000)]);
    expect(g.state).toBe('failed');
    expect(g.record.last?.error).toContain('no Linode is labelled "no-such-box"');
    expect(l.state).toBe('failed');
    expect(l.record.last?.error).toContain('HTTP 401: Invalid Token');
    expect(JSON.stringify([g.record, l.record])).not.toContain('not-the-token');
    expect(standin.byLabel('stranger')?.status).toBe('running');
  });
});

describe('when the daemon is killed while a job runs on a Linode host (contract test)', () => {
  let env: TestEnv;
  let daemon: DaemonProcess | undefined;

  afterAll(async () => {
    daemon?.kill('SIGKILL');
    await daemon?.exited;
    env?.cleanup();
  });

  it('recovers the job, shuts down or deletes the dead daemon’s Linodes once idle, and leaves others alone', async () => {
    standin = await startLinodeStandin({ token: TOKEN, stepMs: 200 });
    standin.add('render-box', 'offline');
    standin.add('spare-box', 'offline');
    standin.add('stranger', 'running', ['prod']);
    env = makeEnv({
      config: { dispatcher: { workers: 2, grace_time: 0.5, reap_interval: 1, lock_stale: 3 } },
      queues: { default: null },
      jobTypes: {
        hello: { template: 'echo hello from $BATCHD_HOST' },
        gated: { ...GATED, on_fail: 'retry' },
      },
    });
    controllers(env);
    const remote = path.join(env.root, 'remote');
    const host = (extra: Record<string, unknown>) =>
      hostFile(sshd, remote, { controller: 'linode', startup_time: 0, shutdown_timeout: 1, ...extra });
    env.writeConfig('hosts/render.yaml', host({ controller_id: 'render-box' }));
    // These stay up once started (shutdown_timeout 1 h): only reaping stops them.
    env.writeConfig('hosts/spare.yaml', host({ controller_id: 'spare-box', shutdown_timeout: 3600 }));
    env.writeConfig(
      'hosts/made.yaml',
      host({ controller: 'linode-made', linode: BLOCK, shutdown_timeout: 3600 }),
    );

    daemon = await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 });
    for (const name of ['spare', 'made']) {
      const warm = await dropJob(env, 'default', { type: 'hello', host: name }, `warm-${name}`);
      const job = await finished(env, warm, 30_000);
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
    daemon.kill('SIGKILL');
    await daemon.exited;
    const spool = `batchd.spool=${spoolId(env)}`;
    for (const label of ['render-box', 'spare-box', 'made']) {
      expect(standin.byLabel(label)?.status).toBe('running');
      expect(standin.byLabel(label)?.tags).toContain(spool);
    }

    daemon = await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 });
    writeFileSync(gate, '');
    const job = await finished(env, id, 30_000);
    expect(job.state, JSON.stringify(job.record.history)).toBe('done');
    expect(job.record.attempts).toBe(2);
    await waitFor(
      () =>
        standin.byLabel('render-box')?.status === 'offline' &&
        standin.byLabel('spare-box')?.status === 'offline' &&
        standin.byLabel('made') === undefined,
      30_000,
      'the dead daemon’s Linodes shut down or deleted',
    );
    expect(standin.byLabel('spare-box')?.tags).toEqual([]);
    expect(standin.byLabel('stranger')).toMatchObject({ status: 'running', tags: ['prod'] });
  }, 120_000);
});
