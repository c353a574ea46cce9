import { z } from 'zod';

import { nameSchema } from './common.ts';

/** batchd's eight permissions. */
export const PERMISSIONS = [
  'SuperUser',
  'CreateJobs',
  'ViewJobs',
  'ManageJobs',
  'ViewQueues',
  'ManageQueues',
  'ViewSchedules',
  'ManageSchedules',
] as const;
export const permissionSchema = z.enum(PERMISSIONS);
export type Permission = (typeof PERMISSIONS)[number];

/**
 * A permission granted to a user. `null` scope fields mean "any". `type_name` and `host_name` scope
 * CreateJobs only; `host_name: "__default__"` allows jobs that name no host (the queue's default).
 */
export const grantSchema = z.object({
  id: z.int(),
  user_name: z.string(),
  permission: permissionSchema,
  queue_name: z.string().nullable(),
  type_name: z.string().nullable(),
  host_name: z.string().nullable(),
});
export type Grant = z.infer<typeof grantSchema>;

const hostScope = nameSchema.or(z.literal('__default__'));

export const grantCreateSchema = z
  .object({
    permission: permissionSchema,
    queue_name: nameSchema.nullable().optional(),
    type_name: nameSchema.nullable().optional(),
    host_name: hostScope.nullable().optional(),
  })
  .strict();
export type GrantCreate = z.infer<typeof grantCreateSchema>;

export const grantCreatedSchema = z.object({ id: z.int() });

export const userInfoSchema = z.object({
  name: z.string(),
  superuser: z.boolean(),
});
export type UserInfo = z.infer<typeof userInfoSchema>;

export const passwordSchema = z.string().min(8, 'Expected a password of at least 8 characters').max(1024);

export const userCreateSchema = z.object({ name: nameSchema, password: passwordSchema }).strict();
export type UserCreate = z.infer<typeof userCreateSchema>;

export const passwordChangeSchema = z.object({ password: passwordSchema }).strict();
export type PasswordChange = z.infer<typeof passwordChangeSchema>;

/** `ttl`: seconds, or a duration such as "90m" or "7d"; capped by manager.max_token_ttl. */
export const tokenCreateSchema = z
  .object({
    ttl: z.union([z.number().positive(), z.string().min(1)]).optional(),
    name: z.string().max(100).optional(),
  })
  .strict();
export type TokenCreate = z.infer<typeof tokenCreateSchema>;

/** The secret `token` is shown once, here; the daemon keeps only its hash. */
export const tokenCreatedSchema = z.object({
  id: z.string(),
  token: z.string(),
  name: z.string().nullable(),
  user_name: z.string(),
  expires_at: z.string(),
});
export type TokenCreated = z.infer<typeof tokenCreatedSchema>;

export const tokenInfoSchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  user_name: z.string(),
  created_at: z.string(),
  expires_at: z.string(),
});
export type TokenInfo = z.infer<typeof tokenInfoSchema>;

/** `GET /whoami`: who the daemon takes the caller for. */
export const whoamiSchema = z.object({
  name: z.string(),
  superuser: z.boolean(),
  via: z.enum(['none', 'basic', 'token', 'proxy']),
  grants: z.array(grantSchema),
});
export type Whoami = z.infer<typeof whoamiSchema>;
