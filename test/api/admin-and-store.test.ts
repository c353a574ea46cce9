import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { verifyPassword } from '../../daemon/auth/password.ts';
import { UserStore } from '../../daemon/auth/store.ts';
import { DAEMON_MAIN, type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import { makeEnv, type TestEnv } from '../helpers/env.ts';
import { eventually } from './api-helpers.ts';
import { basic, httpRequest } from './http-client.ts';

const envs: TestEnv[] = [];
const procs: DaemonProcess[] = [];
afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  for (const e of envs) e.cleanup();
});

/** Run `batchd admin ...` as a real process with `input` on its stdin (not a terminal). */
function admin(
  args: string[],
  input: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DAEMON_MAIN, 'admin', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, BATCHD_CONFIG: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('batchd admin create-superuser and passwd', () => {
  it('create the first superuser, refuse a second one of that name, change the password: a running daemon follows', async () => {
    const env = makeEnv({
      config: { manager: { enabled: true, host: '127.0.0.1', port: 0, auth: { basic: true } } },
    });
    envs.push(env);
    const created = await admin(
      ['create-superuser', 'alice', '--config', env.etc, '--password-stdin'],
      'first-password\n',
    );
    expect(created, created.stderr).toMatchObject({ code: 0 });
    expect(created.stdout).toContain('superuser "alice" created');
    const file = path.join(env.etc, 'users.yaml');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).not.toContain('first-password');

    const again = await admin(['create-superuser', 'alice', '--config', env.etc], 'other-password\n');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists');

    const urlFile = path.join(env.root, 'url');
    const daemon = await startDaemon(env.etc, env.spool, { extraArgs: ['--api-url-file', urlFile] });
    procs.push(daemon);
    const url = await eventually(
      () => existsSync(urlFile) && readFileSync(urlFile, 'utf8').trim(),
      15_000,
      'API url',
    );
    expect(
      (await httpRequest(url, '/whoami', { headers: basic('alice', 'first-password') })).json(),
    ).toMatchObject({ name: 'alice', superuser: true });

    const changed = await admin(['passwd', 'alice', '--config', env.etc], 'second-password\n');
    expect(changed.code, changed.stderr).toBe(0);
    await eventually(
      async () =>
        (await httpRequest(url, '/whoami', { headers: basic('alice', 'second-password') })).status === 200,
      10_000,
      'new password accepted',
    );
    expect((await httpRequest(url, '/whoami', { headers: basic('alice', 'first-password') })).status).toBe(
      401,
    );
    await daemon.stop();
  });

  it('refuses short passwords, unknown users for passwd, bad names, and a missing config folder', async () => {
    const env = makeEnv();
    envs.push(env);
    const short = await admin(['create-superuser', 'root', '--config', env.etc], 'short\n');
    expect([short.code, short.stderr]).toEqual([
      1,
      expect.stringContaining('at least 8 characters') as unknown,
    ]);
    const unknown = await admin(['passwd', 'nobody', '--config', env.etc], 'long-enough-pw\n');
    expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringContaining('Unknown user') as unknown]);
    const badName = await admin(['create-superuser', '../evil', '--config', env.etc], 'long-enough-pw\n');
    expect(badName.code).toBe(1);
    const missing = await admin(
      ['create-superuser', '--config', path.join(env.root, 'nope')],
      'long-enough-pw\n',
    );
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringContaining('does not exist') as unknown]);
    const root = await admin(['create-superuser', '--config', env.etc], 'long-enough-pw\n');
    expect([root.code, root.stdout]).toEqual([0, expect.stringContaining('"root"') as unknown]);
    expect(existsSync(path.join(env.root, 'nope'))).toBe(false);
  });
});

describe('the users store', () => {
  it('hashes with scrypt and a salt per hash: the same password never gives the same hash', async () => {
    const env = makeEnv();
    envs.push(env);
    const store = UserStore.forConfigDir(env.etc);
    await store.addUser('a', 'same-password');
    await store.addUser('b', 'same-password');
    const [ha, hb] = [store.passwordHash('a'), store.passwordHash('b')];
    expect(ha).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
    expect(ha).not.toBe(hb);
    expect(await verifyPassword('same-password', ha)).toBe(true);
    expect(await verifyPassword('same-passwore', ha)).toBe(false);
    expect(await verifyPassword('same-password', undefined)).toBe(false);
  });

  it("two writers (the daemon and batchd admin) never lose each other's changes", async () => {
    const env = makeEnv();
    envs.push(env);
    const one = UserStore.forConfigDir(env.etc);
    await one.addUser('u', 'password-123');
    const two = UserStore.forConfigDir(env.etc);
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => [
        one.addGrant('u', { permission: 'ViewJobs', queue_name: `q${i}` }),
        two.addGrant('u', { permission: 'ManageJobs', queue_name: `q${i}` }),
      ]).flat(),
    );
    const fresh = UserStore.forConfigDir(env.etc);
    const grants = fresh.grantsOf('u');
    expect(grants).toHaveLength(20);
    expect(new Set(grants.map((g) => g.id)).size).toBe(20);
    expect(statSync(path.join(env.etc, 'users.yaml')).mode & 0o777).toBe(0o600);
  });

  it('an invalid edit by hand is reported and the last good version stays in force', async () => {
    const env = makeEnv();
    envs.push(env);
    const store = UserStore.forConfigDir(env.etc);
    await store.addUser('keeper', 'password-123');
    writeFileSync(path.join(env.etc, 'users.yaml'), 'users: [this is not right\n');
    await new Promise((r) => setTimeout(r, 600));
    expect(store.has('keeper')).toBe(true);
    expect(() => UserStore.forConfigDir(env.etc)).toThrow(/users\.yaml/);
  });
});
