import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { UserStore } from '../../daemon/auth/store.ts';
import type { Grant, UserInfo, Whoami } from '../../daemon/protocol/index.ts';
import { type ApiDaemon, startApiDaemon } from './api-daemon.ts';
import { CLI_MAIN, json } from './run-cli.ts';

/** `batch` against a daemon with basic and token authentication: credentials, login, permissions. */
let d: ApiDaemon;
const ROOT = { BATCH_USERNAME: 'root', BATCH_PASSWORD: 'rootpassword' };
const BOB = { BATCH_USERNAME: 'bob', BATCH_PASSWORD: 'bobpassword' };

beforeAll(async () => {
  d = await startApiDaemon({
    manager: { auth: { basic: true, token: true } },
    jobTypes: {
      echo: { template: "printf '%s\\n' $message", params: [{ name: 'message', type: 'String' }] },
    },
    beforeStart: async (env) => {
      const users = new UserStore(path.join(env.etc, 'users.yaml'));
      await users.addUser('root', 'rootpassword', { superuser: true });
      await users.addUser('bob', 'bobpassword');
    },
  });
});

afterAll(async () => {
  await d?.stop();
});

describe('credentials', () => {
  it('refuses a read without credentials (no terminal to ask on) with exit 4 and says how to log in', async () => {
    const result = await d.batch(['ls']);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('run `batch login`');
  });

  it('exits 4 on a wrong password; BATCH_USERNAME and BATCH_PASSWORD authenticate', async () => {
    expect((await d.batch(['-U', 'root', '-P', 'wrong', 'ls'])).code).toBe(4);
    const me = json<Whoami>(await d.batch(['whoami', '--json'], { env: ROOT }));
    expect(me).toMatchObject({ name: 'root', superuser: true, via: 'basic' });
  });

  it('asks for the password on a terminal, without echoing it, when the server offers basic auth', async () => {
    const output = await onTerminal(['-U', 'root', 'whoami'], 'rootpassword');
    expect(output.text).toContain('Password for root at');
    expect(output.text).not.toContain('rootpassword');
    expect(output.text).toMatch(/superuser:\s+yes/);
    expect(output.text).toMatch(/│\s*1\s*│\s*SuperUser/); // a boxed table on a terminal
    expect(output.code).toBe(0);
  });
});

describe('permissions', () => {
  it('exits 4 with a hint when a permission is missing; grant adds it and grant -d revokes it', async () => {
    const refused = await d.batch(['enqueue', '-t', 'echo', 'hi'], { env: BOB });
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/bob lacks the CreateJobs permission.*batch grant USER -a -p PERMISSION/);
    const granted = json<{ id: number }>(
      await d.batch(['grant', 'bob', '-a', '-p', 'createjobs', '-q', 'default', '-t', 'echo', '--json'], {
        env: ROOT,
      }),
    );
    const grants = json<Grant[]>(await d.batch(['grant', 'bob', '--json'], { env: ROOT }));
    expect(grants).toEqual([
      {
        id: granted.id,
        user_name: 'bob',
        permission: 'CreateJobs',
        queue_name: 'default',
        type_name: 'echo',
        host_name: null,
      },
    ]);
    expect((await d.batch(['enqueue', '-t', 'echo', 'hi'], { env: BOB })).code).toBe(0);
    expect((await d.batch(['grant', 'bob', '-d', '-i', String(granted.id)], { env: ROOT })).code).toBe(0);
    expect((await d.batch(['enqueue', '-t', 'echo', 'hi'], { env: BOB })).code).toBe(4);
  });

  it('job -u --at/-h/-p and queue -d --status exit 4 without ManageJobs / ManageQueues, changing nothing', async () => {
    const enqueued = await d.batch(['enqueue', '-t', 'echo', 'later', '--at', '+1h'], { env: ROOT });
    const id = enqueued.stdout.trim();
    // Without any permission on the queue, the job is not even there for bob (no existence leak).
    expect((await d.batch(['job', id, '--at', 'any'], { env: BOB })).code).toBe(3);
    expect(
      (await d.batch(['grant', 'bob', '-a', '-p', 'viewjobs', '-q', 'default'], { env: ROOT })).code,
    ).toBe(0);
    for (const args of [
      ['job', id, '--at', 'any'],
      ['job', id, '-h', '*'],
      ['job', id, '-p', 'up'],
      ['queue', 'default', '-d', '--status', 'queued'],
    ]) {
      const refused = await d.batch(args, { env: BOB });
      expect(refused.code, args.join(' ')).toBe(4);
      expect(refused.stderr).toMatch(/bob lacks the Manage(Jobs|Queues) permission/);
    }
    const job = json<{ status: string; not_before: string | null }>(
      await d.batch(['job', id, '--json'], { env: ROOT }),
    );
    expect(job.status).toBe('queued');
    expect(job.not_before).not.toBeNull();
    expect((await d.batch(['job', id, '-d'], { env: ROOT })).code).toBe(0);
  });

  it('user adds a user with the password from stdin, and that user changes it', async () => {
    expect((await d.batch(['user', 'carol', '-a'], { env: ROOT, input: 'carolpass1\n' })).code).toBe(0);
    const users = json<UserInfo[]>(await d.batch(['user', '--json'], { env: ROOT }));
    expect(users.map((u) => u.name).sort()).toEqual(['bob', 'carol', 'root']);
    const carol = { BATCH_USERNAME: 'carol', BATCH_PASSWORD: 'carolpass1' };
    expect((await d.batch(['user', '-u'], { env: carol, input: 'carolpass2\n' })).code).toBe(0);
    expect((await d.batch(['whoami'], { env: carol })).code).toBe(4);
    expect((await d.batch(['whoami'], { env: { ...carol, BATCH_PASSWORD: 'carolpass2' } })).code).toBe(0);
    expect((await d.batch(['user', 'dave', '-a'], { env: ROOT, input: 'short\n' })).code).toBe(6); // too short for the server
  });
});

