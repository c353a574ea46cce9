import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { dropJob, makeDispatchEnv, request, startInProcess, waitForState } from '../helpers/dispatch.ts';
import { type Dockerd, startDockerd } from '../helpers/dockerd.ts';
import { jobDir, type TestEnv, waitFor } from '../helpers/env.ts';
import { finished, log } from '../ssh/ssh-env.ts';

/** waitFor for a check that asks the engine. */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('jobs on Docker hosts through the daemon', () => {
  let engine: Dockerd;

  const running = async (name: string): Promise<boolean | undefined> =>
    engine.docker
      .getContainer(name)
      .inspect()
      .then(
        (info) => info.State.Running,
        (error: { statusCode?: number }) => {
          if (error.statusCode === 404) return undefined;
          throw error;
        },
      );
  /** The command lines of the container's processes. */
  const processes = (container: string): string => {
    try {
      return engine.sh(container, 'ps -o args');
    } catch {
      return ''; // not running (yet, or any more)
    }
  };

  /** etc/ with controller `d` on the private engine and hosts on it. */
  const setUp = (dispatcher: Record<string, unknown> = {}): TestEnv => {
    const env = makeDispatchEnv({
      queues: { default: null },
      config: { dispatcher: { workers: 2, reap_interval: 1, lock_stale: 3, ...dispatcher } },
      jobTypes: {
        where: { template: 'hostname; echo to stderr >&2; exit 3' },
        name: { template: 'hostname' },
        nap: { template: 'sleep $seconds', params: [{ name: 'seconds', type: 'Integer' }] },
        short: { template: 'sleep $seconds', params: [{ name: 'seconds', type: 'Integer' }], timeout: 1 },
        // 12 lines, one every 0.2 s; its timeout is shorter than the pause below.
        counter: {
          template: 'i=0; while [ $i -lt 12 ]; do i=$((i+1)); echo $i; sleep 0.2; done',
          timeout: 6,
        },
        // First run: marks the container and sleeps; a run after recovery says so and ends.
        once: {
          template: 'if [ ! -e /tmp/ran-once ]; then touch /tmp/ran-once; sleep 335; fi; echo second run',
          on_fail: { retry: { when: 'now', count: 1 } },
        },
      },
    });
    env.writeConfig('controllers/d.yaml', {
      driver: 'docker',
      unix_socket: engine.socket,
      pull: 'never',
      stop_timeout: 2,
    });
    const host = { controller: 'd', startup_time: 0, shutdown_timeout: 2, work_directory: '/tmp/batchd' };
    env.writeConfig('hosts/box.yaml', { ...host, controller_id: 'box-container' });
    env.writeConfig('hosts/fresh.yaml', {
      ...host,
      d: { image: engine.image, command: ['sleep', 'inf'], network: 'none' },
    });
    env.writeConfig('hosts/ghost.yaml', { ...host, controller_id: 'no-such-container' });
    env.writeConfig('hosts/imageless.yaml', { ...host, docker: { image: 'no-such-image:1' } });
    return env;
  };

  beforeAll(async () => {
    engine = await startDockerd();
    await engine.plainContainer('box-container', { hostname: 'inside-box' });
  });

  afterAll(async () => {
    await engine?.stop();
  });

  describe('with a daemon in this process', () => {
    let env: TestEnv;
    let daemon: Daemon;

    beforeAll(async () => {
      env = setUp();
      daemon = await startInProcess(env);
    });

    afterAll(async () => {
      await daemon?.stop();
      env?.cleanup();
    });

    it('starts a stopped container for a job, runs the job inside it, and stops it after shutdown_timeout', async () => {
      expect(await running('box-container')).toBe(false);
      const id = await dropJob(env, 'default', { type: 'where', host: 'box' }, 'inside');
      const job = await finished(env, id, 30_000);
      expect(job.state).toBe('failed');
      expect(job.record.last).toMatchObject({ outcome: 'exit-code', exit_code: 3 });
      // The container's hostname, not this machine's: the job ran inside it.
      expect(log(job.dir, 'stdout.log')).toBe('inside-box\n');
      expect(log(job.dir, 'stderr.log')).toBe('to stderr\n');
      expect(await running('box-container')).toBe(true);

      await until(async () => (await running('box-container')) === false, 15_000, 'idle container stopped');
      // Not created by batchd: stopped, kept.
      expect(await running('box-container')).toBe(false);
    });

    it('stops the exec’d process when its job is cancelled or times out', async () => {
      const cancelled = await dropJob(
        env,
        'default',
        { type: 'nap', host: 'box', params: { seconds: 377 } },
        'c',
      );
      await waitForState(env, cancelled, 'running', 30_000);
      await waitFor(() => processes('box-container').includes('sleep 377'), 15_000, 'sleep 377 runs', 200);
      request(env, 'default', cancelled, 'cancel');
      expect((await finished(env, cancelled)).state).toBe('cancelled');
      // Checked while the container still runs (its PID 1 is `sleep inf`).
      expect(processes('box-container')).toMatch(/sleep inf(?![\s\S]*sleep 377)/);

      const timedOut = await dropJob(
        env,
        'default',
        { type: 'short', host: 'box', params: { seconds: 378 } },
        't',
      );
      const job = await finished(env, timedOut, 30_000);
      expect(job.record.last?.outcome).toBe('timeout');
      expect(processes('box-container')).toMatch(/sleep inf(?![\s\S]*sleep 378)/);
    });

    it('pauses a job in the container (its output stops, its timeout waits) and resumes it', async () => {
      const id = await dropJob(env, 'default', { type: 'counter', host: 'box' }, 'paused');
      const dir = jobDir(env.spool, 'default', 'running', id);
      const size = (): number =>
        existsSync(path.join(dir, 'stdout.log')) ? statSync(path.join(dir, 'stdout.log')).size : 0;
      await waitFor(() => size() >= 4 || undefined, 30_000, 'the job to print');
      request(env, 'default', id, 'pause');
      await waitFor(
        () => readFileSync(path.join(dir, 'state.yaml'), 'utf8').includes('paused_at') || undefined,
        15_000,
        'the job paused',
      );
      await new Promise((r) => setTimeout(r, 500));
      const atPause = size();
      await new Promise((r) => setTimeout(r, 6_000));
      expect(size(), 'output while paused').toBe(atPause);
      request(env, 'default', id, 'resume');
      const job = await finished(env, id, 30_000);
      expect(job.state).toBe('done');
      expect(log(job.dir, 'stdout.log').trim().split('\n').at(-1)).toBe('12');
    });

    it('removes a container it created from an image once the host is idle', async () => {
      const id = await dropJob(env, 'default', { type: 'name', host: 'fresh' }, 'f');
      const job = await finished(env, id, 30_000);
      expect(job.state).toBe('done');
      const hostname = log(job.dir, 'stdout.log').trim();
      expect(hostname).not.toBe('');
      await until(
        async () => (await running('batchd-fresh')) === undefined,
        15_000,
        'created container removed',
      );
    });

    it('records a failure to start (no such container, no such image) on the job', async () => {
      const ghost = await dropJob(env, 'default', { type: 'name', host: 'ghost' }, 'g');
      const imageless = await dropJob(env, 'default', { type: 'name', host: 'imageless' }, 'i');
      const [g, i] = await Promise.all([finished(env, ghost, 30_000), finished(env, imageless, 30_000)]);
      expect(g.state).toBe('failed');
      expect(g.record.last?.error).toContain('No such container: no-such-container');
      expect(i.state).toBe('failed');
      expect(i.record.last?.error).toContain('No such image: no-such-image:1');
    });
  });

  describe('when the daemon is killed while a job runs in a container', () => {
    let env: TestEnv;
    let daemon: DaemonProcess | undefined;

    beforeAll(() => {
      env = setUp();
      // Stays up once started: only reaping stops it.
      env.writeConfig('hosts/warm.yaml', {
        controller: 'd',
        startup_time: 0,
        shutdown_timeout: 3600,
        d: { image: engine.image, command: ['sleep', 'inf'], network: 'none' },
      });
    });

    afterEach(async () => {
      daemon?.kill('SIGKILL');
      await daemon?.exited;
    });

    afterAll(() => env?.cleanup());

    it('recovers the job, reaps the dead daemon’s containers once idle, and leaves others alone', async () => {
      await engine.plainContainer('bystander');
      await engine.docker.getContainer('bystander').start();
      daemon = await startDaemon(env.etc, env.spool);
      const warm = await dropJob(env, 'default', { type: 'name', host: 'warm' }, 'w');
      expect((await finished(env, warm, 30_000)).state).toBe('done');
      const id = await dropJob(env, 'default', { type: 'once', host: 'box' }, 'crash');
      await waitFor(() => processes('box-container').includes('sleep 335'), 30_000, 'sleep 335 runs', 200);
      daemon.kill('SIGKILL');
      await daemon.exited;
      // The exec's connection went with the daemon: its stdin's end killed the job.
      await waitFor(() => !processes('box-container').includes('sleep 335'), 10_000, 'first run killed', 200);
      daemon = await startDaemon(env.etc, env.spool);
      const job = await finished(env, id, 30_000);
      expect(job.record.results).toMatchObject([{ outcome: 'interrupted' }, { outcome: 'success' }]);
      expect(job.state).toBe('done');
      expect(log(job.dir, 'stdout.log')).toBe('second run\n');
      await until(
        async () =>
          (await running('batchd-warm')) === undefined && (await running('box-container')) === false,
        30_000,
        'the dead daemon’s containers stopped or removed',
      );
      expect(await running('bystander')).toBe(true);
      expect((await engine.docker.getContainer('bystander').inspect()).Config.Labels).toEqual({});
    });
  });
});
