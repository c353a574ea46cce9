import { createHash, randomBytes } from 'node:crypto';
import { BlockList, isIPv4, isIPv6 } from 'node:net';

import type { AuthSettings } from '../config/manager.ts';
import { BatchdError } from '../errors.ts';
import type { AuthMethod } from '../protocol/common.ts';
import { verifyPassword } from './password.ts';
import { ANONYMOUS, type Principal, principalFor } from './permissions.ts';
import type { UserStore } from './store.ts';
import { LoginThrottle } from './throttle.ts';

/** What authentication needs to know about a request (kept apart from Hono so it is easy to test). */
export interface Credentials {
  header(name: string): string | undefined;
  /** The peer's address; undefined when unknown (then no proxy is trusted). */
  remoteAddress: string | undefined;
}

/** A verified Basic credential stays good this long, unless the user's hash changes. */
const BASIC_CACHE_MS = 5 * 60_000;
const BASIC_CACHE_MAX = 10_000;

/**
 * The authentication modes: disabled, HTTP Basic (scrypt hashes), a user header from trusted proxy
 * addresses only, and bearer tokens. Several may be on at once. Every failure is a 401 that says
 * what was wrong, never whether a user exists.
 */
export class Authenticator {
  readonly #settings: AuthSettings;
  readonly #store: UserStore;
  readonly #trusted: BlockList | undefined;
  /** A scrypt per request would cap the API at a few dozen requests/s: verified credentials are remembered, keyed by a salted hash. */
  readonly #basicCache = new Map<string, { name: string; hash: string; until: number }>();
  /** Verifications in progress: a burst of requests with new credentials costs one scrypt, not one each. */
  readonly #verifying = new Map<string, Promise<boolean>>();
  readonly #cacheSalt = randomBytes(16);
  readonly #throttle: LoginThrottle | undefined;

  constructor(settings: AuthSettings, store: UserStore) {
    this.#settings = settings;
    this.#store = store;
    this.#trusted =
      settings !== 'disable' && settings.proxy !== undefined ? trustList(settings.proxy.trusted) : undefined;
    this.#throttle = settings === 'disable' ? undefined : new LoginThrottle(settings.failed_logins);
  }

  get disabled(): boolean {
    return this.#settings === 'disable';
  }

  /** For `OPTIONS /`. */
  methods(): AuthMethod[] {
    const s = this.#settings;
    if (s === 'disable') return [];
    const methods: AuthMethod[] = [];
    if (s.basic) methods.push('basic');
    if (s.token) methods.push('token');
    if (s.proxy !== undefined) methods.push('proxy');
    return methods;
  }

  /** The WWW-Authenticate challenge for a 401. */
  challenge(): string | undefined {
    const s = this.#settings;
    if (s === 'disable') return undefined;
    if (s.basic) return 'Basic realm="batchd", charset="UTF-8"';
    return s.token ? 'Bearer realm="batchd"' : undefined;
  }

  /**
   * Who sent the request; throws a 401 error. Synchronous except for a Basic credential not yet
   * verified (scrypt), so a token or proxy request costs no promise.
   */
  authenticate(request: Credentials): Principal | Promise<Principal> {
    const s = this.#settings;
    if (s === 'disable') return ANONYMOUS;
    if (s.proxy !== undefined) {
      const claimed = request.header(s.proxy.header);
      if (claimed !== undefined) return this.#proxy(claimed, request.remoteAddress, s.proxy.header);
    }
    const authorization = request.header('authorization');
    if (authorization === undefined || authorization.trim() === '')
      throw unauthorized('Authentication required', 'missing');
    const space = authorization.indexOf(' ');
    const scheme = (space < 0 ? authorization : authorization.slice(0, space)).toLowerCase();
    const value = space < 0 ? '' : authorization.slice(space + 1).trim();
    if (scheme === 'bearer' && s.token) return this.#bearer(value);
    if (scheme === 'basic' && s.basic) return this.#basic(value, request.remoteAddress);
    throw unauthorized(
      `This server does not accept ${scheme === '' ? 'that' : scheme} authentication; it accepts ${this.methods().join(', ')}`,
      'scheme',
    );
  }

  #proxy(claimed: string, address: string | undefined, header: string): Principal {
    if (address === undefined || this.#trusted === undefined || !isTrusted(this.#trusted, address)) {
      throw unauthorized(
        `The ${header} header is accepted only from the configured proxies`,
        'untrusted-proxy',
      );
    }
    const name = claimed.trim();
    if (!this.#store.has(name))
      throw unauthorized(`The proxy named a user this server does not know`, 'unknown-user');
    return principalFor(name, this.#store.grantsOf(name), 'proxy');
  }

  #bearer(secret: string): Principal {
    const token = secret === '' ? undefined : this.#store.findToken(secret);
    if (token === undefined) throw unauthorized('Invalid, expired or revoked token', 'token');
    return principalFor(token.user_name, this.#store.grantsOf(token.user_name), 'token', token.id);
  }

  async #basic(value: string, address: string | undefined): Promise<Principal> {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 1) throw unauthorized('Malformed Basic credentials', 'malformed');
    const name = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const key = createHash('sha256').update(this.#cacheSalt).update(value).digest('base64');
    const stored = this.#store.passwordHash(name);
    const cached = this.#basicCache.get(key);
    if (cached !== undefined && cached.name === name && cached.hash === stored && cached.until > Date.now()) {
      return principalFor(name, this.#store.grantsOf(name), 'basic');
    }
    // Before any scrypt: a guesser past the limit costs nothing more.
    this.#throttle?.check(name, address);
    let verifying = this.#verifying.get(key);
    if (verifying === undefined) {
      verifying = verifyPassword(password, stored).finally(() => this.#verifying.delete(key));
      this.#verifying.set(key, verifying);
    }
    // Awaited whether or not the user exists: an unknown user costs the same scrypt as a wrong password.
    const matches = await verifying;
    if (stored === undefined || !matches) {
      this.#throttle?.failed(name, address);
      throw unauthorized('Wrong user name or password', 'password');
    }
    this.#throttle?.succeeded(name);
    if (this.#basicCache.size >= BASIC_CACHE_MAX) this.#basicCache.clear();
    this.#basicCache.set(key, { name, hash: stored, until: Date.now() + BASIC_CACHE_MS });
    return principalFor(name, this.#store.grantsOf(name), 'basic');
  }
}

function unauthorized(message: string, reason: string): BatchdError {
  return new BatchdError('UNAUTHORIZED', message, { reason });
}

/** Addresses (`10.0.0.5`, `::1`) and subnets (`10.0.0.0/8`). */
function trustList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', bits] = entry.split('/');
    const type = isIPv6(address) ? 'ipv6' : 'ipv4';
    if (!isIPv4(address) && !isIPv6(address)) {
      throw new BatchdError(
        'CONFIG_INVALID',
        `manager.auth.proxy.trusted: ${JSON.stringify(entry)} is not an IP address or subnet`,
        { field: 'manager.auth.proxy.trusted' },
      );
    }
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}

function isTrusted(list: BlockList, address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  const plain = mapped ?? address;
  return list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4');
}
