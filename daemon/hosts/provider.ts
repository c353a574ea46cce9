import type { Readable } from 'node:stream';

/** Where to reach a host over SSH right now. */
export interface HostAddress {
  address: string;
  port: number;
}

/** What a provider is told about one host: its file's fields that concern the provider. */
export interface ProviderHost {
  /** The host's name in batchd (`etc/hosts/<name>.yaml`). */
  name: string;
  /** The provider's name for it: `controller_id`, else the host's name (batchd's rule). */
  id: string;
  /** `controller_id` as the host file gives it (undefined: the file names none). */
  controllerId: string | undefined;
  /** The host file's `public_key`, as an absolute path (for providers that install it, as Linode does). */
  publicKey: string | undefined;
  /** From the host file, when it has one (a provider may locate the host elsewhere). */
  hostName: string | undefined;
  port: number;
  /** The host file's block named after its controller or driver (batchd's `linode:`), validated. */
  settings: unknown;
  /** Labels or tags that everything created for this host must carry (see `OwnedHost`). */
  tags: Readonly<Record<string, string>>;
}

/** A machine or container a provider finds carrying batchd's tags: a candidate for reaping. */
export interface OwnedHost {
  /** The provider's id for it (container id, instance id, domain name, Linode id). */
  id: string;
  /** The batchd host it was made or started for, from its tags. */
  host: string | undefined;
  running: boolean;
  /** batchd created it (it carries `batchd.created`): reaping deletes it, stopped or not. */
  created: boolean;
}

/** The exit of a command run through a provider's own channel. */
export interface ShellExit {
  code: number | null;
  signal: string | null;
}

/**
 * A command started through a provider's own channel (Docker exec). Its stdin stays open: the
 * daemon writes control lines to it (`TERM`, `KILL`), and end-of-file means "kill everything".
 */
export interface ShellChannel {
  readonly stdout: Readable;
  readonly stderr: Readable;
  write(line: string): void;
  end(): void;
  /** Resolves once the command ended and both streams were read to their end. */
  readonly exit: Promise<ShellExit>;
}

/** How a provider runs commands and moves files on its hosts without SSH. */
export interface HostShell {
  /** Run `/bin/sh -c script` on the host. */
  exec(host: ProviderHost, script: string, signal: AbortSignal): Promise<ShellChannel>;
  /** Copy a local file to `remote` (its folder exists) with `mode`. */
  put(host: ProviderHost, local: string, remote: string, mode: number, signal: AbortSignal): Promise<void>;
  /** Copy a regular file from the host to `local`; false when there is no such file. */
  get(host: ProviderHost, remote: string, local: string, signal: AbortSignal): Promise<boolean>;
}

/**
 * What a host-provider plugin (libvirt, Docker, EC2, Linode…) implements: start, stop, locate a
 * host or run commands on it, and list what it owns. Everything else — connections, limits,
 * back-off, startup commands, file staging, idle stop, reaping decisions — is the host layer's.
 * `start` and `stop` are idempotent; `start` returns once the machine runs, `stop` once it is down.
 */
export interface HostProvider {
  /** The driver's name, for messages. */
  readonly name: string;
  start?(host: ProviderHost, signal: AbortSignal): Promise<void>;
  stop?(host: ProviderHost, signal: AbortSignal): Promise<void>;
  /** Default: `host_name` and `port` from the host file. */
  locate?(host: ProviderHost, signal: AbortSignal): Promise<HostAddress>;
  /** Set when jobs run through the provider (Docker exec) instead of SSH. */
  readonly shell?: HostShell;
  /** Everything carrying this daemon's tags (`tags` of the provider context). */
  owned?(signal: AbortSignal): Promise<OwnedHost[]>;
  /** Stop, or delete if batchd created it, a leftover that `owned` listed. */
  reap?(leftover: OwnedHost, signal: AbortSignal): Promise<void>;
  /** Release connections; the daemon is stopping or the controller file changed. */
  close?(): Promise<void>;
}

/** The built-in controller `local`: a machine that is always on, at the address in its file. */
export const ALWAYS_ON: HostProvider = { name: 'local' };

export async function locate(
  provider: HostProvider,
  host: ProviderHost,
  signal: AbortSignal,
): Promise<HostAddress> {
  if (provider.locate !== undefined) return provider.locate(host, signal);
  if (host.hostName === undefined) throw new Error(`host ${host.name}: no host_name in its file`);
  return { address: host.hostName, port: host.port };
}
