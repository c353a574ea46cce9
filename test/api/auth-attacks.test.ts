import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Daemon } from '../../daemon/daemon.ts';
import { createLogger } from '../../daemon/log.ts';
import { errorBodySchema, submitResponseSchema, tokenCreatedSchema } from '../../daemon/protocol/index.ts';
import { startBatchd } from '../../daemon/start.ts';
import { makeDispatchEnv } from '../helpers/dispatch.ts';
import type { TestEnv } from '../helpers/env.ts';
import { JOB_TYPES, snapshotTree, writeUsersFile } from './api-helpers.ts';
import { basic, httpRequest, type HttpResult } from './http-client.ts';

const PASSWORD = 'correct horse battery staple';
const EXPIRED = 'bdt_expired-token-secret-0123456789abcdefghijklmnopq';
const ROOT = basic('root', PASSWORD);
const JOB = JSON.stringify({ type: 'echo', params: { message: 'should never be written' } });

/**
 * Attacks on a real server on loopback (basic, token and trusted-proxy authentication on): each is
 * refused with the right status, nothing is written to the spool, and no secret reaches the log.
 */
describe('authentication attacks (real server on loopback)', () => {
  let env: TestEnv;
  let daemon: Daemon;
  let url: string;
  let logFile: string;
  let aliceToken: string;
  let bobToken: string;
  let aliceJob: string;

  beforeAll(async () => {
    env = makeDispatchEnv({
      jobTypes: JOB_TYPES,
      queues: { alices: { enabled: false }, bobs: { enabled: false } },
      config: {
        manager: {
          enabled: true,
          host: '127.0.0.1',
          port: 0,
          max_body_bytes: 65_536,
          auth: { basic: true, token: true, proxy: { header: 'X-Auth-User', trusted: ['127.0.0.2'] } },
        },
      },
    });
    await writeUsersFile(
      env.etc,
      [
        { name: 'root', grants: [{ permission: 'SuperUser' }] },
        {
          name: 'alice',
          grants: [
            { permission: 'CreateJobs', queue_name: 'alices' },
            { permission: 'ViewJobs', queue_name: 'alices' },
          ],
        },
        {
          name: 'bob',
          grants: [
            { permission: 'CreateJobs', queue_name: 'bobs' },
            { permission: 'ViewJobs', queue_name: 'bobs' },
          ],
        },
      ],
      PASSWORD,
      [{ user: 'alice', secret: EXPIRED, expiresAt: new Date(Date.now() - 1000) }],
    );
    logFile = path.join(env.root, 'daemon.log');
    daemon = await startBatchd({
      configDir: env.etc,
      spool: env.spool,
      logger: createLogger({ level: 'debug', format: 'json', target: logFile }),
    });
    url = daemon.api?.url ?? '';
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const token = async (user: string): Promise<string> =>
      tokenCreatedSchema.parse(
        (
          await httpRequest(url, '/token', {
            method: 'POST',
            headers: { ...basic(user, PASSWORD), 'content-type': 'application/json' },
            body: '{}',
          })
        ).json(),
      ).token;
    aliceToken = await token('alice');
    bobToken = await token('bob');
    const submitted = await httpRequest(url, '/queue/alices', {
      method: 'POST',
      headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' },
      body: JOB,
    });
    aliceJob = submitResponseSchema.parse(submitted.json()).jobs[0] ?? '';
  }, 60_000);

  afterAll(async () => {
    await daemon.stop();
    env.cleanup();
  });

  /** Run an attack; it must be refused with `status` and leave the spool exactly as it was. */
  const refused = async (
    status: number,
    code: string,
    attack: () => Promise<HttpResult>,
  ): Promise<HttpResult> => {
    const before = snapshotTree(env.spool);
    const res = await attack();
    expect(res.status, res.text).toBe(status);
    expect(errorBodySchema.parse(res.json()).error.code).toBe(code);
    expect(snapshotTree(env.spool)).toEqual(before);
    return res;
  };
  const submit = (
    headers: Record<string, string>,
    queue = 'alices',
    extra: Parameters<typeof httpRequest>[2] = {},
  ): Promise<HttpResult> =>
    httpRequest(url, `/queue/${queue}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JOB,
      ...extra,
    });

  it('no credentials: 401 with a Basic challenge', async () => {
    const res = await refused(401, 'UNAUTHORIZED', () => submit({}));
    expect(res.headers['www-authenticate']).toBe('Basic realm="batchd", charset="UTF-8"');
  });

  it('a wrong password and an unknown user get the same 401', async () => {
    const wrong = await refused(401, 'UNAUTHORIZED', () => submit(basic('alice', 'not the password')));
    const unknown = await refused(401, 'UNAUTHORIZED', () => submit(basic('mallory', PASSWORD)));
    expect(wrong.json()).toEqual(unknown.json());
  });

  it('malformed credentials and unknown schemes: 401', async () => {
    await refused(401, 'UNAUTHORIZED', () => submit({ authorization: 'Basic !!!not-base64' }));
    await refused(401, 'UNAUTHORIZED', () =>
      submit({ authorization: `Basic ${Buffer.from('no-colon').toString('base64')}` }),
    );
    await refused(401, 'UNAUTHORIZED', () => submit({ authorization: 'Digest username="root"' }));
    await refused(401, 'UNAUTHORIZED', () => submit({ authorization: 'Bearer ' }));
  });

  it('a forged proxy header from an untrusted address: 401, even naming the superuser', async () => {
    await refused(401, 'UNAUTHORIZED', () => submit({ 'x-auth-user': 'root' }));
    await refused(401, 'UNAUTHORIZED', () => submit({ 'x-auth-user': 'root', ...basic('alice', PASSWORD) }));
  });

  it('the proxy header is taken from the trusted proxy address (and only for known users)', async () => {
    const ok = await httpRequest(url, '/whoami', {
      headers: { 'x-auth-user': 'bob' },
      localAddress: '127.0.0.2',
    });
    expect(ok.json()).toMatchObject({ name: 'bob', via: 'proxy' });
    await refused(401, 'UNAUTHORIZED', () =>
      submit({ 'x-auth-user': 'mallory' }, 'alices', { localAddress: '127.0.0.2' }),
    );
  });

  it('an expired token: 401', async () => {
    await refused(401, 'UNAUTHORIZED', () => submit({ authorization: `Bearer ${EXPIRED}` }));
  });

  it('a revoked token: 401', async () => {
    const created = tokenCreatedSchema.parse(
      (
        await httpRequest(url, '/token', {
          method: 'POST',
          headers: { ...basic('alice', PASSWORD), 'content-type': 'application/json' },
          body: '{}',
        })
      ).json(),
    );
    expect(
      (await httpRequest(url, '/whoami', { headers: { authorization: `Bearer ${created.token}` } })).status,
    ).toBe(200);
    expect(
      (
        await httpRequest(url, `/token/${created.id}`, {
          method: 'DELETE',
          headers: basic('alice', PASSWORD),
        })
      ).status,
    ).toBe(200);
    await refused(401, 'UNAUTHORIZED', () => submit({ authorization: `Bearer ${created.token}` }));
  });

  it("another user's token on a scoped resource: 403 (submit, list); their jobs and token ids are 404", async () => {
    const bob = { authorization: `Bearer ${bobToken}` };
    await refused(403, 'FORBIDDEN', () => submit(bob, 'alices'));
    // A job of a queue bob may not view is answered as one that does not exist.
    await refused(404, 'UNKNOWN_JOB', () => httpRequest(url, `/job/${aliceJob}`, { headers: bob }));
    await refused(404, 'UNKNOWN_JOB', () => httpRequest(url, `/job/${aliceJob}/log`, { headers: bob }));
    await refused(404, 'UNKNOWN_JOB', () =>
      httpRequest(url, `/job/${aliceJob}`, { method: 'DELETE', headers: bob }),
    );
    await refused(403, 'FORBIDDEN', () => httpRequest(url, '/queue/alices/jobs', { headers: bob }));
    const aliceTokens = (
      await httpRequest(url, '/token', { headers: { authorization: `Bearer ${aliceToken}` } })
    ).json<{ id: string }[]>();
    await refused(404, 'NOT_FOUND', () =>
      httpRequest(url, `/token/${aliceTokens[0]?.id}`, { method: 'DELETE', headers: bob }),
    );
    expect(
      (await httpRequest(url, '/whoami', { headers: { authorization: `Bearer ${aliceToken}` } })).status,
    ).toBe(200);
  });

  it('a token in the query string is not a credential', async () => {
    await refused(401, 'UNAUTHORIZED', () =>
      httpRequest(url, `/queue/alices?token=${aliceToken}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JOB,
      }),
    );
  });

  it('path traversal in queue, job, task, schedule and user names: 400 (or 404 once the URL is normalized)', async () => {
    for (const p of [
      '/queue/..%2F..%2Ftmp',
      '/queue/.staging',
      '/queue/a%2Fb',
      '/queue/%2e%2e%2f%2e%2e%2fetc',
      '/queue/..%5C..%5Cetc',
    ]) {
      await refused(400, 'NAME_INVALID', () =>
        httpRequest(url, p, {
          method: 'POST',
          headers: { ...ROOT, 'content-type': 'application/json' },
          body: JOB,
        }),
      );
    }
    await refused(400, 'NAME_INVALID', () =>
      httpRequest(url, '/job/..%2F..%2F..%2Fetc%2Fpasswd', { headers: ROOT }),
    );
    await refused(400, 'NAME_INVALID', () =>
      httpRequest(url, '/job/..%2Fdefault%2Fqueued/log', { headers: ROOT }),
    );
    await refused(400, 'NAME_INVALID', () =>
      httpRequest(url, '/queue/alices/task/..%2F..%2Fbobs', { headers: ROOT }),
    );
    await refused(400, 'NAME_INVALID', () =>
      httpRequest(url, '/schedule/..%2F..%2Fbatchd', { method: 'DELETE', headers: ROOT }),
    );
    await refused(400, 'NAME_INVALID', () =>
      httpRequest(url, '/user/..%2Fusers/permissions', { headers: ROOT }),
    );
    // Dot segments, plain or percent-encoded, are resolved by URL parsing before routing: nothing matches.
    await refused(404, 'NOT_FOUND', () => httpRequest(url, '/queue/../../etc/passwd', { headers: ROOT }));
    await refused(404, 'NOT_FOUND', () =>
      httpRequest(url, '/queue/%2e%2e', {
        method: 'POST',
        headers: { ...ROOT, 'content-type': 'application/json' },
        body: JOB,
      }),
    );
    await refused(422, 'ENTITY_INVALID', () =>
      httpRequest(url, '/queue', {
        method: 'POST',
        headers: { ...ROOT, 'content-type': 'application/json' },
        body: '{"name": "../../outside"}',
      }),
    );
    await refused(422, 'ENTITY_INVALID', () =>
      httpRequest(url, '/schedule', {
        method: 'POST',
        headers: { ...ROOT, 'content-type': 'application/json' },
        body: '{"name": "../../../tmp/x"}',
      }),
    );
    await refused(422, 'JOB_INVALID', () =>
      submit(ROOT, 'alices', {
        body: JSON.stringify({ type: 'echo', task: '../../escape', params: { message: ['a', 'b'] } }),
      }),
    );
  });

  it('malformed JSON: 400; YAML with an alias bomb: 400; deep nesting: refused, never a crash', async () => {
    await refused(400, 'BAD_JSON', () => submit(ROOT, 'alices', { body: '{"type": "echo", "params": {' }));
    await refused(400, 'BAD_JSON', () =>
      submit(ROOT, 'alices', { body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) }),
    );
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x"]',
      ...Array.from(
        { length: 9 },
        (_, i) =>
          `${'bcdefghij'[i]}: &${'bcdefghij'[i]} [*${'abcdefghi'[i]},*${'abcdefghi'[i]},*${'abcdefghi'[i]},*${'abcdefghi'[i]},*${'abcdefghi'[i]},*${'abcdefghi'[i]},*${'abcdefghi'[i]},*${'abcdefghi'[i]},*${'abcdefghi'[i]}]`,
      ),
    ].join('\n');
    const yaml = await httpRequest(url, '/queue/alices', {
      method: 'POST',
      headers: { ...ROOT, 'content-type': 'application/yaml' },
      body: bomb,
    });
    expect([400, 422]).toContain(yaml.status);
    const deep = await submit(ROOT, 'alices', { body: '['.repeat(30_000) + ']'.repeat(30_000) });
    expect([400, 422]).toContain(deep.status);
    expect((await httpRequest(url, '/whoami', { headers: ROOT })).status).toBe(200);
  });

  it('oversized bodies: 413, with and without Content-Length', async () => {
    const big = JSON.stringify({ type: 'echo', params: { message: 'x'.repeat(200_000) } });
    await refused(413, 'TOO_LARGE', () => submit(ROOT, 'alices', { body: big }));
    await refused(413, 'TOO_LARGE', () => submit(ROOT, 'alices', { body: big, chunked: true }));
  });

  it('no password, token or token hash appears in any log line', () => {
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('"msg":"http request"');
    for (const secret of [
      PASSWORD,
      aliceToken,
      bobToken,
      EXPIRED,
      Buffer.from(`root:${PASSWORD}`).toString('base64'),
    ]) {
      expect(log).not.toContain(secret);
    }
    expect(log).not.toMatch(/scrypt\$/);
    expect(log).not.toMatch(/authorization/i);
  });
});
