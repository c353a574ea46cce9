import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { pino } from 'pino';
import { stringify } from 'yaml';

import { type Api, createApi } from '../../daemon/api/app.ts';
import { hashPassword } from '../../daemon/auth/password.ts';
import { hashToken } from '../../daemon/auth/tokens.ts';
import { Daemon } from '../../daemon/daemon.ts';
import type { GrantCreate } from '../../daemon/protocol/auth.ts';
import { makeDispatchEnv } from '../helpers/dispatch.ts';
import type { EnvOptions, TestEnv } from '../helpers/env.ts';

export type Auth = { basic: [string, string] } | { token: string } | undefined;

export interface RequestOptions {
  auth?: Auth;
  /** Sent as JSON (a string is sent as it is). */
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  /** The peer address the app sees (in process there is no socket). */
  remote?: string;
}

export interface InProcessApi {
  env: TestEnv;
  daemon: Daemon;
  api: Api;
  request(method: string, path: string, options?: RequestOptions): Promise<Response>;
  /** request() and the parsed JSON body. */
  json<T = unknown>(
    method: string,
    path: string,
    options?: RequestOptions,
  ): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

export const JOB_TYPES = {
  echo: { template: "printf '%s\\n' $message", params: [{ name: 'message', type: 'String' }] },
  sleep: { template: 'sleep $seconds', params: [{ name: 'seconds', type: 'Integer', default: 1 }] },
};

/** A daemon in this process with its API app (not listening): requests go through `app.request()`. */
export async function startApi(options: EnvOptions & { auth?: unknown } = {}): Promise<InProcessApi> {
  const manager = {
    enabled: false,
    ...(options.auth === undefined ? {} : { auth: options.auth }),
    ...(options.config?.manager as object | undefined),
  };
  const env = makeDispatchEnv({ jobTypes: JOB_TYPES, ...options, config: { ...options.config, manager } });
  const daemon = await Daemon.start({
    configDir: env.etc,
    spool: env.spool,
    logger: pino({ level: 'silent' }),
  });
  const api = createApi(daemon);
  const request = (method: string, path: string, o: RequestOptions = {}): Promise<Response> => {
    const headers: Record<string, string> = { ...authHeader(o.auth), ...o.headers };
    let body: string | undefined;
    if (o.body !== undefined) {
      body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      headers['content-type'] = o.contentType ?? 'application/json';
    }
    const envBindings = o.remote === undefined ? {} : { incoming: { socket: { remoteAddress: o.remote } } };
    return Promise.resolve(api.app.request(path, { method, headers, body }, envBindings as never));
  };
  return {
    env,
    daemon,
    api,
    request,
    json: async <T>(method: string, path: string, o?: RequestOptions) => {
      const res = await request(method, path, o);
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: returned as text
      }
      return { status: res.status, body: parsed as T };
    },
    close: async () => {
      api.close();
      await daemon.stop();
      env.cleanup();
    },
  };
}

export function authHeader(auth: Auth): Record<string, string> {
  if (auth === undefined) return {};
  if ('token' in auth) return { authorization: `Bearer ${auth.token}` };
  return { authorization: `Basic ${Buffer.from(`${auth.basic[0]}:${auth.basic[1]}`).toString('base64')}` };
}

/** Poll an async check until it returns a value (not undefined/false/null). */
export async function eventually<T>(
  check: () => Promise<T | undefined | false | null> | T | undefined | false | null,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false && value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every file and folder under a directory (relative paths), for "nothing was written" checks. */
export function snapshotTree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const r = rel === '' ? entry.name : `${rel}/${entry.name}`;
      out.push(r);
      if (entry.isDirectory()) walk(path.join(dir, entry.name), r);
    }
  };
  walk(root, '');
  return out.sort();
}

export interface FixtureUser {
  name: string;
  grants?: GrantCreate[];
}

/**
 * Write `<config>/users.yaml` directly, as `batchd admin` or an operator restoring a backup would:
 * one scrypt hash shared by every user, so a test with many users costs one hash, not one each.
 * A running daemon picks the file up within half a second (sooner if it never looked yet).
 */
export async function writeUsersFile(
  etc: string,
  users: FixtureUser[],
  password: string,
  tokens: { user: string; secret: string; expiresAt?: Date }[] = [],
): Promise<void> {
  const hash = await hashPassword(password);
  let id = 0;
  const grants = users.flatMap((u) =>
    (u.grants ?? []).map((g) => ({
      id: ++id,
      user_name: u.name,
      permission: g.permission,
      queue_name: g.queue_name ?? null,
      type_name: g.type_name ?? null,
      host_name: g.host_name ?? null,
    })),
  );
  const now = Date.now();
  const file = {
    users: Object.fromEntries(users.map((u) => [u.name, { password: hash }])),
    grants,
    tokens: tokens.map((t, i) => ({
      id: `${'0'.repeat(11)}${i}`.slice(-12),
      user_name: t.user,
      name: null,
      sha256: hashToken(t.secret),
      created_at: new Date(now).toISOString(),
      expires_at: (t.expiresAt ?? new Date(now + 3_600_000)).toISOString(),
    })),
    next_grant_id: id + 1,
  };
  writeFileSync(path.join(etc, 'users.yaml'), stringify(file), { mode: 0o600 });
}
