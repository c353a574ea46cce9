import { execFile } from 'node:child_process';

import type { ADDRESS_SOURCES } from './config.ts';

export type AddressSource = (typeof ADDRESS_SOURCES)[number];

/** What `virsh domifaddr` answered for one source: an address, none yet, or its error. */
export type AddressAnswer = { address: string } | { address: undefined; error?: string };

/**
 * A domain's interface address from `virsh domifaddr` (the binding has no call for it), run with
 * the provider's connection URI and its arguments as an array (no shell). IPv4 first, then IPv6;
 * loopback and link-local addresses are skipped.
 */
export async function domifaddr(
  virsh: string,
  uri: string,
  domain: string,
  source: AddressSource,
  signal: AbortSignal,
): Promise<AddressAnswer> {
  const args = ['--quiet', '-c', uri, 'domifaddr', domain, '--source', source];
  return new Promise((resolve) => {
    execFile(
      virsh,
      args,
      { signal, timeout: 30_000, env: { ...process.env, LC_ALL: 'C' } },
      (error, stdout, stderr) => {
        if (error !== null) {
          const said = stderr
            .trim()
            .replace(/^error:\s*/gm, '')
            .replace(/\s+/g, ' ');
          resolve({ address: undefined, error: said !== '' ? said : error.message });
        } else resolve({ address: pickAddress(stdout) });
      },
    );
  });
}

/** The best address in `virsh domifaddr`'s table (name, MAC, protocol, address/prefix per row). */
export function pickAddress(table: string): string | undefined {
  const rows = table
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length === 4 && (cols[2] === 'ipv4' || cols[2] === 'ipv6'))
    .map((cols) => ({ protocol: cols[2], address: (cols[3] ?? '').replace(/\/\d+$/, '') }))
    .filter(({ address }) => !/^(127\.|::1$|fe80:)/i.test(address));
  return (rows.find((r) => r.protocol === 'ipv4') ?? rows[0])?.address;
}
