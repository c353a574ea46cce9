import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';

import lockfile from 'proper-lockfile';
import { stringify } from 'yaml';
import { z } from 'zod';

import { parseText } from '../config/parse.ts';
import { NAME_PATTERN } from '../config/schema.ts';
import { BatchdError, coerceError, errnoCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import {
  type Grant,
  type GrantCreate,
  permissionSchema,
  type TokenInfo,
  type UserInfo,
} from '../protocol/auth.ts';
import { readConfigText } from '../config/safe-read.ts';
import { hashPassword } from './password.ts';
import { hashToken, newToken } from './tokens.ts';

export const USERS_FILE = 'users.yaml';

const userName = z.string().regex(NAME_PATTERN);

const storedGrantSchema = z
  .object({
    id: z.int().min(1),
    user_name: userName,
    permission: permissionSchema,
    queue_name: z.string().nullable().default(null),
    type_name: z.string().nullable().default(null),
    host_name: z.string().nullable().default(null),
  })
  .strict();

const storedTokenSchema = z
  .object({
    id: z.string().regex(/^[0-9a-f]{12}$/),
    user_name: userName,
    name: z.string().nullable().default(null),
    /** SHA-256 of the secret; the secret itself is never stored. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    created_at: z.string(),
    expires_at: z.string(),
  })
  .strict();
type StoredToken = z.infer<typeof storedTokenSchema>;

const usersFileSchema = z
  .object({
    users: z
      .record(
        userName,
        z.object({ password: z.string().startsWith('scrypt$'), created_at: z.string().optional() }).strict(),
      )
      .default({}),
    grants: z.array(storedGrantSchema).default([]),
    tokens: z.array(storedTokenSchema).default([]),
    next_grant_id: z.int().min(1).default(1),
  })
  .strict();
type UsersFile = z.infer<typeof usersFileSchema>;

const EMPTY = (): UsersFile => usersFileSchema.parse({});
const HEADER =
  '# Written by batchd (users, password hashes, grants, token hashes). Keep it private: mode 0600.\n';
/** How often the file is checked for changes made by another process (`batchd admin`). */
const RECHECK_MS = 500;

/**
 * Users, password hashes, grants and tokens, kept in `<config>/users.yaml`. Every change is a
 * read-modify-write under a lock file (the daemon and `batchd admin` may both write), written
 * atomically with mode 0600. Changes by another process are picked up within half a second.
 */
export class UserStore {
  readonly file: string | undefined;
  readonly #log: Logger | undefined;
  #data: UsersFile = EMPTY();
  #stamp = '';
  #checkedAt = 0;
  /** Token hash → token, for a lookup per request. */
  #byHash = new Map<string, StoredToken>();

  constructor(file: string | undefined, log?: Logger) {
    this.file = file;
    this.#log = log;
    this.#load(true);
  }

  static forConfigDir(dir: string | undefined, log?: Logger): UserStore {
    return new UserStore(dir === undefined ? undefined : path.join(dir, USERS_FILE), log);
  }

  /** Pick up changes another process wrote (throttled). */
  refresh(): void {
    const now = Date.now();
    if (now - this.#checkedAt < RECHECK_MS) return;
    this.#checkedAt = now;
    if (stampOf(this.file) !== this.#stamp) this.#load(false);
  }

  passwordHash(name: string): string | undefined {
    this.refresh();
    return Object.hasOwn(this.#data.users, name) ? this.#data.users[name]?.password : undefined;
  }

  has(name: string): boolean {
    return this.passwordHash(name) !== undefined;
  }

  users(): UserInfo[] {
    this.refresh();
    return Object.keys(this.#data.users)
      .sort()
      .map((name) => ({ name, superuser: this.grantsOf(name).some((g) => g.permission === 'SuperUser') }));
  }

  grantsOf(name: string): Grant[] {
    this.refresh();
    return this.#data.grants.filter((g) => g.user_name === name);
  }

  async addUser(name: string, password: string, options: { superuser?: boolean } = {}): Promise<void> {
    const hash = await hashPassword(password);
    await this.#mutate((data) => {
      if (Object.hasOwn(data.users, name))
        throw new BatchdError('ALREADY_EXISTS', `User "${name}" already exists`, { user: name });
      data.users[name] = { password: hash, created_at: new Date().toISOString() };
      if (options.superuser === true) addGrantTo(data, name, { permission: 'SuperUser' });
    });
  }

  /** Set a password; `create`: make the user if missing (admin commands). */
  async setPassword(
    name: string,
    password: string,
    options: { create?: boolean; superuser?: boolean } = {},
  ): Promise<void> {
    const hash = await hashPassword(password);
    await this.#mutate((data) => {
      const existing = Object.hasOwn(data.users, name) ? data.users[name] : undefined;
      if (existing === undefined && options.create !== true) throw unknownUser(name);
      data.users[name] = { password: hash, created_at: existing?.created_at ?? new Date().toISOString() };
      const isSuper = data.grants.some((g) => g.user_name === name && g.permission === 'SuperUser');
      if (options.superuser === true && !isSuper) addGrantTo(data, name, { permission: 'SuperUser' });
    });
  }

  /** Removes the user with its grants and tokens. */
  async removeUser(name: string): Promise<void> {
    await this.#mutate((data) => {
      if (!Object.hasOwn(data.users, name)) throw unknownUser(name);
      delete data.users[name];
      data.grants = data.grants.filter((g) => g.user_name !== name);
      data.tokens = data.tokens.filter((t) => t.user_name !== name);
    });
  }

  async addGrant(name: string, grant: GrantCreate): Promise<Grant> {
    return this.#mutate((data) => {
      if (!Object.hasOwn(data.users, name)) throw unknownUser(name);
      return addGrantTo(data, name, grant);
    });
  }

  async removeGrant(name: string, id: number): Promise<void> {
    await this.#mutate((data) => {
      if (!Object.hasOwn(data.users, name)) throw unknownUser(name);
      const index = data.grants.findIndex((g) => g.id === id && g.user_name === name);
      if (index < 0)
        throw new BatchdError('NOT_FOUND', `User "${name}" has no permission #${id}`, {
          user: name,
          grant: id,
        });
      data.grants.splice(index, 1);
    });
  }

  async createToken(
    user: string,
    ttlMs: number,
    name: string | undefined,
  ): Promise<{ info: TokenInfo; secret: string }> {
    const token = newToken();
    const now = Date.now();
    const stored: StoredToken = {
      id: token.id,
      user_name: user,
      name: name ?? null,
      sha256: token.hash,
      created_at: new Date(now).toISOString(),
      expires_at: new Date(now + ttlMs).toISOString(),
    };
    await this.#mutate((data) => {
      if (!Object.hasOwn(data.users, user)) throw unknownUser(user);
      data.tokens = data.tokens.filter((t) => Date.parse(t.expires_at) > now); // expired ones go on every write
      data.tokens.push(stored);
    });
    return { info: tokenInfo(stored), secret: token.secret };
  }

  tokens(user?: string): TokenInfo[] {
    this.refresh();
    const now = Date.now();
    return this.#data.tokens
      .filter((t) => (user === undefined || t.user_name === user) && Date.parse(t.expires_at) > now)
      .map(tokenInfo);
  }

  token(id: string): TokenInfo | undefined {
    return this.tokens().find((t) => t.id === id);
  }

  async revokeToken(id: string): Promise<void> {
    await this.#mutate((data) => {
      const before = data.tokens.length;
      data.tokens = data.tokens.filter((t) => t.id !== id);
      if (data.tokens.length === before) throw new BatchdError('NOT_FOUND', `No token ${id}`, { token: id });
    });
  }

  /** The live token with this secret, if any (looked up by hash: the secret is never compared as text). */
  findToken(secret: string): TokenInfo | undefined {
    this.refresh();
    const stored = this.#byHash.get(hashToken(secret));
    if (stored === undefined || Date.parse(stored.expires_at) <= Date.now()) return undefined;
    if (!Object.hasOwn(this.#data.users, stored.user_name)) return undefined;
    return tokenInfo(stored);
  }

  async #mutate<T>(change: (data: UsersFile) => T): Promise<T> {
    const file = this.file;
    if (file === undefined) {
      throw new BatchdError(
        'CONFLICT',
        'batchd runs without a config folder, so it cannot store users; start it with --config DIR',
      );
    }
    const release = await lockfile.lock(file, {
      lockfilePath: `${file}.lock`,
      realpath: false,
      stale: 10_000,
      retries: { retries: 100, minTimeout: 10, maxTimeout: 100 },
    });
    try {
      this.#load(true);
      const data = structuredClone(this.#data);
      const result = change(data);
      writePrivate(file, HEADER + stringify(data, { lineWidth: 0 }));
      this.#set(data, stampOf(file));
      return result;
    } finally {
      await release();
    }
  }

  #load(strict: boolean): void {
    const file = this.file;
    const stamp = stampOf(file);
    this.#stamp = stamp;
    if (file === undefined || stamp === '') {
      this.#set(EMPTY(), stamp);
      return;
    }
    try {
      this.#set(parseText(readConfigText(file), usersFileSchema, file), stamp);
    } catch (error) {
      if (strict) throw error;
      this.#log?.error(
        { file },
        `invalid users file (the last good version stays in force): ${coerceError(error).message}`,
      );
    }
  }

  #set(data: UsersFile, stamp: string): void {
    this.#data = data;
    this.#stamp = stamp;
    this.#byHash = new Map(data.tokens.map((t) => [t.sha256, t]));
  }
}

function addGrantTo(data: UsersFile, name: string, grant: GrantCreate): Grant {
  const created: Grant = {
    id: data.next_grant_id,
    user_name: name,
    permission: grant.permission,
    queue_name: grant.queue_name ?? null,
    type_name: grant.type_name ?? null,
    host_name: grant.host_name ?? null,
  };
  data.next_grant_id += 1;
  data.grants.push(created);
  return created;
}

function tokenInfo(t: StoredToken): TokenInfo {
  return {
    id: t.id,
    name: t.name,
    user_name: t.user_name,
    created_at: t.created_at,
    expires_at: t.expires_at,
  };
}

function unknownUser(name: string): BatchdError {
  return new BatchdError('UNKNOWN_USER', `Unknown user "${name}"`, { user: name });
}

function stampOf(file: string | undefined): string {
  if (file === undefined) return '';
  try {
    const st = statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return '';
    throw error;
  }
}

/**
 * Write-temp-then-rename like spool/atomic.ts, but the temp file is created fresh (`wx`) with mode
 * 0600, so the hashes are never readable by others, not even for a moment.
 */
function writePrivate(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dir = openSync(path.dirname(file), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
