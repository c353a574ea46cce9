import { writeFileSync } from 'node:fs';
import path from 'node:path';

import {
  DescribeInstancesCommand,
  RunInstancesCommand,
  StopInstancesCommand,
  type Instance,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { dropJob, makeDispatchEnv, startInProcess } from '../helpers/dispatch.ts';
import { makeEnv, type TestEnv, waitFor } from '../helpers/env.ts';
import { MOTO_CREDENTIALS, type Moto, startMoto } from '../helpers/moto.ts';
import { GATED, gatedJobRuns, spoolId } from '../helpers/providers.ts';
import { finished, hostFile, hostState, log } from '../ssh/ssh-env.ts';
import { type Sshd, startSshd } from '../ssh/sshd.ts';

/**
 * The instances are moto's (the EC2 emulator); the SSH endpoint of every host is a real sshd on
 * loopback, reached through the controller's `use_host_name`.
 */
let moto: Moto;
let sshd: Sshd;

beforeAll(async () => {
  [moto, sshd] = await Promise.all([startMoto(), startSshd()]);
});
afterAll(async () => {
  await Promise.all([moto?.stop(), sshd?.stop()]);
});

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function instance(id: string): Promise<Instance | undefined> {
  const out = await moto.client().send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  return out.Reservations?.[0]?.Instances?.[0];
}
const stateOf = async (id: string): Promise<string | undefined> => (await instance(id))?.State?.Name;
const tagsOf = async (id: string): Promise<Record<string, string>> =>
  Object.fromEntries(((await instance(id))?.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));

async function taggedHost(host: string): Promise<Instance[]> {
  const out = await moto
    .client()
    .send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:batchd.host', Values: [host] }] }));
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

/** An instance made outside batchd (no tags), stopped unless `running`. */
async function bareInstance(running = false): Promise<string> {
  const out = await moto
    .client()
    .send(new RunInstancesCommand({ ImageId: await moto.imageId(), MinCount: 1, MaxCount: 1 }));
  const id = out.Instances?.[0]?.InstanceId ?? '';
  if (!running) await moto.client().send(new StopInstancesCommand({ InstanceIds: [id] }));
  return id;
}

function controller(): Record<string, unknown> {
  return {
    driver: 'awsec2',
    region: 'Virginia',
    endpoint: moto.endpoint,
    credentials: { access_key: MOTO_CREDENTIALS.accessKeyId, secret_key: MOTO_CREDENTIALS.secretAccessKey },
    use_host_name: true,
    poll_interval: 0.2,
    wait_timeout: 20,
  };
}

describe('jobs on EC2 hosts through the daemon', () => {
  let env: TestEnv;
  let daemon: Daemon;
  let renderId: string;

  beforeAll(async () => {
    await moto.reset();
    renderId = await bareInstance();
    env = makeDispatchEnv({
      queues: { default: null },
      config: { dispatcher: { workers: 2, reap_interval: 1, lock_stale: 3 } },
      jobTypes: { hello: { template: 'echo hello from $BATCHD_HOST' }, gated: GATED },
    });
    env.writeConfig('controllers/amazon.yaml', controller());
    const remote = path.join(env.root, 'remote');
    const host = (extra: Record<string, unknown>) =>
      hostFile(sshd, remote, { controller: 'amazon', startup_time: 0, shutdown_timeout: 1, ...extra });
    env.writeConfig('hosts/render.yaml', host({ controller_id: renderId }));
    env.writeConfig('hosts/ghost.yaml', host({ controller_id: 'i-0123456789abcdef0' }));
    env.writeConfig(
      'hosts/made.yaml',
      host({ awsec2: { image_id: await moto.imageId(), instance_type: 't3.micro' } }),
    );
    daemon = await startInProcess(env);
  });
  afterAll(async () => {
    await daemon?.stop();
    env?.cleanup();
  });

  it('starts a stopped instance for a job, runs the job over SSH, and stops the instance after shutdown_timeout', async () => {
    expect(await stateOf(renderId)).toBe('stopped');
    const gate = path.join(env.root, 'gate-render');
    const id = await dropJob(env, 'default', { type: 'gated', host: 'render', params: { gate } }, 'render');
    await gatedJobRuns(env, id);
    expect(await stateOf(renderId)).toBe('running');
    expect(await tagsOf(renderId)).toMatchObject({ 'batchd.spool': spoolId(env), 'batchd.host': 'render' });
    writeFileSync(gate, '');
    const job = await finished(env, id, 20_000);
    expect(job.state, job.record.last?.error).toBe('done');
    expect(log(job.dir, 'stdout.log')).toBe('waiting\nthrough\n');
    await waitFor(() => hostState(daemon, 'render') === 'stopped', 15_000, 'render stopped');
    expect(await stateOf(renderId)).toBe('stopped');
    expect(await tagsOf(renderId)).toEqual({});
  });

  it('runs an instance from an AMI for a job and terminates it once the host is idle', async () => {
    const id = await dropJob(env, 'default', { type: 'hello', host: 'made' }, 'made');
    const job = await finished(env, id, 20_000);
    expect(job.state, job.record.last?.error).toBe('done');
    expect(log(job.dir, 'stdout.log')).toBe('hello from made\n');
    const [made] = await taggedHost('made');
    expect(made?.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'batchd.created', Value: 'true' },
        { Key: 'batchd.spool', Value: spoolId(env) },
      ]),
    );
    await until(
      async () => (await stateOf(made?.InstanceId ?? '')) === 'terminated',
      15_000,
      'made terminated',
    );
  });

  it('records a refused start on the job', async () => {
    const id = await dropJob(env, 'default', { type: 'hello', host: 'ghost' }, 'ghost');
    const job = await finished(env, id, 20_000);
    expect(job.state).toBe('failed');
    expect(job.record.last?.error).toMatch(/StartInstances failed: InvalidInstanceID\.NotFound/);
    expect(job.record.last?.error).not.toContain(MOTO_CREDENTIALS.secretAccessKey);
  });
});

