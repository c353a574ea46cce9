import { config as zodConfig } from 'zod';

import { BatchClient } from '../client/client.ts';
import { type ResolvedConfig, resolveConfig, type Source } from '../client/config.ts';
import { TokenStore } from '../client/token-store.ts';
import type { Auth } from '../client/transport.ts';
import { makeOutput, type Output } from './output.ts';
import { canPrompt, promptSecret } from './prompt.ts';

/** The options every verb takes (before the verb, and for most also after it). */
export interface GlobalFlags {
  managerUrl?: string;
  username?: string;
  password?: string;
  token?: string;
  clientConfig?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  wide?: boolean;
}

// A `batch` process checks a few answers, each once: zod compiling a parser for each object schema
// (its JIT, with `new Function`, code V8's cache cannot keep) costs more than it saves.
zodConfig({ jitless: true });

const RANK: Record<Source, number> = { flag: 4, env: 3, file: 2, login: 1, default: 0 };

/** One invocation: the resolved settings, the output style, and a client made on first use. */
export class Session {
  readonly out: Output;
  readonly config: ResolvedConfig;
  readonly tokens: TokenStore;
  #client: BatchClient | undefined;

  private constructor(out: Output, config: ResolvedConfig, tokens: TokenStore) {
    this.out = out;
    this.config = config;
    this.tokens = tokens;
  }

  static async open(flags: GlobalFlags, env: NodeJS.ProcessEnv = process.env): Promise<Session> {
    const tokens = new TokenStore();
    const out = makeOutput({
      json: flags.json === true,
      quiet: flags.quiet === true,
      verbose: flags.verbose === true,
      wide: flags.wide === true,
    });
    const config = await resolveConfig({
      flags: {
        manager_url: flags.managerUrl,
        username: flags.username,
        password: flags.password,
        token: flags.token,
        clientConfig: flags.clientConfig,
      },
      env,
      storedToken: (url) => tokens.get(url),
    });
    if (out.verbose) {
      out.note(
        `batch: server ${config.manager_url} (from ${config.sources.manager_url}), client config ${config.file ?? 'none'}`,
      );
    }
    return new Session(out, config, tokens);
  }

  /** A client without credentials: for `login`, which sends its own. */
  anonymousClient(): BatchClient {
    return this.#makeClient({ kind: 'none' });
  }

  /**
   * The client, with credentials chosen by precedence: a token or a password, whichever came from
   * the higher-ranked source (a token saved by `batch login` ranks lowest). Without either, ask
   * for a password, but only if the server offers basic auth and a person is at the terminal.
   */
  async client(): Promise<BatchClient> {
    if (this.#client !== undefined) return this.#client;
    const client = this.#makeClient(this.#configuredAuth() ?? { kind: 'none' });
    if (client.transport.auth.kind === 'none' && !this.config.disable_auth && canPrompt()) {
      const methods = await client.authMethods();
      if (methods.includes('basic')) {
        const password = await promptSecret(
          `Password for ${this.config.username} at ${this.config.manager_url}: `,
        );
        client.transport.auth = { kind: 'basic', username: this.config.username, password };
      }
    }
    this.#client = client;
    return client;
  }

  /** The auth that settings give, without asking anyone. */
  #configuredAuth(): Auth | undefined {
    const { token, password, username, sources, disable_auth } = this.config;
    if (disable_auth) return { kind: 'none' };
    const tokenRank = token === undefined ? -1 : RANK[sources.token];
    const passwordRank = password === undefined ? -1 : RANK[sources.password];
    if (token !== undefined && tokenRank >= passwordRank) return { kind: 'bearer', token };
    if (password !== undefined) return { kind: 'basic', username, password };
    return undefined;
  }

  #makeClient(auth: Auth): BatchClient {
    return new BatchClient({
      baseUrl: this.config.manager_url,
      auth,
      tls: this.config.tls,
      ...(this.out.verbose ? { trace: (line: string) => this.out.note(`batch: ${line}`) } : {}),
    });
  }

  close(): void {
    this.#client?.close();
  }
}
