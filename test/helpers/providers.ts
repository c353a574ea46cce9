import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import type { PluginLogger, ProviderContext, ProviderHost } from '../../daemon/plugins/api.ts';
import { type TestEnv, waitFor } from './env.ts';

/** What the host-provider tests share: a plugin's context and hosts, and gated jobs on a daemon. */

export interface LoggedRecord {
  level: string;
  msg: string;
  [key: string]: unknown;
}

/** A provider context whose log keeps its records, resolving paths against `dir`. */
export function providerContext(
  dir: string,
  spool: string,
  name = 'vm',
): ProviderContext & { records: LoggedRecord[] } {
  const records: LoggedRecord[] = [];
  const at =
    (level: string) =>
    (obj: object, msg: string): void => {
      records.push({ ...obj, level, msg });
    };
  const log: PluginLogger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { name, log, resolve: (p) => path.resolve(dir, p), tags: { 'batchd.spool': spool }, records };
}

export function providerHost(
  ctx: ProviderContext,
  name: string,
  extra: Partial<Omit<ProviderHost, 'name' | 'tags'>> = {},
): ProviderHost {
  return {
    name,
    id: extra.controllerId ?? name,
    controllerId: undefined,
    publicKey: undefined,
    hostName: undefined,
    port: 22,
    settings: undefined,
    ...extra,
    tags: { ...ctx.tags, 'batchd.host': name },
  };
}

/** A job type that prints `waiting`, then waits for the file named by its `gate` parameter. */
export const GATED = {
  template: 'echo waiting; while [ ! -e "$gate" ]; do sleep 0.05; done; echo through',
  params: [{ name: 'gate', type: 'String' }],
};

/** Wait until a gated job has started on its host. */
export async function gatedJobRuns(env: TestEnv, id: string): Promise<void> {
  const out = path.join(env.spool, 'default', 'running', id, 'stdout.log');
  await waitFor(
    () => existsSync(out) && readFileSync(out, 'utf8').includes('waiting'),
    20_000,
    `job ${id} runs`,
  );
}

/** The spool's id, which tags what its daemons create (`batchd.spool`). */
export function spoolId(env: TestEnv): string {
  return readFileSync(path.join(env.spool, '.hosts', 'spool-id'), 'utf8').trim();
}