describe('login', () => {
  it('keeps the token in a file only its owner can read, never prints it, and later commands use it until logout', async () => {
    const login = await d.batch(['login', '-U', 'root', '--password-stdin', '--ttl', '10m'], {
      input: 'rootpassword\n',
    });
    expect(login.code).toBe(0);
    expect(login.stdout).toContain(`logged in to ${d.url} as root`);
    const file = path.join(d.home, '.config', 'batchd', 'token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const token =
      (JSON.parse(readFileSync(file, 'utf8')) as Record<string, { token: string }>)[d.url]?.token ?? '';
    expect(token.length).toBeGreaterThan(16);
    expect(login.stdout + login.stderr).not.toContain(token);

    expect(json<Whoami>(await d.batch(['whoami', '--json']))).toMatchObject({ name: 'root', via: 'token' });
    // A password from the environment outranks a token saved by login.
    expect(json<Whoami>(await d.batch(['whoami', '--json'], { env: BOB }))).toMatchObject({
      name: 'bob',
      via: 'basic',
    });

    const logout = await d.batch(['logout']);
    expect(logout).toMatchObject({
      code: 0,
      stdout: `logged out of ${d.url}: token revoked and forgotten\n`,
    });
    expect((await d.batch(['whoami'])).code).toBe(4);
    expect((await d.batch(['whoami'], { env: { BATCH_TOKEN: token } })).code).toBe(4); // revoked on the server too
  });

  it('refuses a login with a wrong password with exit 4 and stores nothing', async () => {
    const result = await d.batch(['login', '-U', 'root', '--password-stdin'], { input: 'nope\n' });
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('login refused for root');
    const file = path.join(d.home, '.config', 'batchd', 'token');
    const stored = existsSync(file)
      ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>)
      : {};
    expect(stored[d.url]).toBeUndefined();
  });
});

/** Run `batch` on a pseudo-terminal (util-linux `script`), typing `secret` once the prompt shows. */
function onTerminal(args: string[], secret: string): Promise<{ code: number | null; text: string }> {
  const command = [process.execPath, CLI_MAIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    env: { PATH: process.env.PATH, HOME: d.home, TERM: 'xterm', BATCH_MANAGER_URL: d.url },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let text = '';
  let typed = false;
  const onData = (chunk: Buffer): void => {
    text += chunk.toString();
    if (!typed && text.includes('Password for')) {
      typed = true;
      child.stdin.write(`${secret}\r`);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, text });
    }),
  );
}
