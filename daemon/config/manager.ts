import { z } from 'zod';

import { durationMs } from './duration.ts';

/** A proxy that authenticates users itself and passes the name in a header (e.g. X-Auth-User). */
export const proxyAuthSchema = z
  .object({
    header: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,64}$/, 'Expected an HTTP header name such as X-Auth-User')
      .default('X-Auth-User'),
    /** Addresses of the proxies the header is taken from; from anyone else it is refused. */
    trusted: z.array(z.string().min(1)).min(1, 'List the proxy addresses the header is trusted from'),
  })
  .strict();

/** `disable` (batchd's word; `false` too), or the methods to accept (several may be on at once). */
export const authSchema = z
  .union([
    z.union([z.literal('disable'), z.literal(false)]).transform(() => 'disable' as const),
    z
      .object({
        basic: z.boolean().default(true),
        token: z.boolean().default(true),
        proxy: proxyAuthSchema.optional(),
      })
      .strict(),
  ])
  .default('disable');
export type AuthSettings = z.output<typeof authSchema>;

/** The HTTP API (batchd's "manager"). */
export const managerSchema = z
  .object({
    enabled: z.boolean().default(true),
    host: z.string().min(1).default('127.0.0.1'),
    /** 0 takes a free port; the bound port is logged. */
    port: z.int().min(0).max(65535).default(9681),
    auth: authSchema,
    /** With auth disabled the API only listens on loopback, unless this says it is meant. */
    allow_unauthenticated_remote: z.boolean().default(false),
    /** PEM files (relative to the config folder): serve HTTPS. */
    tls: z
      .object({ cert: z.string().min(1), key: z.string().min(1) })
      .strict()
      .optional(),
    cors: z
      .object({
        origins: z.array(z.string().min(1)).min(1),
        credentials: z.boolean().default(false),
      })
      .strict()
      .optional(),
    /** Largest request body accepted. */
    max_body_bytes: z.int().min(1024).max(1_073_741_824).default(1_048_576),
    /** Lifetime of a token when its creator names none, and the longest allowed. */
    token_ttl: durationMs.prefault(3600),
    max_token_ttl: durationMs.prefault(30 * 86_400),
  })
  .strict();
export type ManagerSettings = z.output<typeof managerSchema>;
