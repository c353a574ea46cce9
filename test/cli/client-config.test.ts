import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { resolveConfig } from '../../daemon/client/config.ts';
import { TokenStore } from '../../daemon/client/token-store.ts';
import { BatchdError } from '../../daemon/errors.ts';

let home: string;

beforeEach(() => {
  home = mkdtempSync(path.join(tmpdir(), 'batch-cli-config-'));
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

function userFile(content: string): string {
  const file = path.join(home, '.config', 'batchd', 'client.yaml');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
  return file;
}

describe('client settings precedence (flag > env > client.yaml > default)', () => {
  it('uses the defaults when nothing is set', async () => {
    const config = await resolveConfig({ flags: {}, env: { HOME: home, USER: 'x' } });
    expect(config.manager_url).toBe('http://127.0.0.1:9681');
    expect(config.queue).toBe('default');
    expect(config.type).toBeUndefined();
    expect(config.host).toBeUndefined();
    expect(config.file).toBeUndefined();
    expect(config.sources.queue).toBe('default');
  });

  it('reads ~/.config/batchd/client.yaml', async () => {
    const file = userFile(
      'manager_url: http://127.0.0.1:7000\nqueue: fromfile\ntype: echo\nhost: box\nusername: filer\n',
    );
    const config = await resolveConfig({ flags: {}, env: { HOME: home } });
    expect(config.file).toBe(file);
    expect(config).toMatchObject({
      manager_url: 'http://127.0.0.1:7000',
      queue: 'fromfile',
      type: 'echo',
      host: 'box',
      username: 'filer',
    });
    expect(config.sources.queue).toBe('file');
  });

  it('lets BATCH_* variables win over the file, and flags win over both', async () => {
    userFile('manager_url: http://127.0.0.1:7000\nqueue: fromfile\nusername: filer\npassword: filepw\n');
    const env = {
      HOME: home,
      BATCH_MANAGER_URL: 'http://127.0.0.1:7001',
      BATCH_QUEUE: 'fromenv',
      BATCH_PASSWORD: 'envpw',
    };
    const fromEnv = await resolveConfig({ flags: {}, env });
    expect(fromEnv).toMatchObject({
      manager_url: 'http://127.0.0.1:7001',
      queue: 'fromenv',
      username: 'filer',
      password: 'envpw',
    });
    expect(fromEnv.sources).toMatchObject({
      manager_url: 'env',
      queue: 'env',
      username: 'file',
      password: 'env',
    });
    const fromFlags = await resolveConfig({
      flags: { manager_url: 'http://127.0.0.1:7002', queue: 'fromflag', username: 'flagger' },
      env,
    });
    expect(fromFlags).toMatchObject({
      manager_url: 'http://127.0.0.1:7002',
      queue: 'fromflag',
      username: 'flagger',
      password: 'envpw',
    });
  });

  it('takes --client-config over $BATCH_CLIENT_CONFIG over the home file', async () => {
    userFile('queue: home\n');
    const envFile = path.join(home, 'env.yaml');
    const flagFile = path.join(home, 'flag.yaml');
    writeFileSync(envFile, 'queue: envfile\n');
    writeFileSync(flagFile, 'queue: flagfile\n');
    expect(
      (await resolveConfig({ flags: {}, env: { HOME: home, BATCH_CLIENT_CONFIG: envFile } })).queue,
    ).toBe('envfile');
    const fromFlag = await resolveConfig({
      flags: { clientConfig: flagFile },
      env: { HOME: home, BATCH_CLIENT_CONFIG: envFile },
    });
    expect(fromFlag.queue).toBe('flagfile');
  });

  it('reports an unknown field in client.yaml with its file and line', async () => {
    const file = userFile('queue: q\nmanager_ulr: http://x\n');
    const error: unknown = await resolveConfig({ flags: {}, env: { HOME: home } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatchdError);
    expect((error as BatchdError).code).toBe('CONFIG_INVALID');
    expect((error as Error).message).toContain(`${file}, line 2`);
    expect((error as Error).message).toContain('manager_ulr');
  });

  it('fails clearly when a named client config is missing, but not when the home one is', async () => {
    await expect(
      resolveConfig({ flags: { clientConfig: path.join(home, 'nope.yaml') }, env: { HOME: home } }),
    ).rejects.toThrow(/Cannot read the client config/);
    expect((await resolveConfig({ flags: {}, env: { HOME: home } })).file).toBeUndefined();
  });

  it('normalizes the manager URL and rejects a non-HTTP one', async () => {
    expect(
      (await resolveConfig({ flags: { manager_url: '127.0.0.1:9999/' }, env: { HOME: home } })).manager_url,
    ).toBe('http://127.0.0.1:9999');
    await expect(
      resolveConfig({ flags: { manager_url: 'ftp://host' }, env: { HOME: home } }),
    ).rejects.toThrow(/http:\/\/ or https:\/\//);
  });

  it('resolves TLS file paths relative to client.yaml', async () => {
    userFile(
      'manager_url: https://127.0.0.1:9681\nca_certificate: ca.pem\ndisable_server_certificate_check: true\n',
    );
    const config = await resolveConfig({ flags: {}, env: { HOME: home } });
    expect(config.tls).toEqual({
      ca: path.join(home, '.config', 'batchd', 'ca.pem'),
      rejectUnauthorized: false,
    });
  });

  it('uses a token saved by login only when no token is set elsewhere', async () => {
    const stored = (url: string): string | undefined =>
      url === 'http://127.0.0.1:9681' ? 'saved' : undefined;
    const saved = await resolveConfig({ flags: {}, env: { HOME: home }, storedToken: stored });
    expect(saved.token).toBe('saved');
    expect(saved.sources.token).toBe('login');
    const fromEnv = await resolveConfig({
      flags: {},
      env: { HOME: home, BATCH_TOKEN: 'envtoken' },
      storedToken: stored,
    });
    expect(fromEnv.token).toBe('envtoken');
    expect(
      (
        await resolveConfig({
          flags: { manager_url: 'http://127.0.0.1:1' },
          env: { HOME: home },
          storedToken: stored,
        })
      ).token,
    ).toBeUndefined();
  });
});

describe('the token store', () => {
  it('keeps tokens per server in a file only its owner can read', () => {
    const store = new TokenStore(path.join(home, 'cfg', 'token'));
    store.set('http://a:1', {
      token: 'secret-a',
      id: 't1',
      expires_at: new Date(Date.now() + 60_000).toISOString(),
    });
    store.set('http://b:2', { token: 'secret-b' });
    expect(statSync(store.file).mode & 0o777).toBe(0o600);
    expect(store.get('http://a:1')).toBe('secret-a');
    expect(store.get('http://b:2')).toBe('secret-b');
    expect(store.remove('http://a:1')).toBe(true);
    expect(store.get('http://a:1')).toBeUndefined();
    expect(store.get('http://b:2')).toBe('secret-b');
  });

  it('ignores an expired token', () => {
    const store = new TokenStore(path.join(home, 'token'));
    store.set('http://a:1', { token: 'old', expires_at: new Date(Date.now() - 1000).toISOString() });
    expect(store.get('http://a:1')).toBeUndefined();
    expect(store.entry('http://a:1')?.token).toBe('old');
  });
});
