import type { HostConfig } from './schema.ts';

/** Where to reach a host over SSH right now. */
export interface HostAddress {
  address: string;
  port: number;
}

/**
 * What a host-provider plugin (libvirt, Docker, EC2, Linode…) implements: start, stop and locate
 * a host. Everything else — connections, limits, back-off, startup commands, file staging, idle
 * stop — is the host layer's. `start` and `stop` must be idempotent; `stop` returns once the host
 * is down. A provider without `start`/`stop` has hosts that are always on.
 */
export interface HostProvider {
  readonly name: string;
  start?(host: HostConfig, signal: AbortSignal): Promise<void>;
  stop?(host: HostConfig, signal: AbortSignal): Promise<void>;
  /** Default: `host_name` and `port` from the host file. */
  locate?(host: HostConfig, signal: AbortSignal): Promise<HostAddress>;
}

/** The built-in controller `local`: a machine that is always on, at the address in its file. */
export const ALWAYS_ON: HostProvider = { name: 'local' };

export async function locate(
  provider: HostProvider,
  host: HostConfig,
  signal: AbortSignal,
): Promise<HostAddress> {
  return provider.locate !== undefined
    ? provider.locate(host, signal)
    : { address: host.host_name, port: host.port };
}
