import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import { BatchdError, defineHook, type HookEvent, type PluginContext, z } from '../../daemon/plugins/api.ts';
import { signatureHeaders } from './signature.ts';

const seconds = (max: number): z.ZodNumber => z.number().positive().max(max);

const config = z
  .object({
    url: z.string().refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), {
      message: 'Expected an http:// or https:// URL',
    }),
    /** Sent with every request (e.g. Authorization); they cannot replace batchd's X-Batchd-* headers. */
    headers: z.record(z.string(), z.string()).default({}),
    /** The HMAC key, in the file (relative to the config folder) or here; without one, nothing is signed. */
    secret: z.string().min(1).optional(),
    secret_file: z.string().min(1).optional(),
    /** Attempts after the first, on a network error, a timeout, 408, 429 or 5xx. */
    retries: z.int().min(0).max(1000).default(8),
    /** Seconds before the first retry; doubled for each next one, up to max_retry_delay. */
    retry_delay: seconds(3600).default(1),
    max_retry_delay: seconds(86_400).default(60),
    /** Seconds one request may take. */
    attempt_timeout: seconds(3600).default(10),
  })
  .strict()
  .refine((c) => c.secret === undefined || c.secret_file === undefined, {
    message: 'Give secret or secret_file, not both',
    path: ['secret_file'],
  });
type WebhookConfig = z.infer<typeof config>;

/** An attempt that did not deliver: whether another may, and why (never with the secret or the URL's path). */
interface Miss {
  retry: boolean;
  why: string;
  /** The receiver's Retry-After, in ms. */
  after?: number | undefined;
}

/**
 * POSTs each event as JSON, signed with HMAC-SHA256 when a secret is set, retried with
 * exponential back-off while the receiver is unreachable, slow or answers 5xx/429. Errors name the
 * URL's origin only: a webhook URL's path is often a credential itself.
 */
class WebhookHook {
  readonly #config: WebhookConfig;
  readonly #context: PluginContext;
  readonly #origin: string;

  constructor(settings: WebhookConfig, context: PluginContext) {
    this.#config = settings;
    this.#context = context;
    this.#origin = new URL(settings.url).origin;
  }

  async handle(event: HookEvent, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify(event);
    const secret = await this.#secret();
    const { retries, retry_delay: first, max_retry_delay: most } = this.#config;
    for (let attempt = 0; ; attempt += 1) {
      const miss = await this.#attempt(event, body, secret, signal);
      if (miss === undefined) return;
      if (!miss.retry || attempt >= retries) {
        throw new BatchdError(
          'HOOK_FAILED',
          `POST to ${this.#origin} failed after ${attempt + 1} attempt(s): ${miss.why}`,
          { hook: this.#context.name, event: event.event },
        );
      }
      const delay = Math.max(
        Math.min(first * 2 ** attempt, most) * 1000,
        Math.min(miss.after ?? 0, most * 1000),
      );
      this.#context.log.info(
        { event: event.event, delivery: event.id, attempt: attempt + 1, retryInMs: delay },
        `webhook ${this.#origin}: ${miss.why}; retrying`,
      );
      await sleep(delay, undefined, { signal });
    }
  }

  async #attempt(
    event: HookEvent,
    body: string,
    secret: string | undefined,
    signal: AbortSignal,
  ): Promise<Miss | undefined> {
    const headers: Record<string, string> = {
      ...this.#config.headers,
      'content-type': 'application/json',
      'user-agent': 'batchd-webhook/1',
      'x-batchd-event': event.event,
      'x-batchd-delivery': event.id,
      ...signatureHeaders(body, secret),
    };
    let response: Response;
    try {
      response = await fetch(this.#config.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#config.attempt_timeout * 1000)]),
      });
    } catch (error) {
      signal.throwIfAborted(); // the hook's own timeout, or batchd stopping: no more attempts
      return { retry: true, why: networkProblem(error, this.#config.attempt_timeout) };
    }
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return undefined;
    const retry = response.status >= 500 || response.status === 429 || response.status === 408;
    return { retry, why: `HTTP ${response.status}`, after: retryAfter(response.headers.get('retry-after')) };
  }

  async #secret(): Promise<string | undefined> {
    const { secret, secret_file: file } = this.#config;
    if (file === undefined) return secret;
    const at = this.#context.resolve(file);
    try {
      // Read at each delivery: a rotated key is used at once.
      return (await readFile(at, 'utf8')).replace(/\r?\n$/, '');
    } catch (error) {
      throw new BatchdError(
        'HOOK_FAILED',
        `cannot read secret_file ${at}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
        {
          hook: this.#context.name,
          file: at,
        },
      );
    }
  }
}

function networkProblem(error: unknown, timeoutSeconds: number): string {
  const e = error as { name?: string; cause?: { code?: string } };
  if (e.name === 'TimeoutError') return `no answer within ${timeoutSeconds} s`;
  return e.cause?.code ?? (error instanceof Error ? error.message : 'network error');
}

/** Retry-After in seconds (the HTTP-date form is rare for webhooks and is ignored). */
function retryAfter(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value) * 1000;
}

export default defineHook({
  kind: 'hook',
  drivers: ['webhook'],
  config,
  create: (settings, context) => new WebhookHook(settings, context),
});
