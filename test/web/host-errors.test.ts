import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';

import { type Api, createApi } from '../../daemon/api/app.ts';
import { Daemon } from '../../daemon/daemon.ts';
import { HOST_ERRORS_FILE } from '../../daemon/hosts/error-history.ts';
import type { HostInfo } from '../../daemon/protocol/config.ts';
import { eventually, type InProcessApi, startApi } from '../api/api-helpers.ts';
import { freePort } from '../ssh/sshd.ts';

/**
 * A host's last errors (the Hosts view) outlive a restart: kept in the spool's hidden daemon
 * folder, bounded per host, read back by the next daemon; a damaged file is an empty history.
 */
describe("a host's last errors across a restart", () => {
  let t: InProcessApi | undefined;
  let again: { daemon: Daemon; api: Api } | undefined;
  afterAll(async () => {
    again?.api.close();
    await again?.daemon.stop();
    t?.env.cleanup();
  });

  const hostsOf = async (api: Api): Promise<HostInfo[]> =>
    (await Promise.resolve(api.app.request('/host'))).json() as Promise<HostInfo[]>;
  const restart = async (env: InProcessApi['env']): Promise<{ daemon: Daemon; api: Api }> => {
    const daemon = await Daemon.start({
      configDir: env.etc,
      spool: env.spool,
      logger: pino({ level: 'silent' }),
    });
    return { daemon, api: createApi(daemon) };
  };

  it('shows the errors a host had before the restart, and starts afresh from a damaged file', async () => {
    t = await startApi({ queues: { default: {} } });
    const { env } = t;
    const key = path.join(env.root, 'dead_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    writeFileSync(path.join(env.root, 'known_hosts'), '# none\n');
    env.writeConfig('hosts/dead.yaml', {
      host_name: '127.0.0.1',
      port: await freePort(), // nothing listens there: every connection is refused
      user_name: 'root',
      private_key: key,
      known_hosts: path.join(env.root, 'known_hosts'),
      work_directory: path.join(env.root, 'remote'),
      connect_timeout: 2,
      backoff: { initial: 0.2, max: 0.4 },
    });
    const api = t.api;
    await eventually(async () => (await hostsOf(api)).some((h) => h.name === 'dead'));
    const job = { type: 'echo', host: 'dead', params: { message: 'never' } };
    expect((await t.request('POST', '/queue/default', { body: job })).status).toBe(201);
    const before = await eventually(async () => {
      const dead = (await hostsOf(api)).find((h) => h.name === 'dead');
      return (dead?.errors?.length ?? 0) >= 1 && dead;
    }, 30_000);
    expect(before.errors?.[0]?.reason).toMatch(/ECONNREFUSED|refused/i);
    // Cancel the job that keeps trying, so the next daemon does not add errors of its own.
    const queued = (await t.json<{ jobs: { id: string }[] }>('GET', '/queue/default/jobs')).body.jobs;
    for (const { id } of queued) await t.request('POST', `/job/${id}/cancel`);
    t.api.close();
    await t.daemon.stop();

    const file = path.join(env.spool, HOST_ERRORS_FILE);
    const kept = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { at: string; reason: string }[]>;
    expect(kept.dead?.length).toBeGreaterThanOrEqual(1);
    expect(kept.dead?.length).toBeLessThanOrEqual(5);

    again = await restart(env);
    const after = (await hostsOf(again.api)).find((h) => h.name === 'dead');
    expect(after?.state).not.toBe('failed'); // this daemon has not tried it yet
    expect(after?.errors?.slice(0, before.errors?.length)).toEqual(before.errors);
    again.api.close();
    await again.daemon.stop();

    writeFileSync(file, '{ not json');
    again = await restart(env);
    const fresh = (await hostsOf(again.api)).find((h) => h.name === 'dead');
    expect(fresh).toBeDefined();
    expect(fresh?.errors ?? []).toEqual([]);
  });
});
