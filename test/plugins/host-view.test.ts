import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { dropJob } from '../helpers/dispatch.ts';
import { finished } from '../ssh/ssh-env.ts';
import { PROCESS_PROVIDER } from './fixtures/process-provider.ts';

describe("a provider host's state, as the API and the CLI show it", () => {
  let d: ApiDaemon;

  beforeAll(async () => {
    d = await startApiDaemon({
      queues: { default: null },
      jobTypes: { hello: { template: 'echo hello' } },
      beforeStart: (env) => {
        env.writeConfig('controllers/proc.yaml', {
          driver: PROCESS_PROVIDER,
          root: path.join(env.root, 'machines'),
        });
        env.writeConfig('hosts/box.yaml', { controller: 'proc', startup_time: 0, shutdown_timeout: 600 });
        env.writeConfig('hosts/refuses.yaml', {
          controller: 'nowhere',
          backoff: { initial: 60, max: 60 },
        });
        return Promise.resolve();
      },
    });
  });

  afterAll(async () => {
    await d?.stop();
  });

  it('GET /host and `batch host` give each host its state, controller, jobs and reason', async () => {
    const ok = await dropJob(d.env, 'default', { type: 'hello', host: 'box' }, 'on-box');
    expect((await finished(d.env, ok)).state).toBe('done');
    const bad = await dropJob(d.env, 'default', { type: 'hello', host: 'refuses' }, 'on-refuses');
    expect((await finished(d.env, bad)).state).toBe('failed');

    const res = await fetch(`${d.url}/host`);
    expect(res.status).toBe(200);
    const hosts = (await res.json()) as Record<string, unknown>[];
    expect(hosts).toEqual([
      expect.objectContaining({ name: 'box', state: 'ready', controller: 'proc', jobs: 0 }),
      expect.objectContaining({
        name: 'refuses',
        state: 'failed',
        controller: 'nowhere',
        reason:
          'host refuses: controller "nowhere" has no provider plugin loaded (etc/controllers/nowhere.yaml)',
      }),
    ]);
    const cli = await d.batch(['host']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/box\s+ready\s+0\s+proc/);
    expect(cli.stdout).toMatch(/refuses\s+failed\s+0\s+nowhere\s+host refuses: controller "nowhere"/);
  });
});
