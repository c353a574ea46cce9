import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { BatchdError } from '../../daemon/errors.ts';
import { newNonce, wrapperScript } from '../../daemon/executors/remote-command.ts';
import type { HostProvider, HostShell, ProviderHost } from '../../daemon/hosts/provider.ts';
import { shellRun } from '../../daemon/hosts/shell-run.ts';
import { TAG } from '../../daemon/plugins/api.ts';
import plugin from '../../plugins/docker/index.ts';
import { type Dockerd, startDockerd } from '../helpers/dockerd.ts';
import { waitFor } from '../helpers/env.ts';

const SPOOL = { [TAG.spool]: 'spool-under-test' };
const quiet = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
const signal = new AbortController().signal;

/** waitFor for a check that asks the engine. */
async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the Docker provider against a private engine', () => {
  let engine: Dockerd;
  let provider: HostProvider;
  let shell: HostShell;
  let local: string;

  const host = (name: string, options: { id?: string; settings?: unknown } = {}): ProviderHost => ({
    name,
    id: options.id ?? name,
    controllerId: options.id,
    publicKey: undefined,
    hostName: undefined,
    port: 22,
    settings: plugin.host?.parse(options.settings ?? {}),
    tags: { ...SPOOL, [TAG.host]: name },
  });
  const plainContainer = (name: string, labels: Record<string, string> = {}): Promise<void> =>
    engine.plainContainer(name, { labels });
  const state = async (name: string): Promise<{ Running: boolean; Paused: boolean; StartedAt: string }> =>
    (await engine.docker.getContainer(name).inspect()).State;
  const exists = async (name: string): Promise<boolean> =>
    engine.docker
      .getContainer(name)
      .inspect()
      .then(
        () => true,
        (error: { statusCode?: number }) => {
          if (error.statusCode === 404) return false;
          throw error;
        },
      );
  const sh = (h: ProviderHost, script: string): ReturnType<typeof shellRun> =>
    shellRun(shell, h, script, signal);

  beforeAll(async () => {
    engine = await startDockerd();
    const config = plugin.config.parse({ unix_socket: engine.socket, pull: 'never', stop_timeout: 2 });
    provider = plugin.create(config, { name: 'd', log: quiet, resolve: (p) => p, tags: SPOOL });
    if (provider.shell === undefined) throw new Error('the Docker provider runs commands by exec');
    shell = provider.shell;
    local = mkdtempSync(path.join(tmpdir(), 'batchd-docker-files-'));
  });

  afterAll(async () => {
    await provider?.close?.();
    await engine?.stop();
    if (local !== undefined) rmSync(local, { recursive: true, force: true });
  });

  it('reads batchd’s sample controller file and the shipped example unchanged', () => {
    for (const file of [
      '../shared/batchd-original/sample-configs/controllers/docker.yaml',
      'etc/controllers/docker.yaml',
    ]) {
      const {
        driver,
        enable_start_stop: _,
        ...own
      } = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      expect(driver).toBe('docker');
      expect(plugin.config.parse(own)).toMatchObject({ unix_socket: '/var/run/docker.sock' });
    }
    expect(plugin.config.safeParse({ unix_sock: '/x' }).success).toBe(false);
  });

  it('starts a stopped container named by controller_id, and start and stop are idempotent', async () => {
    await plainContainer('web1');
    const web = host('web', { id: 'web1' });
    expect((await state('web1')).Running).toBe(false);

    await provider.start?.(web, signal);
    const first = await state('web1');
    expect(first.Running).toBe(true);
    await provider.start?.(web, signal);
    expect((await state('web1')).StartedAt).toBe(first.StartedAt);

    await engine.docker.getContainer('web1').pause();
    await provider.start?.(web, signal);
    expect(await state('web1')).toMatchObject({ Running: true, Paused: false });

    await provider.stop?.(web, signal);
    expect((await state('web1')).Running).toBe(false);
    await provider.stop?.(web, signal);
    // Exited, then started again.
    await provider.start?.(web, signal);
    expect((await state('web1')).Running).toBe(true);
    await provider.stop?.(web, signal);
    // Not created by batchd: stopped, never removed, and not labelled.
    const info = await engine.docker.getContainer('web1').inspect();
    expect(info.State.Running).toBe(false);
    expect(info.Config.Labels).toEqual({});
  });

  it('creates a container from an image, labelled as the host tags and created, and removes it on stop', async () => {
    const built = host('built', {
      settings: { image: engine.image, command: ['sleep', 'inf'], network: 'none' },
    });
    await provider.start?.(built, signal);
    const info = await engine.docker.getContainer('batchd-built').inspect();
    expect(info.State.Running).toBe(true);
    expect(info.Config.Labels).toMatchObject({ ...SPOOL, [TAG.host]: 'built', [TAG.created]: 'true' });
    await provider.start?.(built, signal);

    await provider.stop?.(built, signal);
    expect(await exists('batchd-built')).toBe(false);
    await provider.stop?.(built, signal);
  });

  it('with remove_on_stop: never, stops a container it created and starts the same one again', async () => {
    const config = plugin.config.parse({
      unix_socket: engine.socket,
      pull: 'never',
      remove_on_stop: 'never',
    });
    const keeper = plugin.create(config, { name: 'k', log: quiet, resolve: (p) => p, tags: SPOOL });
    const kept = host('kept', {
      settings: { image: engine.image, command: ['sleep', 'inf'], network: 'none' },
    });
    await keeper.start?.(kept, signal);
    const id = (await engine.docker.getContainer('batchd-kept').inspect()).Id;
    await keeper.stop?.(kept, signal);
    expect((await state('batchd-kept')).Running).toBe(false);
    // Reaping would only stop it: a stopped one is not offered for reaping.
    expect((await keeper.owned?.(signal))?.find((o) => o.id === id)).toMatchObject({
      running: false,
      created: false,
    });
    await keeper.start?.(kept, signal);
    expect((await engine.docker.getContainer('batchd-kept').inspect()).Id).toBe(id);
    await engine.docker.getContainer('batchd-kept').remove({ force: true });
  });

  it('fails a start with PROVIDER_FAILED naming the missing container or image', async () => {
    const noContainer = provider.start?.(host('ghost', { id: 'no-such-container' }), signal);
    await expect(noContainer).rejects.toBeInstanceOf(BatchdError);
    await expect(noContainer).rejects.toMatchObject({
      code: 'PROVIDER_FAILED',
      context: { host: 'ghost', controller: 'd' },
      message: expect.stringContaining('No such container: no-such-container') as unknown,
    });
    const noImage = provider.start?.(host('imageless', { settings: { image: 'no-such-image:1' } }), signal);
    await expect(noImage).rejects.toMatchObject({
      code: 'PROVIDER_FAILED',
      message: expect.stringContaining('No such image: no-such-image:1') as unknown,
    });
    expect(await exists('batchd-imageless')).toBe(false);
  });

  describe('in a running container', () => {
    const box = (): ProviderHost =>
      host('box', {
        settings: {
          image: engine.image,
          command: ['sleep', 'inf'],
          network: 'none',
          env: { GREETING: 'hello' },
          workdir: '/tmp',
        },
      });

    beforeAll(async () => {
      await provider.start?.(box(), signal);
    });

    it('runs a command by exec with stdout and stderr apart, its exit code, env and workdir', async () => {
      const result = await sh(box(), 'echo "out $GREETING"; echo err >&2; pwd >&2; exit 7');
      expect(result).toEqual({ code: 7, stdout: 'out hello\n', stderr: 'err\n/tmp\n' });
      expect((await sh(box(), 'hostname')).stdout.trim()).toBe(
        (await engine.docker.getContainer('batchd-box').inspect()).Config.Hostname,
      );
    });

    it('starts nothing when its signal is aborted', async () => {
      const exec = shell.exec(box(), 'touch /tmp/aborted', AbortSignal.abort());
      await expect(exec).rejects.toMatchObject({ name: 'AbortError' });
      expect((await sh(box(), 'test -e /tmp/aborted')).code).toBe(1);
    });

    it('passes lines written to the channel to the command, and end() as end-of-file', async () => {
      const channel = await shell.exec(box(), 'while read -r l; do echo "got $l"; done; echo eof', signal);
      let out = '';
      channel.stdout.on('data', (d: Buffer) => (out += d.toString()));
      channel.write('one\n');
      channel.write('two\n');
      await waitFor(() => out.includes('got two'), 10_000);
      channel.end();
      expect(await channel.exit).toEqual({ code: 0, signal: null });
      expect(out).toBe('got one\ngot two\neof\n');
    });

    it('makes the exec’d shell the leader of its own process group', async () => {
      // Field 5 of /proc/PID/stat is the process group.
      const { stdout } = await sh(box(), 'echo $$ $(cut -d" " -f5 /proc/$$/stat)');
      const [pid, pgid] = stdout.trim().split(' ');
      expect(pgid).toBe(pid);
    });

    /** The core's wrapper around a job that starts a child and a grandchild `sleep`. */
    const job = async (
      mark: string,
    ): Promise<{ channel: Awaited<ReturnType<HostShell['exec']>>; err: () => string }> => {
      const script = wrapperScript({
        nonce: newNonce(),
        jobDir: '/tmp',
        env: {},
        command: `/bin/sh -c 'sleep 3${mark}1 & sleep 3${mark}2; wait'`,
      });
      const channel = await shell.exec(box(), script, signal);
      let err = '';
      channel.stderr.on('data', (d: Buffer) => (err += d.toString()));
      channel.stdout.resume();
      await until(async () => (await sleeps(mark)).length === 2);
      return { channel, err: () => err };
    };
    const sleeps = async (mark: string): Promise<string[]> =>
      (await sh(box(), 'ps -o args')).stdout.split('\n').filter((l) => l.startsWith(`sleep 3${mark}`));
    const bystander = async (): Promise<void> => {
      const channel = await shell.exec(box(), 'exec sleep 399', signal);
      channel.stdout.resume();
      channel.stderr.resume();
      await until(async () => (await sh(box(), 'ps -o args')).stdout.includes('sleep 399'));
    };

    it('kills the job’s sleep and its children on a TERM line, and nothing else in the container', async () => {
      await bystander();
      const { channel, err } = await job('1');
      channel.write('TERM\n');
      const exit = await channel.exit;
      expect(await sleeps('1')).toEqual([]);
      expect(err()).toMatch(/ exit 143 0\n$/);
      expect(exit.code).toBe(143);
      const ps = (await sh(box(), 'ps -o args')).stdout;
      expect(ps).toContain('sleep 399');
      expect((await state('batchd-box')).Running).toBe(true);
    });

    it('kills the job on end-of-file on its stdin', async () => {
      const { channel } = await job('2');
      channel.end();
      const exit = await channel.exit;
      expect(exit.code).not.toBe(0);
      expect(await sleeps('2')).toEqual([]);
    });

    it('copies files in and out with their content and mode', async () => {
      expect((await sh(box(), 'mkdir -p /tmp/files')).code).toBe(0);
      for (const [size, mode] of [
        [0, 0o600],
        [512, 0o644],
        [70_001, 0o751],
      ] as const) {
        const content = randomBytes(size);
        const from = path.join(local, `in-${size}`);
        writeFileSync(from, content);
        await shell.put(box(), from, `/tmp/files/f-${size}`, mode, signal);
        const listed = await sh(box(), `stat -c '%a %s' /tmp/files/f-${size}`);
        expect(listed.stdout.trim()).toBe(`${mode.toString(8)} ${size}`);
        const back = path.join(local, `out-${size}`);
        expect(await shell.get(box(), `/tmp/files/f-${size}`, back, signal)).toBe(true);
        expect(readFileSync(back).equals(content)).toBe(true);
      }
    });

    it('answers false for a file that is not there, or not a regular file', async () => {
      expect(await shell.get(box(), '/tmp/files/none', path.join(local, 'none'), signal)).toBe(false);
      expect(await shell.get(box(), '/tmp', path.join(local, 'dir'), signal)).toBe(false);
    });
  });

  it('lists only containers labelled with its spool, and reaping removes or stops them alone', async () => {
    await plainContainer('stranger');
    await engine.docker.getContainer('stranger').start();
    await plainContainer('other-spool', { [TAG.spool]: 'another', [TAG.host]: 'x', [TAG.created]: 'true' });
    await engine.docker.getContainer('other-spool').start();
    // Ours but not created by batchd: reaping stops it and keeps it.
    await plainContainer('adopted', { ...SPOOL, [TAG.host]: 'adopted' });
    await engine.docker.getContainer('adopted').start();
    await provider.start?.(
      host('leftover', { settings: { image: engine.image, command: 'sleep inf' } }),
      signal,
    );

    const owned = (await provider.owned?.(signal)) ?? [];
    const byHost = new Map(owned.map((o) => [o.host ?? '', o]));
    expect([...byHost.keys()].sort()).toEqual(['adopted', 'box', 'leftover']);
    expect(byHost.get('leftover')).toMatchObject({ running: true, created: true });
    expect(byHost.get('adopted')).toMatchObject({ running: true, created: false });

    for (const o of owned) await provider.reap?.(o, signal);
    expect(await exists('batchd-leftover')).toBe(false);
    expect(await exists('batchd-box')).toBe(false);
    expect((await state('adopted')).Running).toBe(false);
    expect((await state('stranger')).Running).toBe(true);
    expect((await state('other-spool')).Running).toBe(true);
    expect(await provider.owned?.(signal)).toEqual([
      expect.objectContaining({ host: 'adopted', running: false }),
    ]);
  });
});
