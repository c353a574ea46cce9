import { readFileSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';

import { BatchdError, errnoCode } from '../errors.ts';
import { ApiError, UnreachableError } from './errors.ts';
import { schemasOf } from '../protocol/on-demand.ts';

export type Auth =
  | { kind: 'none' }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'bearer'; token: string };

export interface TransportOptions {
  baseUrl: string;
  auth?: Auth;
  tls?: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean };
  /** For non-streaming requests; streams run until their signal aborts. */
  timeoutMs?: number;
  /** Called once per finished request (for `--verbose`); never sees credentials. */
  trace?: (line: string) => void;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  /** JSON-encoded unless `rawBody` is given. */
  body?: unknown;
  rawBody?: { text: string; contentType: string };
  signal?: AbortSignal;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * HTTP over node:http rather than fetch: client certificates and a private CA (client.yaml's
 * certificate, key, ca_certificate) need an agent, which the global fetch does not take.
 */
export class Transport {
  readonly baseUrl: string;
  auth: Auth;
  readonly #agent: http.Agent;
  readonly #timeoutMs: number;
  readonly #trace: ((line: string) => void) | undefined;

  constructor(options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.auth = options.auth ?? { kind: 'none' };
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#trace = options.trace;
    const tls = options.tls;
    this.#agent = this.baseUrl.startsWith('https:')
      ? new https.Agent({
          keepAlive: true,
          rejectUnauthorized: tls?.rejectUnauthorized ?? true,
          ...(tls?.ca === undefined ? {} : { ca: readPem(tls.ca, 'ca_certificate') }),
          ...(tls?.cert === undefined ? {} : { cert: readPem(tls.cert, 'certificate') }),
          ...(tls?.key === undefined ? {} : { key: readPem(tls.key, 'key') }),
        })
      : new http.Agent({ keepAlive: true });
  }

  url(pathname: string, query?: RequestOptions['query']): URL {
    const url = new URL(this.baseUrl + pathname);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url;
  }

  /** A request whose whole body is read; a non-2xx status becomes an ApiError. */
  async request(method: string, pathname: string, options: RequestOptions = {}): Promise<Reply> {
    // Date.now(), not performance.now(): the global `performance` loads node:perf_hooks on first use.
    const started = Date.now();
    const signal =
      options.signal === undefined
        ? AbortSignal.timeout(this.#timeoutMs)
        : AbortSignal.any([options.signal, AbortSignal.timeout(this.#timeoutMs)]);
    const response = await this.#send(method, pathname, { ...options, signal });
    const text = await readAll(response);
    this.#trace?.(`${method} ${pathname} → ${response.statusCode ?? 0} (${Date.now() - started} ms)`);
    const status = response.statusCode ?? 0;
    if (status < 200 || status >= 300) throw await apiError(status, text, method, this.url(pathname).href);
    return { status, headers: response.headers, text };
  }

  /** A request whose body is returned as a stream (logs that follow, server-sent events). */
  async stream(method: string, pathname: string, options: RequestOptions = {}): Promise<IncomingMessage> {
    const response = await this.#send(method, pathname, options);
    const status = response.statusCode ?? 0;
    this.#trace?.(`${method} ${pathname} → ${status} (streaming)`);
    if (status < 200 || status >= 300)
      throw await apiError(status, await readAll(response), method, this.url(pathname).href);
    return response;
  }

  close(): void {
    this.#agent.destroy();
  }

  #send(method: string, pathname: string, options: RequestOptions): Promise<IncomingMessage> {
    const url = this.url(pathname, options.query);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'batch-cli' };
    let payload: string | undefined;
    if (options.rawBody !== undefined) {
      payload = options.rawBody.text;
      headers['content-type'] = options.rawBody.contentType;
    } else if (options.body !== undefined) {
      payload = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
    if (this.auth.kind === 'basic') {
      headers.authorization = `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`;
    } else if (this.auth.kind === 'bearer') {
      headers.authorization = `Bearer ${this.auth.token}`;
    }
    const client = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(
        url,
        {
          method,
          headers,
          agent: this.#agent,
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        },
        resolve,
      );
      req.on('error', (error) => {
        if (
          options.signal?.aborted === true &&
          options.signal.reason instanceof DOMException &&
          options.signal.reason.name === 'TimeoutError'
        ) {
          reject(
            new UnreachableError(
              this.baseUrl,
              `no answer within ${Math.round(this.#timeoutMs / 1000)} s`,
              error,
            ),
          );
        } else if (options.signal?.aborted === true) {
          reject(options.signal.reason as Error);
        } else {
          const code = errnoCode(error) ?? '';
          const untrusted = UNTRUSTED_CERTIFICATE.has(code);
          reject(
            new UnreachableError(
              this.baseUrl,
              untrusted ? `the server's certificate is not trusted: ${code}` : describeNetworkError(error),
              error,
              untrusted,
            ),
          );
        }
      });
      req.end(payload);
    });
  }
}

function readPem(file: string, field: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new BatchdError(
      'CONFIG_INVALID',
      `client.yaml ${field}: cannot read ${file} (${errnoCode(error) ?? String(error)})`,
      { file, field },
    );
  }
}

function readAll(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', reject);
  });
}

/** An error answer as an ApiError; its schema is built only when one arrives. */
async function apiError(status: number, text: string, method: string, url: string): Promise<ApiError> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const body = (await schemasOf.common()).errorBodySchema.safeParse(parsed);
  if (body.success) {
    const { code, message, details } = body.data.error;
    return new ApiError(status, code, message, details ?? [], { method, url });
  }
  const plain = text.trim().slice(0, 500);
  return new ApiError(status, `HTTP_${status}`, plain === '' ? `HTTP ${status}` : plain, [], { method, url });
}

/** OpenSSL's verification failures, as Node reports them. */
const UNTRUSTED_CERTIFICATE = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function describeNetworkError(error: Error): string {
  const code = errnoCode(error);
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found';
    case 'ECONNRESET':
      return 'connection reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to host';
    case 'ETIMEDOUT':
      return 'timed out';
    default:
      return code ?? error.message;
  }
}
