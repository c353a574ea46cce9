import type { Hono } from 'hono';

import type { Grant, UserInfo } from '../../protocol/auth.ts';
import type { ApiEnv } from '../context.ts';
import { batchdBody, done, type Face, pick, seg } from './face.ts';

const GRANT_FIELDS = ['permission', 'queue_name', 'type_name', 'host_name'] as const;

/** `/user` (names), passwords, and permissions as batchd's `[[id, {user_name, permission, ...}]]` pairs. */
export function registerBatchdUsers(app: Hono<ApiEnv>, face: Face): void {
  const { native } = face;

  app.get('/user', async (c) =>
    c.json(
      (await native.call<UserInfo[]>(c, 'GET', '/user')).map((u) => u.name),
      200,
    ),
  );

  app.post('/user', async (c) => {
    const body = await batchdBody(face, c);
    const created = await native.call<UserInfo>(c, 'POST', '/user', pick(body, ['name', 'password']));
    return c.json(created.name, 200);
  });

  // batchd's body also carries `name` ("not used").
  app.put('/user/:n', async (c) => {
    const body = await batchdBody(face, c);
    await native.call(c, 'PUT', `/user/${seg(c.req.param('n'))}`, pick(body, ['password']));
    return done(c);
  });

  app.get('/user/:n/permissions', async (c) => {
    const grants = await native.call<Grant[]>(c, 'GET', `/user/${seg(c.req.param('n'))}/permissions`);
    return c.json(
      grants.map((g) => [
        g.id,
        {
          user_name: g.user_name,
          permission: g.permission,
          queue_name: g.queue_name,
          type_name: g.type_name,
          host_name: g.host_name,
        },
      ]),
      200,
    );
  });

  // batchd's body names the user too ("not used"); the path says whose grant it is.
  app.post('/user/:n/permissions', async (c) => {
    const body = await batchdBody(face, c);
    const created = await native.call<{ id: number }>(
      c,
      'POST',
      `/user/${seg(c.req.param('n'))}/permissions`,
      pick(body, GRANT_FIELDS),
    );
    return c.json(created.id, 200);
  });

  app.delete('/user/:n/permissions/:id', async (c) => {
    await native.call(c, 'DELETE', `/user/${seg(c.req.param('n'))}/permissions/${seg(c.req.param('id'))}`);
    return done(c);
  });
}