describe('when the daemon is killed while a job runs on an EC2 host', () => {
  let env: TestEnv;
  let daemon: DaemonProcess | undefined;

  beforeAll(async () => {
    await moto.reset();
    env = makeEnv({
      config: { dispatcher: { workers: 2, grace_time: 0.5, reap_interval: 1, lock_stale: 3 } },
      queues: { default: null },
      jobTypes: {
        hello: { template: 'echo hello from $BATCHD_HOST' },
        gated: { ...GATED, on_fail: 'retry' },
      },
    });
    env.writeConfig('controllers/amazon.yaml', controller());
  });
  afterAll(async () => {
    daemon?.kill('SIGKILL');
    await daemon?.exited;
    env?.cleanup();
  });

  it('recovers the job, stops or terminates the dead daemon’s instances once idle, and leaves others alone', async () => {
    const [renderId, spareId, strangerId] = await Promise.all([
      bareInstance(),
      bareInstance(),
      bareInstance(true),
    ]);
    const remote = path.join(env.root, 'remote');
    const host = (extra: Record<string, unknown>) =>
      hostFile(sshd, remote, { controller: 'amazon', startup_time: 0, shutdown_timeout: 1, ...extra });
    env.writeConfig('hosts/render.yaml', host({ controller_id: renderId }));
    // These stay up once started (shutdown_timeout 1 h): only reaping stops them.
    env.writeConfig('hosts/spare.yaml', host({ controller_id: spareId, shutdown_timeout: 3600 }));
    env.writeConfig(
      'hosts/made.yaml',
      host({ awsec2: { image_id: await moto.imageId() }, shutdown_timeout: 3600 }),
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
    const [made] = await taggedHost('made');
    const madeId = made?.InstanceId ?? '';
    // AWS kept what the dead daemon started, tagged as this spool's.
    expect(await stateOf(renderId)).toBe('running');
    expect(await stateOf(spareId)).toBe('running');
    expect(await stateOf(madeId)).toBe('running');
    expect(await tagsOf(spareId)).toMatchObject({ 'batchd.spool': spoolId(env) });

    daemon = await startDaemon(env.etc, env.spool, { readyTimeoutMs: 60_000 });
    writeFileSync(gate, '');
    const job = await finished(env, id, 30_000);
    expect(job.state, JSON.stringify(job.record.history)).toBe('done');
    expect(job.record.attempts).toBe(2);
    await until(
      async () =>
        (await stateOf(renderId)) === 'stopped' &&
        (await stateOf(spareId)) === 'stopped' &&
        (await stateOf(madeId)) === 'terminated',
      30_000,
      'the dead daemon’s instances stopped or terminated',
    );
    expect(await stateOf(strangerId)).toBe('running');
    expect(await tagsOf(strangerId)).toEqual({});
  }, 120_000);
});
