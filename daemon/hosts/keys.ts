import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

import ssh2, { type ParsedKey } from 'ssh2';

import { BatchdError, coerceError } from '../errors.ts';

const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/** `~/.ssh/id_ed25519`, `id_ecdsa` or `id_rsa`: the first that exists (OpenSSH's order). */
export function defaultKeyFile(): string {
  const dir = path.join(homedir(), '.ssh');
  for (const name of DEFAULT_KEYS) {
    try {
      statSync(path.join(dir, name));
      return path.join(dir, name);
    } catch {
      // try the next
    }
  }
  return path.join(dir, DEFAULT_KEYS[0] as string);
}

interface Cached {
  mtimeMs: number;
  passphrase: string;
  key: ParsedKey;
}

/**
 * Private keys, parsed once per file version: decrypting a key with a passphrase runs bcrypt, which
 * takes a second in JavaScript, and would otherwise run at every new connection.
 */
export class PrivateKeys {
  readonly #cache = new Map<string, Cached>();

  load(file: string, passphrase: string, host: string): ParsedKey {
    const fail = (why: string): BatchdError =>
      new BatchdError('HOST_AUTH_FAILED', `host ${host}: cannot use private_key ${file}: ${why}`, {
        host,
        file,
      });
    let mtimeMs: number;
    let data: Buffer;
    try {
      mtimeMs = statSync(file).mtimeMs;
      const cached = this.#cache.get(file);
      if (cached !== undefined && cached.mtimeMs === mtimeMs && cached.passphrase === passphrase)
        return cached.key;
      data = readFileSync(file);
    } catch (error) {
      throw fail(coerceError(error).message);
    }
    // ssh2 is CommonJS: Node finds `utils` only on its default export.
    const parsed = ssh2.utils.parseKey(data, passphrase === '' ? undefined : passphrase);
    if (parsed instanceof Error) throw fail(parsed.message);
    // Files with several keys parse to a list: the first is the one OpenSSH uses.
    const key: ParsedKey | undefined = Array.isArray(parsed) ? (parsed as ParsedKey[])[0] : parsed;
    if (key === undefined || !key.isPrivateKey()) throw fail('the file holds no private key');
    this.#cache.set(file, { mtimeMs, passphrase, key });
    return key;
  }
}
