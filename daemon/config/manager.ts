import { z } from 'zod';

import { DEFAULTS } from './defaults.ts';
import { durationMs } from './duration.ts';

/** A proxy that authenticates users itself and passes the name in a header (e.g. X-Auth-User). */
export const proxyAuthSchema = z
  .object({
    header: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,64}$/, 'Expected an HTTP header name such as X-Auth-User')
      .default(DEFAULTS.auth.proxy_header),
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
        basic: z.boolean().default(DEFAULTS.auth.basic),
        token: z.boolean().default(DEFAULTS.auth.token),
        proxy: proxyAuthSchema.optional(),
        /** Failed password logins allowed per user name and per client address within `window`; then 429. */
        failed_logins: z
          .object({
            per_user: z.int().min(1).default(DEFAULTS.auth.failed_logins.per_user),
            per_address: z.int().min(1).default(DEFAULTS.auth.failed_logins.per_address),
            window: durationMs.prefault(DEFAULTS.auth.failed_logins.window),
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
  .default(DEFAULTS.manager.auth);
export type AuthSettings = z.output<typeof authSchema>;

/** The HTTP API (batchd's "manager"). */
export const managerSchema = z
  .object({
    enabled: z.boolean().default(DEFAULTS.manager.enabled),
    host: z.string().min(1).default(DEFAULTS.manager.host),
    /** 0 takes a free port; the bound port is logged. */
    port: z.int().min(0).max(65535).default(DEFAULTS.manager.port),
    auth: authSchema,
    /** With auth disabled the API only listens on loopback, unless this says it is meant. */
    allow_unauthenticated_remote: z.boolean().default(DEFAULTS.manager.allow_unauthenticated_remote),
    /** PEM files (relative to the config folder): serve HTTPS. */
    tls: z
      .object({ cert: z.string().min(1), key: z.string().min(1) })
      .strict()
      .optional(),
    cors: z
      .object({
        origins: z.array(z.string().min(1)).min(1),
        credentials: z.boolean().default(DEFAULTS.manager.cors_credentials),
      })
      .strict()
      .optional(),
    /** batchd's web client folder, served at /batch.html; `allowed_origin` becomes the CORS origin (docs/batchd-compat.md). */
    web_client: z
      .object({ path: z.string().optional(), allowed_origin: z.string().optional() })
      .strict()
      .optional(),
    /** Largest request body accepted. */
    max_body_bytes: z.int().min(1024).max(1_073_741_824).default(DEFAULTS.manager.max_body_bytes),
    /** Lifetime of a token when its creator names none, and the longest allowed. */
    token_ttl: durationMs.prefault(DEFAULTS.manager.token_ttl),
    max_token_ttl: durationMs.prefault(DEFAULTS.manager.max_token_ttl),
  })
  .strict()
  .transform((m) => {
    const origin = m.web_client?.allowed_origin?.replace(/\/+$/, '');
    return m.cors === undefined && origin !== undefined && origin !== ''
      ? { ...m, cors: { origins: [origin], credentials: m.auth !== 'disable' } }
      : m;
  });
export type ManagerSettings = z.output<typeof managerSchema>;
