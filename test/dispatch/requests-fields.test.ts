import { existsSync, readFileSync } from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { queuedInOrder } from '../../daemon/dispatch/reorder.ts';
import { dropJob, makeDispatchEnv, request, startInProcess, waitForState } from '../helpers/dispatch.ts';
import { jobDir, readState, type TestEnv, waitFor } from '../helpers/env.ts';

/**
 * The plain-file forms of the API's field updates and relative priorities:
 * `<queue>/requests/<id>.not_before`, `<id>.host` and `<id>.priority` with first/more/less/last.
 */
let env: TestEnv;
let daemon: Daemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  env.cleanup();
  daemon = undefined;
});

async function setup(): Promise<Daemon> {
  env = makeDispatchEnv({ queues: { default: null, hold: { enabled: false } } });
  env.writeConfig('hosts/box.yaml', { host_name: '127.0.0.1', user_name: 'batch' });
  daemon = await startInProcess(env);
  return daemon;
}

const taken = (file: string): Promise<boolean> =>
  waitFor(() => !existsSync(file), 10_000, `${file} to be taken`);
const rejected = async (file: string): Promise<string> => {
  await waitFor(() => existsSync(`${file}.rejected`), 10_000, `${file} to be rejected`);
  return readFileSync(`${file}.error`, 'utf8');
};
const stateFile = (queue: string, id: string): { not_before?: string; host?: string } =>
  JSON.parse(readFileSync(`${jobDir(env.spool, queue, 'queued', id)}/state.yaml`, 'utf8')) as {
    not_before?: string;
    host?: string;
  };

describe('plain-file requests for start time, host and relative priority', () => {
  it('<id>.not_before holds a queued job back when its queue runs; an empty one releases it', async () => {
    const d = await setup();
    const held = await dropJob(env, 'hold', { command: 'true' }, 'held');
    const at = new Date(Date.now() + 3_600_000).toISOString();
    await taken(request(env, 'hold', held, 'not_before', `${at}\n`));
    expect(stateFile('hold', held).not_before).toBe(at);
    d.queues.override('hold', { enabled: true });
    const free = await dropJob(env, 'hold', { command: 'true' }, 'free');
    await waitForState(env, free, 'done');
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(jobDir(env.spool, 'hold', 'queued', held))).toBe(true);
    await taken(request(env, 'hold', held, 'not_before', ''));
    await waitForState(env, held, 'done');
    expect(readState(env.spool, 'hold', 'done', held).history.map((h) => h.reason)).toContain(
      'not_before cleared',
    );
  });

  it('<id>.host sets a known host and "*" clears it; an unknown host or a bad time is rejected saying why', async () => {
    await setup();
    const id = await dropJob(env, 'hold', { command: 'true' }, 'roamer');
    await taken(request(env, 'hold', id, 'host', 'box\n'));
    expect(stateFile('hold', id).host).toBe('box');
    await taken(request(env, 'hold', id, 'host', '*'));
    expect(stateFile('hold', id).host).toBeUndefined();
    expect(await rejected(request(env, 'hold', id, 'host', 'nowhere'))).toMatch(/Unknown host "nowhere"/);
    expect(await rejected(request(env, 'hold', id, 'not_before', 'whenever'))).toMatch(
      /Expected a time .* got "whenever"/,
    );
    expect(stateFile('hold', id)).not.toHaveProperty('not_before');
  });

  it('<id>.priority takes first, more, less and last as the API does', async () => {
    const d = await setup();
    const ids: Record<string, string> = {};
    for (const name of ['a', 'b', 'c']) ids[name] = await dropJob(env, 'hold', { command: 'true' }, name);
    const names = new Map(Object.entries(ids).map(([k, v]) => [v, k]));
    const order = (): string =>
      queuedInOrder(d.layout, 'hold')
        .map((p) => names.get(p.id))
        .join('');
    expect(order()).toBe('abc');
    await taken(request(env, 'hold', ids.c ?? '', 'priority', 'more\n'));
    expect(order()).toBe('acb');
    await taken(request(env, 'hold', ids.a ?? '', 'priority', 'last'));
    expect(order()).toBe('cba');
    await taken(request(env, 'hold', ids.b ?? '', 'priority', 'FIRST'));
    expect(order()).toBe('bca');
    await taken(request(env, 'hold', ids.b ?? '', 'priority', 'less'));
    expect(order()).toBe('cba');
  });
});
