import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type InProcessApi, startApi, writeUsersFile } from './api-helpers.ts';

const PASSWORD = 'correct horse battery staple';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function timed(run: () => Promise<Response>): Promise<{ ms: number; status: number }> {
  const start = process.hrtime.bigint();
  const res = await run();
  await res.arrayBuffer();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, status: res.status };
}

describe('login timing', () => {
  let api: InProcessApi;

  beforeAll(async () => {
    // Seven wrong passwords for alice stay under the default limit of failed logins per user.
    api = await startApi({ auth: { basic: true, token: false } });
    await writeUsersFile(api.env.etc, [{ name: 'alice' }], PASSWORD);
    // The daemon picks the users file up; a good login says it has.
    for (let i = 0; i < 100; i++) {
      const res = await api.request('GET', '/whoami', { auth: { basic: ['alice', PASSWORD] } });
      if (res.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(() => api.close());

  it('answers an unknown user as slowly as a wrong password (ratio of medians)', async () => {
    const known: number[] = [];
    const unknown: number[] = [];
    // Interleaved, so a load spike on the machine hits both sides alike; each credential is new.
    for (let i = 0; i < 7; i++) {
      const wrong = await timed(() =>
        api.request('GET', '/whoami', { auth: { basic: ['alice', `wrong-${i}`] } }),
      );
      const nobody = await timed(() =>
        api.request('GET', '/whoami', { auth: { basic: [`nobody-${i}`, `wrong-${i}`] } }),
      );
      expect([wrong.status, nobody.status]).toEqual([401, 401]);
      known.push(wrong.ms);
      unknown.push(nobody.ms);
    }
    // Both cost one scrypt (tens of ms); before the fix an unknown user cost well under a millisecond.
    expect(median(unknown) / median(known)).toBeGreaterThan(0.4);
    expect(median(unknown) / median(known)).toBeLessThan(2.5);
  });
});

describe('failed-login rate limiting', () => {
  let api: InProcessApi;
  const whoami = (user: string, password: string, remote: string): Promise<Response> =>
    api.request('GET', '/whoami', { auth: { basic: [user, password] }, remote });

  beforeAll(async () => {
    api = await startApi({
      auth: { basic: true, token: false, failed_logins: { per_user: 3, per_address: 6, window: 60 } },
    });
    await writeUsersFile(
      api.env.etc,
      [{ name: 'alice' }, { name: 'bob' }, { name: 'carol' }, { name: 'dave' }, { name: 'erin' }],
      PASSWORD,
    );
    for (let i = 0; i < 100; i++) {
      if ((await whoami('dave', PASSWORD, '10.9.9.9')).status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(() => api.close());

  it('refuses a user past the limit with 429 and Retry-After, even with the right password', async () => {
    // alice's browser logged in before the attack: that credential stays good.
    expect((await whoami('alice', PASSWORD, '10.0.0.9')).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await whoami('alice', `guess-${i}`, `10.0.1.${i}`)).status).toBe(401);
    const res = await whoami('alice', 'guess-again', '10.0.1.99');
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('RATE_LIMITED');
    expect(body.error.message).toMatch(/Too many failed logins/);
    // A credential not verified before is refused too (the guesser cannot go on with the right one)…
    expect((await whoami('alice', `${PASSWORD} `, '10.0.1.100')).status).toBe(429);
    // …while the one verified before the attack still works, and other users are untouched.
    expect((await whoami('alice', PASSWORD, '10.0.0.9')).status).toBe(200);
    expect((await whoami('bob', PASSWORD, '10.0.2.1')).status).toBe(200);
  });

  it('refuses an address past the limit, whatever user names it tries', async () => {
    for (let i = 0; i < 6; i++) expect((await whoami(`user-${i}`, 'x', '10.0.3.1')).status).toBe(401);
    // erin's right password, never verified before: refused from that address.
    const res = await whoami('erin', PASSWORD, '10.0.3.1');
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // The same address seen as IPv6-mapped is the same address.
    expect((await whoami('erin', PASSWORD, '::ffff:10.0.3.1')).status).toBe(429);
    expect((await whoami('erin', PASSWORD, '10.0.3.2')).status).toBe(200);
  });

  it('forgets a user’s failures once the right password is given', async () => {
    for (let i = 0; i < 2; i++) expect((await whoami('carol', `no-${i}`, '10.0.4.1')).status).toBe(401);
    expect((await whoami('carol', PASSWORD, '10.0.4.2')).status).toBe(200);
    for (let i = 2; i < 4; i++) expect((await whoami('carol', `no-${i}`, '10.0.4.3')).status).toBe(401);
  });
});
