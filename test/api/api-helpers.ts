import { readdirSync } from 'node:fs';
import path from 'node:path';

import { pino } from 'pino';

import { type Api, createApi } from '../../daemon/api/app.ts';
import { Daemon } from '../../daemon/daemon.ts';
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
  json<T = unknown>(method: string, path: string, options?: RequestOptions): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

export const JOB_TYPES = {
  echo: { template: "printf '%s\\n' $message", params: [{ name: 'message', type: 'String' }] },
  sleep: { template: 'sleep $seconds', params: [{ name: 'seconds', type: 'Integer', default: 1 }] },
};

/** A daemon in this process with its API app (not listening): requests go through `app.request()`. */
export async function startApi(options: EnvOptions & { auth?: unknown } = {}): Promise<InProcessApi> {
  const manager = { enabled: false, ...(options.auth === undefined ? {} : { auth: options.auth }), ...(options.config?.manager as object | undefined) };
  const env = makeDispatchEnv({ jobTypes: JOB_TYPES, ...options, config: { ...options.config, manager } });
  const daemon = await Daemon.start({ configDir: env.etc, spool: env.spool, logger: pino({ level: 'silent' }) });
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
export async function eventually<T>(check: () => Promise<T | undefined | false | null> | T | undefined | false | null, timeoutMs = 15_000, what = 'condition'): Promise<T> {
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
