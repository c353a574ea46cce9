import { statSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

import {
  errorBodySchema,
  grantSchema,
  tokenCreatedSchema,
  tokenInfoSchema,
  userInfoSchema,
  whoamiSchema,
} from '../../daemon/protocol/index.ts';
import { type Auth, type InProcessApi, startApi } from './api-helpers.ts';

const ROOT: Auth = { basic: ['root', 'root-password'] };
const ALICE: Auth = { basic: ['alice', 'alice-password'] };

/** Users, grants and tokens (authentication on: basic and token). */
describe('user, permission and token endpoints', () => {
  let t: InProcessApi;
  beforeAll(async () => {
    t = await startApi({ auth: { basic: true, token: true } });
    await t.api.ctx.users.addUser('root', 'root-password', { superuser: true });
  });
  afterAll(async () => t.close());

  const code = (body: unknown): string => errorBodySchema.parse(body).error.code;

  it('OPTIONS / names the enabled methods', async () => {
    expect((await t.json('OPTIONS', '/')).body).toEqual(['basic', 'token']);
  });

  it('POST /user creates a user whose password is stored as a scrypt hash in a 0600 users.yaml', async () => {
    const res = await t.json('POST', '/user', {
      auth: ROOT,
      body: { name: 'alice', password: 'alice-password' },
    });
    expect(res.status).toBe(201);
    expect(userInfoSchema.parse(res.body)).toEqual({ name: 'alice', superuser: false });
    const file = path.join(t.env.etc, 'users.yaml');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = (await import('node:fs')).readFileSync(file, 'utf8');
    expect(text).toMatch(/password: scrypt\$32768\$8\$1\$/);
    expect(text).not.toContain('alice-password');
    expect(whoamiSchema.parse((await t.json('GET', '/whoami', { auth: ALICE })).body)).toMatchObject({
      name: 'alice',
      superuser: false,
      via: 'basic',
    });
  });

  it('POST /user refuses duplicates (409), short passwords and bad names (422)', async () => {
    const dup = await t.json('POST', '/user', {
      auth: ROOT,
      body: { name: 'alice', password: 'another-one' },
    });
    expect([dup.status, code(dup.body)]).toEqual([409, 'ALREADY_EXISTS']);
    expect(
      (await t.json('POST', '/user', { auth: ROOT, body: { name: 'bob', password: 'short' } })).status,
    ).toBe(422);
    expect(
      (await t.json('POST', '/user', { auth: ROOT, body: { name: '../bob', password: 'long-enough' } }))
        .status,
    ).toBe(422);
  });

  it('GET /user lists users with their superuser flag', async () => {
    const users = z.array(userInfoSchema).parse((await t.json('GET', '/user', { auth: ROOT })).body);
    expect(users).toEqual([
      { name: 'alice', superuser: false },
      { name: 'root', superuser: true },
    ]);
  });

  it('grants: POST adds (201 with id), GET lists, DELETE revokes; 404 for unknown users and grants', async () => {
    const added = await t.json<{ id: number }>('POST', '/user/alice/permissions', {
      auth: ROOT,
      body: { permission: 'ViewJobs', queue_name: 'default' },
    });
    expect(added.status).toBe(201);
    const grants = z
      .array(grantSchema)
      .parse((await t.json('GET', '/user/alice/permissions', { auth: ROOT })).body);
    expect(grants).toEqual([
      {
        id: added.body.id,
        user_name: 'alice',
        permission: 'ViewJobs',
        queue_name: 'default',
        type_name: null,
        host_name: null,
      },
    ]);
    expect((await t.json('GET', '/queue/default/jobs', { auth: ALICE })).status).toBe(200);
    expect(await t.json('DELETE', `/user/alice/permissions/${added.body.id}`, { auth: ROOT })).toEqual({
      status: 200,
      body: { ok: true },
    });
    expect((await t.json('GET', '/queue/default/jobs', { auth: ALICE })).status).toBe(403);
    expect((await t.json('DELETE', `/user/alice/permissions/${added.body.id}`, { auth: ROOT })).status).toBe(
      404,
    );
    expect((await t.json('GET', '/user/nobody/permissions', { auth: ROOT })).status).toBe(404);
    expect(
      (await t.json('POST', '/user/nobody/permissions', { auth: ROOT, body: { permission: 'ViewJobs' } }))
        .status,
    ).toBe(404);
    expect(
      (await t.json('POST', '/user/alice/permissions', { auth: ROOT, body: { permission: 'FlyPlanes' } }))
        .status,
    ).toBe(422);
  });

  it("PUT /user/:n: a user changes their own password with their password; not another's; a superuser any", async () => {
    expect(
      (await t.json('PUT', '/user/alice', { auth: ALICE, body: { password: 'alice-password-2' } })).status,
    ).toBe(200);
    expect((await t.json('GET', '/whoami', { auth: ALICE })).status).toBe(401);
    const alice2: Auth = { basic: ['alice', 'alice-password-2'] };
    expect((await t.json('GET', '/whoami', { auth: alice2 })).status).toBe(200);
    const other = await t.json('PUT', '/user/root', { auth: alice2, body: { password: 'taken-over!' } });
    expect([other.status, code(other.body)]).toEqual([403, 'FORBIDDEN']);
    expect(
      (await t.json('PUT', '/user/alice', { auth: ROOT, body: { password: 'alice-password' } })).status,
    ).toBe(200);
    expect(
      (await t.json('PUT', '/user/nobody', { auth: ROOT, body: { password: 'whatever-1' } })).status,
    ).toBe(404);
    expect((await t.json('PUT', '/user/alice', { auth: ROOT, body: { password: 'short' } })).status).toBe(
      422,
    );
  });

  it('tokens: create (shown once), use, list (never the secret), revoke', async () => {
    const res = await t.json('POST', '/token', { auth: ALICE, body: { ttl: '2h', name: 'laptop' } });
    expect(res.status).toBe(201);
    const created = tokenCreatedSchema.parse(res.body);
    expect(created).toMatchObject({ name: 'laptop', user_name: 'alice' });
    expect(Date.parse(created.expires_at) - Date.now()).toBeGreaterThan(7_100_000);
    const token: Auth = { token: created.token };
    expect(whoamiSchema.parse((await t.json('GET', '/whoami', { auth: token })).body)).toMatchObject({
      name: 'alice',
      via: 'token',
    });
    const listed = z.array(tokenInfoSchema).parse((await t.json('GET', '/token', { auth: ALICE })).body);
    expect(listed.map((x) => x.id)).toEqual([created.id]);
    expect(JSON.stringify(listed)).not.toContain(created.token);
    expect((await import('node:fs')).readFileSync(path.join(t.env.etc, 'users.yaml'), 'utf8')).not.toContain(
      created.token,
    );
    expect(await t.json('DELETE', `/token/${created.id}`, { auth: ALICE })).toEqual({
      status: 200,
      body: { ok: true },
    });
    expect((await t.json('GET', '/whoami', { auth: token })).status).toBe(401);
    expect((await t.json('DELETE', `/token/${created.id}`, { auth: ALICE })).status).toBe(404);
  });

  it("tokens: a token cannot make tokens or change the password; ttl is checked; another user's token is not found", async () => {
    const mine = tokenCreatedSchema.parse((await t.json('POST', '/token', { auth: ALICE, body: {} })).body);
    expect(Date.parse(mine.expires_at) - Date.now()).toBeLessThanOrEqual(3_600_000);
    const chained = await t.json('POST', '/token', { auth: { token: mine.token }, body: {} });
    expect([chained.status, code(chained.body)]).toEqual([403, 'FORBIDDEN']);
    expect(
      (
        await t.json('PUT', '/user/alice', {
          auth: { token: mine.token },
          body: { password: 'by-token-123' },
        })
      ).status,
    ).toBe(403);
    expect((await t.json('POST', '/token', { auth: ALICE, body: { ttl: '400d' } })).status).toBe(422);
    expect((await t.json('POST', '/token', { auth: ALICE, body: { ttl: 'soon' } })).status).toBe(422);
    const roots = tokenCreatedSchema.parse((await t.json('POST', '/token', { auth: ROOT, body: {} })).body);
    expect((await t.json('DELETE', `/token/${roots.id}`, { auth: ALICE })).status).toBe(404);
    expect(
      z
        .array(tokenInfoSchema)
        .parse((await t.json('GET', '/token', { auth: ROOT })).body)
        .map((x) => x.user_name)
        .sort(),
    ).toEqual(['alice', 'root']);
    expect((await t.json('DELETE', `/token/${mine.id}`, { auth: ROOT })).status).toBe(200);
    expect((await t.json('DELETE', '/token/not-an-id', { auth: ROOT })).status).toBe(400);
  });

  it('GET /events shows a user only the events of the queues they may view', async () => {
    for (const name of ['seen', 'unseen'])
      expect((await t.json('POST', '/queue', { auth: ROOT, body: { name, enabled: false } })).status).toBe(
        201,
      );
    await t.json('POST', '/user/alice/permissions', {
      auth: ROOT,
      body: { permission: 'ViewJobs', queue_name: 'seen' },
    });
    const res = await t.request('GET', '/events', { auth: ALICE });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const submit = async (queue: string): Promise<string> =>
      (await t.json<{ jobs: string[] }>('POST', `/queue/${queue}`, { auth: ROOT, body: { command: 'true' } }))
        .body.jobs[0] ?? '';
    const hidden = await submit('unseen');
    const shown = await submit('seen');
    while (!text.includes(shown)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    expect(text).toContain(`"jobId":"${shown}"`);
    expect(text).not.toContain(hidden);
    expect(text).not.toContain('"queue":"unseen"');
  });

  it('DELETE /user/:n removes the user with their grants and tokens', async () => {
    await t.json('POST', '/user', { auth: ROOT, body: { name: 'carol', password: 'carol-password' } });
    await t.json('POST', '/user/carol/permissions', { auth: ROOT, body: { permission: 'ViewQueues' } });
    const token = tokenCreatedSchema.parse(
      (await t.json('POST', '/token', { auth: { basic: ['carol', 'carol-password'] }, body: {} })).body,
    );
    expect((await t.json('DELETE', '/user/carol', { auth: ROOT })).status).toBe(200);
    expect((await t.json('GET', '/whoami', { auth: { token: token.token } })).status).toBe(401);
    expect((await t.json('GET', '/whoami', { auth: { basic: ['carol', 'carol-password'] } })).status).toBe(
      401,
    );
    expect((await t.json('DELETE', '/user/carol', { auth: ROOT })).status).toBe(404);
  });
});

describe('tokens with authentication disabled', () => {
  it('POST /token is refused (409): there is nobody to issue it to', async () => {
    const t = await startApi();
    try {
      const res = await t.json('POST', '/token', { body: {} });
      expect([res.status, errorBodySchema.parse(res.body).error.code]).toEqual([409, 'CONFLICT']);
    } finally {
      await t.close();
    }
  });
});
