import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseText } from '../../daemon/config/parse.ts';
import {
  fingerprintOf,
  knownHostsPolicy,
  matchesHost,
  pinnedPolicy,
} from '../../daemon/hosts/known-hosts.ts';
import { hostSchema } from '../../daemon/hosts/schema.ts';

/** A real key pair from ssh-keygen: its public line and its blob (what a server presents). */
function makeKey(dir: string, name: string): { line: string; blob: Buffer; pub: string } {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
  const pub = readFileSync(`${file}.pub`, 'utf8').trim();
  const [type, b64] = pub.split(' ');
  return { line: `${type} ${b64}`, blob: Buffer.from(b64 ?? '', 'base64'), pub: `${file}.pub` };
}

describe('host-key verification against known_hosts', () => {
  let dir: string;
  let a: ReturnType<typeof makeKey>;
  let b: ReturnType<typeof makeKey>;
  const file = (): string => path.join(dir, 'known_hosts');

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'batchd-kh-'));
    a = makeKey(dir, 'a');
    b = makeKey(dir, 'b');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts the key on record for host:port and names the key type to ask for', () => {
    writeFileSync(file(), `# comment\n\n[10.0.0.5]:2222 ${a.line}\nother.example ${b.line}\n`);
    const policy = knownHostsPolicy(file(), '10.0.0.5', 2222);
    expect(policy.keyTypes).toEqual(['ssh-ed25519']);
    expect(policy.check(a.blob)).toEqual({ ok: true });
  });

  it('refuses a changed key and says which line holds the old one', () => {
    writeFileSync(file(), `[10.0.0.5]:2222 ${a.line}\n`);
    const verdict = knownHostsPolicy(file(), '10.0.0.5', 2222).check(b.blob);
    expect(verdict.ok).toBe(false);
    if (verdict.ok) return;
    expect(verdict.reason).toBe('changed');
    expect(verdict.message).toContain(
      `HOST KEY CHANGED for [10.0.0.5]:2222: it presented ssh-ed25519 ${fingerprintOf(b.blob)}`,
    );
    expect(verdict.message).toContain(`line 1 has ssh-ed25519 ${fingerprintOf(a.blob)}`);
  });

  it('refuses an unknown host and offers the line to add', () => {
    writeFileSync(file(), `[10.0.0.5]:2222 ${a.line}\n`);
    // Same address, other port: another host as far as known_hosts is concerned.
    const verdict = knownHostsPolicy(file(), '10.0.0.5', 22).check(a.blob);
    expect(verdict).toMatchObject({ ok: false, reason: 'unknown' });
    if (verdict.ok) return;
    expect(verdict.message).toContain(`add this line to ${file()}: 10.0.0.5 ${a.line}`);
  });

  it('matches names hashed by ssh-keygen -H', () => {
    writeFileSync(file(), `[10.0.0.5]:2222 ${a.line}\nbox.example ${b.line}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file()], { stdio: 'ignore' });
    const text = readFileSync(file(), 'utf8');
    expect(text).not.toContain('box.example');
    expect(knownHostsPolicy(file(), '10.0.0.5', 2222).check(a.blob)).toEqual({ ok: true });
    expect(knownHostsPolicy(file(), 'box.example', 22).check(b.blob)).toEqual({ ok: true });
    expect(knownHostsPolicy(file(), 'box.example', 22).check(a.blob)).toMatchObject({
      ok: false,
      reason: 'changed',
    });
  });

  it('honours wildcards, negations and @revoked', () => {
    expect(matchesHost('*.example,!bad.example', 'good.example')).toBe(true);
    expect(matchesHost('*.example,!bad.example', 'bad.example')).toBe(false);
    expect(matchesHost('node-?', 'node-7')).toBe(true);
    expect(matchesHost('node-?', 'node-17')).toBe(false);
    writeFileSync(file(), `*.example ${a.line}\n@revoked * ${b.line}\n`);
    expect(knownHostsPolicy(file(), 'x.example', 22).check(a.blob)).toEqual({ ok: true });
    expect(knownHostsPolicy(file(), 'x.example', 22).check(b.blob)).toMatchObject({
      ok: false,
      reason: 'revoked',
    });
  });

  it('refuses every key when the known_hosts file cannot be read', () => {
    const verdict = knownHostsPolicy(path.join(dir, 'missing'), 'h', 22).check(a.blob);
    expect(verdict).toMatchObject({ ok: false, reason: 'unreadable' });
  });

  it('computes fingerprints exactly as ssh-keygen -l prints them, for pinning', () => {
    const printed = execFileSync('ssh-keygen', ['-l', '-f', a.pub], { encoding: 'utf8' }).split(' ')[1];
    expect(fingerprintOf(a.blob)).toBe(printed);
    expect(pinnedPolicy([printed ?? ''], 'h').check(a.blob)).toEqual({ ok: true });
    expect(pinnedPolicy([printed ?? ''], 'h').check(b.blob)).toMatchObject({ ok: false, reason: 'changed' });
  });
});

describe('host files', () => {
  const parse = (text: string): unknown => parseText(text, hostSchema, 'hosts/h.yaml');

  it('fill in batchd defaults and parse durations', () => {
    const host = parse('name: h\nhost_name: box\nuser_name: me\nconnect_timeout: 3\n');
    expect(host).toMatchObject({
      port: 22,
      controller: 'local',
      connect_timeout: 3000,
      idle_timeout: 60_000,
      backoff: { initial: 5000, max: 300_000 },
    });
  });

  it('report unknown fields, both verification kinds at once, and bad fingerprints with the line', () => {
    expect(() => parse('name: h\nhost_name: box\nuser_name: me\nprot: 22\n')).toThrow(
      /hosts\/h\.yaml, line 4, field prot: Unknown field "prot"/,
    );
    expect(() =>
      parse(
        `name: h\nhost_name: box\nuser_name: me\nknown_hosts: kh\nhost_key_fingerprint: SHA256:${'A'.repeat(43)}\n`,
      ),
    ).toThrow(/Give either known_hosts or host_key_fingerprint/);
    expect(() => parse('name: h\nhost_name: box\nuser_name: me\nhost_key_fingerprint: MD5:aa\n')).toThrow(
      /line 4, field host_key_fingerprint: Expected a fingerprint/,
    );
  });

  it("accept a block of settings for the host's controller", () => {
    expect(
      parse('name: h\nhost_name: box\nuser_name: me\ncontroller: linode\nlinode:\n  region: eu-west\n'),
    ).toMatchObject({
      linode: { region: 'eu-west' },
    });
    expect(() => parse('name: h\nhost_name: box\nuser_name: me\nlinode:\n  region: eu-west\n')).toThrow(
      /Unknown field "linode"/,
    );
  });
});
