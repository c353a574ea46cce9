import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ApiDaemon, startApiDaemon } from './api-daemon.ts';

/** client.yaml's TLS settings against a daemon that serves HTTPS with a self-signed certificate. */
let d: ApiDaemon;
let pki: string;

beforeAll(async () => {
  pki = mkdtempSync(path.join(tmpdir(), 'batch-cli-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ].concat(['-keyout', path.join(pki, 'key.pem'), '-out', path.join(pki, 'cert.pem')]),
    { stdio: 'ignore' },
  );
  d = await startApiDaemon({
    manager: { tls: { cert: path.join(pki, 'cert.pem'), key: path.join(pki, 'key.pem') } },
  });
});

afterAll(async () => {
  await d?.stop();
  rmSync(pki, { recursive: true, force: true });
});

function clientYaml(name: string, lines: string[]): string {
  const dir = path.join(d.home, name);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'client.yaml');
  writeFileSync(file, [`manager_url: ${d.url}`, ...lines].join('\n') + '\n');
  return file;
}

describe('HTTPS', () => {
  it('trusts the server through ca_certificate (relative to client.yaml)', async () => {
    expect(d.url).toMatch(/^https:/);
    const file = clientYaml('trusted', [
      `ca_certificate: ${path.relative(path.join(d.home, 'trusted'), path.join(pki, 'cert.pem'))}`,
    ]);
    const result = await d.batch(['--client-config', file, 'stats', '--json'], {
      env: { BATCH_MANAGER_URL: '' },
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('refuses an untrusted certificate with exit 5 and says which setting fixes it', async () => {
    const file = clientYaml('untrusted', []);
    const result = await d.batch(['--client-config', file, 'stats'], { env: { BATCH_MANAGER_URL: '' } });
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/certificate is not trusted.*set ca_certificate in client\.yaml/);
  });

  it('skips the check only when client.yaml says disable_server_certificate_check', async () => {
    const file = clientYaml('unchecked', ['disable_server_certificate_check: true']);
    expect((await d.batch(['--client-config', file, 'stats'], { env: { BATCH_MANAGER_URL: '' } })).code).toBe(
      0,
    );
  });
});
