import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** What the host-key check decided; a refusal says why in words a user can act on. */
export type HostKeyVerdict =
  { ok: true } | { ok: false; reason: 'unknown' | 'changed' | 'revoked' | 'unreadable'; message: string };

/** How one host's key is checked: the key algorithms to ask for, and the check itself. */
export interface HostKeyPolicy {
  /** Key types on record, so the server presents a key we can compare; undefined: any. */
  keyTypes: string[] | undefined;
  check(key: Buffer): HostKeyVerdict;
}

/** `SHA256:…` as `ssh-keygen -l` prints it. */
export function fingerprintOf(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

/** The key type named at the start of an SSH public key blob. */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const length = key.readUInt32BE(0);
  return key.subarray(4, 4 + length).toString('latin1');
}

/** The name OpenSSH files a host under: `host`, or `[host]:port` off port 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function pinnedPolicy(fingerprints: readonly string[], target: string): HostKeyPolicy {
  return {
    keyTypes: undefined,
    check(key) {
      const got = fingerprintOf(key);
      if (fingerprints.includes(got)) return { ok: true };
      return {
        ok: false,
        reason: 'changed',
        message:
          `host key of ${target} does not match host_key_fingerprint: it presented ${keyTypeOf(key)} ${got}, ` +
          `expected ${fingerprints.join(' or ')}. The connection was refused: someone may be intercepting it, or ` +
          'the host was reinstalled (then pin its new fingerprint after checking it on the host).',
      };
    },
  };
}

interface Entry {
  line: number;
  marker: '' | '@revoked' | '@cert-authority';
  patterns: string;
  type: string;
  key: Buffer;
}

/**
 * OpenSSH's known_hosts: plain and hashed (`|1|salt|hash`) names, `[host]:port`, wildcards and
 * negations, `@revoked`. Certificate authorities are not supported and never match. The file is
 * read at each connection, so edits take effect without a restart.
 */
export function knownHostsPolicy(file: string, host: string, port: number): HostKeyPolicy {
  const target = knownHostsName(host, port);
  let entries: Entry[];
  let unreadable: string | undefined;
  try {
    entries = parseKnownHosts(readFileSync(file, 'utf8')).filter((e) => matchesHost(e.patterns, target));
  } catch (error) {
    entries = [];
    unreadable = (error as Error).message;
  }
  const trusted = entries.filter((e) => e.marker === '');
  const types = [...new Set(trusted.map((e) => e.type))];
  return {
    keyTypes: types.length > 0 ? types : undefined,
    check(key) {
      const type = keyTypeOf(key);
      const fp = fingerprintOf(key);
      if (unreadable !== undefined) {
        return {
          ok: false,
          reason: 'unreadable',
          message: `cannot read known_hosts ${file} to check the key of ${target}: ${unreadable}`,
        };
      }
      if (entries.some((e) => e.marker === '@revoked' && e.key.equals(key))) {
        return {
          ok: false,
          reason: 'revoked',
          message: `host key of ${target} (${type} ${fp}) is marked @revoked in ${file}`,
        };
      }
      if (trusted.some((e) => e.key.equals(key))) return { ok: true };
      const other = trusted.find((e) => e.type === type) ?? trusted[0];
      if (other !== undefined) {
        return {
          ok: false,
          reason: 'changed',
          message:
            `HOST KEY CHANGED for ${target}: it presented ${type} ${fp}, but ${file} line ${other.line} has ` +
            `${other.type} ${fingerprintOf(other.key)}. The connection was refused: someone may be intercepting it, ` +
            'or the host was reinstalled (then replace that line after checking the new key on the host).',
        };
      }
      return {
        ok: false,
        reason: 'unknown',
        message:
          `host key of ${target} is not in ${file}: it presented ${type} ${fp}. If that is the host's key ` +
          `(check with ssh-keygen -lf on the host), add this line to ${file}: ${target} ${type} ${key.toString('base64')}`,
      };
    },
  };
}

export function parseKnownHosts(text: string): Entry[] {
  const entries: Entry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: Entry['marker'] = '';
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority')
      marker = fields.shift() as Entry['marker'];
    const [patterns, type, key] = fields;
    if (patterns === undefined || type === undefined || key === undefined) return;
    const blob = Buffer.from(key, 'base64');
    if (blob.length === 0 || keyTypeOf(blob) !== type) return;
    entries.push({ line: i + 1, marker, patterns, type, key: blob });
  });
  return entries;
}

/** OpenSSH's rule: some pattern matches and no negated pattern does. */
export function matchesHost(patterns: string, target: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (salt === undefined || hash === undefined) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(target).digest('base64') === hash;
  }
  let matched = false;
  for (const pattern of patterns.split(',')) {
    const negated = pattern.startsWith('!');
    if (!globMatch(negated ? pattern.slice(1) : pattern, target.toLowerCase())) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function globMatch(pattern: string, text: string): boolean {
  const source = pattern
    .toLowerCase()
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${source}$`).test(text);
}
