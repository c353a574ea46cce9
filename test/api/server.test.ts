import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer, type Server } from 'node:net';
import path from 'node:path';

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { planListen } from '../../daemon/api/serve.ts';
import { ConfigStore } from '../../daemon/config/store.ts';
import type { Daemon } from '../../daemon/daemon.ts';
import { BatchdError } from '../../daemon/errors.ts';
import { EventBus } from '../../daemon/events.ts';
import { startBatchd } from '../../daemon/start.ts';
import { makeDispatchEnv } from '../helpers/dispatch.ts';
import { findJob, makeEnv, type TestEnv } from '../helpers/env.ts';
import { eventually, JOB_TYPES } from './api-helpers.ts';
import { httpRequest } from './http-client.ts';

const silent = pino({ level: 'silent' });
const envs: TestEnv[] = [];
const daemons: Daemon[] = [];

async function start(manager: Record<string, unknown>): Promise<{ env: TestEnv; daemon: Daemon }> {
  const env = makeDispatchEnv({
    jobTypes: JOB_TYPES,
    config: { manager: { enabled: true, host: '127.0.0.1', port: 0, ...manager } },
  });
  envs.push(env);
  const daemon = await startBatchd({ configDir: env.etc, spool: env.spool, logger: silent });
  daemons.push(daemon);
  return { env, daemon };
}

afterAll(async () => {
  for (const d of daemons) await d.stop();
  for (const e of envs) e.cleanup();
});

describe('serving the API', () => {
  it('port 0 takes a free port; two daemons never collide', async () => {
    const a = await start({});
    const b = await start({});
    expect(a.daemon.api?.port).toBeGreaterThan(0);
    expect(a.daemon.api?.port).not.toBe(b.daemon.api?.port);
    for (const d of [a, b]) expect((await httpRequest(d.daemon.api?.url ?? '', '/queue')).status).toBe(200);
  });

  it('manager.enabled: false starts no server', async () => {
    const env = makeEnv();
    envs.push(env);
    const daemon = await startBatchd({ configDir: env.etc, spool: env.spool, logger: silent });
    daemons.push(daemon);
    expect(daemon.api).toBeUndefined();
  });

  it('a port in use: the daemon runs on without the API (another dispatcher of the spool has it)', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const { env, daemon } = await start({ port });
      expect(daemon.api).toBeUndefined();
      const [job] = daemon.submit('default', { data: { command: 'true' } });
      await eventually(() => daemon.locate(job?.spec.id ?? '')?.state === 'done', 10_000, 'job done');
      // The job ran and left its folder in the spool, as without an API.
      expect(findJob(env.spool, job?.spec.id ?? '')).toEqual([{ queue: 'default', state: 'done' }]);
    } finally {
      blocker.close();
    }
  });

  it('serves the API on another loopback address (127.0.0.2) with authentication disabled', async () => {
    const { daemon } = await start({ host: '127.0.0.2' });
    expect(daemon.api?.url).toMatch(/^http:\/\/127\.0\.0\.2:\d+$/);
    expect((await httpRequest(daemon.api?.url ?? '', '/whoami')).json()).toMatchObject({ name: 'anonymous' });
  });

  it('stop() closes the server even while an event stream is open', async () => {
    const { daemon } = await start({});
    const url = new URL(daemon.api?.url ?? '');
    const opened = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get({ host: url.hostname, port: url.port, path: '/events', agent: false }, resolve);
      req.on('error', reject);
    });
    expect(opened.statusCode).toBe(200);
    const ended = new Promise<void>((resolve) => opened.on('close', resolve));
    opened.resume();
    const started = Date.now();
    await daemon.stop();
    await ended;
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('the listen guard', () => {
  const plan = (manager: Record<string, unknown>): ReturnType<typeof planListen> => {
    const env = makeEnv({ config: { manager } });
    envs.push(env);
    return planListen(new ConfigStore(env.etc, new EventBus(() => undefined), silent));
  };

  it('refuses a non-loopback address with authentication disabled, before anything starts', async () => {
    const env = makeEnv({ config: { manager: { enabled: true, host: '0.0.0.0', port: 0 } } });
    envs.push(env);
    const started = startBatchd({ configDir: env.etc, spool: env.spool, logger: silent });
    await expect(started).rejects.toThrow(/authentication is disabled/);
    await expect(started).rejects.toBeInstanceOf(BatchdError);
    for (const host of ['0.0.0.0', '::', '192.0.2.10', 'example.org']) {
      expect(() => plan({ enabled: true, host })).toThrow(/allow_unauthenticated_remote/);
    }
  });

  it('allows it when told explicitly, or when authentication is on (checked without binding)', () => {
    expect(plan({ host: '0.0.0.0', allow_unauthenticated_remote: true })).toMatchObject({ host: '0.0.0.0' });
    expect(plan({ host: '0.0.0.0', auth: { basic: true } })).toMatchObject({ host: '0.0.0.0' });
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) expect(plan({ host }).host).toBe(host);
  });
});

describe('TLS', () => {
  let dir: string;
  let cert: Buffer;
  beforeAll(() => {
    const env = makeEnv();
    envs.push(env);
    dir = env.root;
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
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(path.join(dir, 'cert.pem'));
  });

  it('serves HTTPS with the certificate and key from batchd.yaml', async () => {
    const { daemon } = await start({
      tls: { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') },
    });
    const url = daemon.api?.url ?? '';
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await httpRequest(url, '/queue', { ca: cert });
    expect(res.status).toBe(200);
    await expect(httpRequest(url, '/queue')).rejects.toThrow(/self-signed|certificate/i);
    await expect(httpRequest(url.replace('https:', 'http:'), '/queue')).rejects.toThrow();
  });

  it('relative paths are relative to the config folder; an unreadable or invalid key stops the start', async () => {
    const env = makeEnv({
      config: { manager: { enabled: true, port: 0, tls: { cert: 'missing.pem', key: 'missing-key.pem' } } },
    });
    envs.push(env);
    await expect(startBatchd({ configDir: env.etc, spool: env.spool, logger: silent })).rejects.toThrow(
      /manager\.tls\.cert: cannot read .*missing\.pem/,
    );
    writeFileSync(path.join(env.etc, 'missing.pem'), cert);
    writeFileSync(path.join(env.etc, 'missing-key.pem'), 'not a key');
    await expect(startBatchd({ configDir: env.etc, spool: env.spool, logger: silent })).rejects.toThrow(
      /manager\.tls: the certificate or key is not usable/,
    );
  });
});

describe('CORS', () => {
  it("answers preflights for configured origins only; a plain OPTIONS / is still batchd's auth-methods call", async () => {
    const { daemon } = await start({ cors: { origins: ['https://ui.example'], credentials: true } });
    const url = daemon.api?.url ?? '';
    const preflight = await httpRequest(url, '/queue', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://ui.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://ui.example');
    expect(preflight.headers['access-control-allow-credentials']).toBe('true');
    expect(preflight.headers['access-control-allow-headers']).toContain('Authorization');
    const foreign = await httpRequest(url, '/queue', { headers: { origin: 'https://evil.example' } });
    expect(foreign.status).toBe(200);
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
    const plain = await httpRequest(url, '/', { method: 'OPTIONS' });
    expect([plain.status, plain.json()]).toEqual([200, []]);
  });

  it('sends no CORS headers when none is configured', async () => {
    const { daemon } = await start({});
    const res = await httpRequest(daemon.api?.url ?? '', '/queue', {
      headers: { origin: 'https://ui.example' },
    });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});
