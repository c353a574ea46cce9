import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

import type { ApiEnv } from '../context.ts';
import { remoteAddress } from '../context.ts';

/** The native API's own request handler (createApi's app.fetch). */
export type NativeFetch = (request: Request, env: ApiEnv['Bindings']) => Response | Promise<Response>;

/** A refusal of the native API, carried to the batchd face's error handler (which answers in plain text). */
export class NativeRefusal extends Error {
  readonly status: ContentfulStatusCode;
  readonly challenge: string | undefined;

  constructor(status: ContentfulStatusCode, message: string, challenge: string | undefined) {
    super(message);
    this.status = status;
    this.challenge = challenge;
  }
}

/** Request headers the native API reads: credentials (Basic, bearer, a trusted proxy's user header) and language. */
const PASSED_HEADERS = ['authorization', 'accept-language'];

/**
 * Every batchd request is answered by calling the native API's route for it: the same validation,
 * the same permission check, the same handler. The face only translates shapes on the way in and out.
 */
export class Native {
  readonly #fetch: NativeFetch;
  readonly #proxyHeader: string | undefined;

  constructor(fetch: NativeFetch, proxyHeader: string | undefined) {
    this.#fetch = fetch;
    this.#proxyHeader = proxyHeader?.toLowerCase();
  }

  /** Call a native route as the caller of `c`; its JSON answer, or NativeRefusal for a non-2xx one. */
  async call<T>(c: Context<ApiEnv>, method: string, path: string, body?: unknown): Promise<T> {
    const text = await this.#send(c, method, path, body);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** A native GET whose answer is text (a log). */
  text(c: Context<ApiEnv>, path: string): Promise<string> {
    return this.#send(c, 'GET', path, undefined);
  }

  async #send(c: Context<ApiEnv>, method: string, path: string, body: unknown): Promise<string> {
    const headers = new Headers();
    for (const name of [...PASSED_HEADERS, ...(this.#proxyHeader === undefined ? [] : [this.#proxyHeader])]) {
      const value = c.req.header(name);
      if (value !== undefined) headers.set(name, value);
    }
    if (body !== undefined) headers.set('content-type', 'application/json');
    const request = new Request(new URL(path, 'http://batchd.local'), {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    // The peer's address (for trusted proxies), but not the original request stream: its body is read already.
    const address = remoteAddress(c);
    const env = { incoming: { socket: { remoteAddress: address } } } as unknown as ApiEnv['Bindings'];
    const response = await this.#fetch(request, env);
    const text = await response.text();
    if (response.status >= 200 && response.status < 300) return text;
    throw new NativeRefusal(
      response.status as ContentfulStatusCode,
      messageOf(text),
      response.headers.get('www-authenticate') ?? undefined,
    );
  }
}

/** The message of a native error body (`{error: {message}}`), else the text itself. */
function messageOf(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof body.error?.message === 'string') return body.error.message;
  } catch {
    // not JSON: the text is the message
  }
  return text;
}
