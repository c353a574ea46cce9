import { z } from 'zod';

import { BatchdError } from '../../errors.ts';
import {
  grantCreatedSchema,
  grantCreateSchema,
  grantSchema,
  passwordChangeSchema,
  userCreateSchema,
  userInfoSchema,
} from '../../protocol/auth.ts';
import { nameSchema, okSchema } from '../../protocol/common.ts';
import type { Router } from '../route.ts';

const userParams = z.object({ n: nameSchema });

export function registerUserRoutes(router: Router): void {
  const { users } = router.ctx;
  const known = (name: string): void => {
    if (!users.has(name)) throw new BatchdError('UNKNOWN_USER', `Unknown user "${name}"`, { user: name });
  };

  router.add(
    {
      method: 'get',
      path: '/user',
      summary: 'The users',
      tag: 'users',
      access: { kind: 'permission', permission: 'SuperUser' },
      responses: { 200: { description: 'Users', schema: z.array(userInfoSchema) } },
    },
    ({ c }) => c.json(users.users()),
  );

  router.add(
    {
      method: 'post',
      path: '/user',
      summary: 'Create a user (the password is stored as a scrypt hash)',
      tag: 'users',
      access: { kind: 'permission', permission: 'SuperUser' },
      body: userCreateSchema,
      responses: {
        201: { description: 'Created', schema: userInfoSchema },
        409: { description: 'Exists' },
        422: { description: 'Invalid name or password' },
      },
    },
    async ({ c, body }) => {
      await users.addUser(body.name, body.password);
      return c.json({ name: body.name, superuser: false }, 201);
    },
  );

  router.add(
    {
      method: 'put',
      path: '/user/:n',
      summary:
        "Change a password: one's own (authenticated by password, not by token), or anyone's as SuperUser",
      tag: 'users',
      access: { kind: 'user', note: 'the user themself, or SuperUser' },
      params: userParams,
      body: passwordChangeSchema,
      responses: {
        200: { description: 'Changed', schema: okSchema },
        404: { description: 'Unknown user' },
        422: { description: 'Password too short' },
      },
    },
    async ({ c, params, body, principal }) => {
      const self = principal.name === params.n && principal.via !== 'token' && principal.via !== 'none';
      if (!principal.superuser && !self) {
        throw new BatchdError(
          'FORBIDDEN',
          principal.name === params.n
            ? 'Change your password with your password, not with a token'
            : `${principal.name} may not change the password of ${params.n}`,
          { user: params.n },
        );
      }
      await users.setPassword(params.n, body.password);
      return c.json({ ok: true as const });
    },
  );

  router.add(
    {
      method: 'delete',
      path: '/user/:n',
      summary: 'Delete a user with their grants and tokens',
      tag: 'users',
      access: { kind: 'permission', permission: 'SuperUser' },
      params: userParams,
      responses: { 200: { description: 'Deleted', schema: okSchema }, 404: { description: 'Unknown user' } },
    },
    async ({ c, params }) => {
      await users.removeUser(params.n);
      return c.json({ ok: true as const });
    },
  );

  router.add(
    {
      method: 'get',
      path: '/user/:n/permissions',
      summary: "A user's grants",
      tag: 'users',
      access: { kind: 'permission', permission: 'SuperUser' },
      params: userParams,
      responses: {
        200: { description: 'Grants', schema: z.array(grantSchema) },
        404: { description: 'Unknown user' },
      },
    },
    ({ c, params }) => {
      known(params.n);
      return c.json(users.grantsOf(params.n));
    },
  );

  router.add(
    {
      method: 'post',
      path: '/user/:n/permissions',
      summary: 'Grant a permission (scope fields null or absent = any)',
      tag: 'users',
      access: { kind: 'permission', permission: 'SuperUser' },
      params: userParams,
      body: grantCreateSchema,
      responses: {
        201: { description: 'Granted', schema: grantCreatedSchema },
        404: { description: 'Unknown user' },
        422: { description: 'Invalid grant' },
      },
    },
    async ({ c, params, body }) => {
      const grant = await users.addGrant(params.n, body);
      return c.json({ id: grant.id }, 201);
    },
  );

  router.add(
    {
      method: 'delete',
      path: '/user/:n/permissions/:id',
      summary: 'Revoke a grant (it must belong to that user)',
      tag: 'users',
      access: { kind: 'permission', permission: 'SuperUser' },
      params: z.object({ n: nameSchema, id: z.coerce.number().int().min(1) }),
      responses: {
        200: { description: 'Revoked', schema: okSchema },
        404: { description: 'Unknown user or grant' },
      },
    },
    async ({ c, params }) => {
      await users.removeGrant(params.n, params.id);
      return c.json({ ok: true as const });
    },
  );
}
