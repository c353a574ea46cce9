import { cpSync, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';

import { ConfigStore } from '../../daemon/config/store.ts';
import { EventBus } from '../../daemon/events.ts';
import { HOSTS_FOLDER } from '../../daemon/hosts/layer.ts';
import { hostSchema } from '../../daemon/hosts/schema.ts';
import { Controllers } from '../../daemon/plugins/controllers.ts';
import { PluginRegistry } from '../../daemon/plugins/registry.ts';
import { makeEnv, type TestEnv } from '../helpers/env.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SAMPLES = path.resolve(ROOT, '..', 'shared', 'batchd-original', 'sample-configs');

describe("batchd's own controller and host files", () => {
  let env: TestEnv | undefined;

  afterAll(() => env?.cleanup());

  async function load(
    from: string,
  ): Promise<{ controllers: Controllers; invalid: string[]; config: ConfigStore }> {
    env = makeEnv();
    for (const folder of ['controllers', 'hosts'] as const)
      cpSync(path.join(from, folder), path.join(env.etc, folder), { recursive: true });
    const log = pino({ level: 'silent' });
    const invalid: string[] = [];
    const events = new EventBus(() => undefined);
    events.on('config:invalid', (e) => invalid.push(e.message));
    const config = new ConfigStore(env.etc, events, log);
    const controllers = new Controllers(config, new PluginRegistry(env.etc), events, log, {
      'batchd.spool': 'x',
    });
    await controllers.start();
    config.register({ folder: HOSTS_FOLDER, schema: hostSchema });
    return { controllers, invalid, config };
  }

  it("load unchanged, with batchd's driver names, region names and fields", async () => {
    if (!existsSync(SAMPLES))
      throw new Error(`${SAMPLES} is missing: the tests need shared/ beside the project`);
    const { controllers, invalid, config } = await load(SAMPLES);
    expect(invalid).toEqual([]);
    expect(
      controllers
        .list()
        .map((c) => [c.name, c.driver, c.enable_start_stop])
        .sort(),
    ).toEqual([
      ['amazon', 'awsec2', true],
      ['docker', 'docker', true],
      ['qemu', 'libvirt', true],
    ]);
    for (const c of controllers.list()) expect(controllers.provider(c.name), c.name).toBeDefined();
    expect(
      config
        .list<{ name: string }>('hosts')
        .map((h) => h.name)
        .sort(),
    ).toEqual(['free', 'laptop', 'neural.aws']);
  });

  it("the repository's own etc/ examples load too", async () => {
    const { controllers, invalid } = await load(path.join(ROOT, 'etc'));
    expect(invalid).toEqual([]);
    const files = readdirSync(path.join(ROOT, 'etc', 'controllers')).map((f) => f.replace(/\.ya?ml$/, ''));
    expect(
      controllers
        .list()
        .map((c) => c.name)
        .sort(),
    ).toEqual(files.sort());
  });
});
