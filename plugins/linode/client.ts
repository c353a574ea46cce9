import { AsyncLocalStorage } from 'node:async_hooks';
import { readFile } from 'node:fs/promises';

import { BatchdError } from '../../daemon/plugins/api.ts';
import { api, type CreateLinodeRequest, type Linode } from './api.ts';

/** The root `@linode/api-v4` puts in front of every path (`/v4/…` and `/v4beta/…`). */
const PACKAGE_ORIGIN = 'https://api.linode.com';
/** Linode's largest page. */
const PAGE_SIZE = 500;
const REQUEST_TIMEOUT_MS = 30_000;

/** What one call of the package needs and the package has no parameter for. */
interface CallScope {
  origin: string;
  token: string;
  signal: AbortSignal;
}

const scope = new AsyncLocalStorage<CallScope>();
let installed = false;

/**
 * `@linode/api-v4` keeps one axios instance and one token for the whole process, and takes no
 * base URL, signal or token per call. One interceptor gives each call its own, from the scope
 * the call runs in: several controllers (tokens, stand-ins) can then share the process.
 */
function installInterceptor(): void {
  if (installed) return;
  installed = true;
  api.baseRequest.interceptors.request.use((config) => {
    const current = scope.getStore();
    if (current === undefined) return config;
    const url = config.url ?? '';
    if (url.startsWith(PACKAGE_ORIGIN)) config.url = current.origin + url.slice(PACKAGE_ORIGIN.length);
    config.headers.set('Authorization', `Bearer ${current.token}`);
    config.signal = AbortSignal.any([current.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]);
    return config;
  });
}

export type Fail = (
  host: string | undefined,
  message: string,
  context?: Record<string, unknown>,
) => BatchdError;

/** Linode's API for one controller: its token file, its base URL. */
export class LinodeClient {
  readonly #origin: string;
  readonly #tokenFile: string;
  readonly #fail: Fail;

  constructor(baseUrl: string, tokenFile: string, fail: Fail) {
    installInterceptor();
    this.#origin = baseUrl.replace(/\/+$/, '');
    this.#tokenFile = tokenFile;
    this.#fail = fail;
  }

  /** Every Linode carrying `tag` (Linode filters on one tag), all pages. */
  async tagged(tag: string, signal: AbortSignal): Promise<Linode[]> {
    return this.#all(undefined, { tags: tag }, signal);
  }

  /** The Linode labelled `label` (labels are unique in an account). */
  async byLabel(host: string, label: string, signal: AbortSignal): Promise<Linode | undefined> {
    const found = await this.#all(host, { label }, signal);
    return found.find((l) => l.label === label);
  }

  /** The Linode `id`, or undefined once it is gone (404). */
  async get(host: string, id: number, signal: AbortSignal): Promise<Linode | undefined> {
    try {
      return await this.#call(host, 'get Linode', signal, () => api.getLinode(id));
    } catch (error) {
      if (error instanceof BatchdError && error.context.status === 404) return undefined;
      throw error;
    }
  }

  create(host: string, request: CreateLinodeRequest, signal: AbortSignal): Promise<Linode> {
    return this.#call(host, 'create Linode', signal, () => api.createLinode(request));
  }

  async boot(host: string, id: number, signal: AbortSignal): Promise<void> {
    await this.#call(host, 'boot Linode', signal, () => api.linodeBoot(id));
  }

  async shutdown(host: string, id: number, signal: AbortSignal): Promise<void> {
    await this.#call(host, 'shut down Linode', signal, () => api.linodeShutdown(id));
  }

  async delete(host: string, id: number, signal: AbortSignal): Promise<void> {
    await this.#call(host, 'delete Linode', signal, () => api.deleteLinode(id));
  }

  async setTags(host: string, id: number, tags: string[], signal: AbortSignal): Promise<void> {
    await this.#call(host, 'tag Linode', signal, () => api.updateLinode(id, { tags }));
  }

  async #all(
    host: string | undefined,
    filter: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Linode[]> {
    const found: Linode[] = [];
    for (let page = 1, pages = 1; page <= pages; page++) {
      const answer = await this.#call(host, 'list Linodes', signal, () =>
        api.getLinodes({ page, page_size: PAGE_SIZE }, filter),
      );
      found.push(...answer.data);
      pages = answer.pages;
    }
    return found;
  }

  /** One call of the package, in this controller's scope; a refusal in Linode's words. */
  async #call<T>(
    host: string | undefined,
    what: string,
    signal: AbortSignal,
    send: () => Promise<T>,
  ): Promise<T> {
    const token = await this.#token(host);
    try {
      return await scope.run({ origin: this.#origin, token, signal }, send);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw this.#refusal(host, what, error);
    }
  }

  /** batchd's rule: the file's first word. Read at each call, so a new token needs no restart. */
  async #token(host: string | undefined): Promise<string> {
    let text: string;
    try {
      text = await readFile(this.#tokenFile, 'utf8');
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'unreadable';
      throw this.#fail(host, `cannot read token_file ${this.#tokenFile} (${code})`);
    }
    const token = text.trim().split(/\s+/)[0] ?? '';
    if (token === '') throw this.#fail(host, `token_file ${this.#tokenFile} is empty`);
    return token;
  }

  /**
   * The package rejects with an AxiosError (Linode's `{errors: [{reason, field}]}` in its
   * response) or, for a request its own schema refuses, with that list itself. Only Linode's
   * reasons are kept: the AxiosError holds the request, and with it the token.
   */
  #refusal(host: string | undefined, what: string, error: unknown): BatchdError {
    if (Array.isArray(error)) return this.#fail(host, `${what} refused: ${reasons(error)}`, { call: what });
    const axios = error as {
      isAxiosError?: boolean;
      code?: string;
      message?: string;
      response?: { status: number; data?: { errors?: unknown } };
    };
    if (axios.isAxiosError === true && axios.response !== undefined) {
      const { status, data } = axios.response;
      const said = Array.isArray(data?.errors) ? reasons(data.errors) : 'no reason given';
      return this.#fail(host, `${what} failed: HTTP ${status}: ${said}`, { call: what, status });
    }
    const detail = axios.message ?? axios.code ?? 'no answer';
    return this.#fail(host, `${what} failed: ${detail}`, { call: what });
  }
}

function reasons(errors: unknown[]): string {
  return errors
    .map((e) => {
      const { reason, field } = (e ?? {}) as { reason?: unknown; field?: unknown };
      const text = typeof reason === 'string' ? reason : 'unknown reason';
      return typeof field === 'string' && field !== '' ? `${field}: ${text}` : text;
    })
    .join('; ');
}
