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
        /** Failed password logins allowed per user name and per client address within `window`; then 429. */
        failed_logins: z
          .object({
            per_user: z.int().min(1).default(10),
            per_address: z.int().min(1).default(50),
            window: durationMs.prefault(60),
          })
          .strict()
          .prefault({}),
        /** batchd's X-Auth-User mode: taken as a proxy header trusted from loopback (the API's batchd face logs a note). */
        header: z.boolean().optional(),
        /** batchd's salt of its SHA3 password hashes: ignored (passwords here are scrypt hashes with their own salts). */
        static_salt: z.string().optional(),
      })
      .strict()
      .transform(({ header, ...auth }) =>
        header === true && auth.proxy === undefined
          ? { ...auth, header, proxy: { header: 'X-Auth-User', trusted: ['127.0.0.1', '::1'] } }
          : { ...auth, header },
      ),
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
    /** batchd's web client folder, served at /batch.html; `allowed_origin` becomes the CORS origin (docs/batchd-compat.md). */
    web_client: z
      .object({ path: z.string().optional(), allowed_origin: z.string().optional() })
      .strict()
      .optional(),
    /** Largest request body accepted. */
    max_body_bytes: z.int().min(1024).max(1_073_741_824).default(1_048_576),
    /** Lifetime of a token when its creator names none, and the longest allowed. */
    token_ttl: durationMs.prefault(3600),
    max_token_ttl: durationMs.prefault(30 * 86_400),
  })
  .strict()
  .transform((m) => {
    const origin = m.web_client?.allowed_origin?.replace(/\/+$/, '');
    return m.cors === undefined && origin !== undefined && origin !== ''
      ? { ...m, cors: { origins: [origin], credentials: m.auth !== 'disable' } }
      : m;
  });
export type ManagerSettings = z.output<typeof managerSchema>;
