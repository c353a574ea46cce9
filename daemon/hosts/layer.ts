import { homedir } from 'node:os';
import path from 'node:path';

import type { PublicKeyAuthMethod, ServerHostKeyAlgorithm } from 'ssh2';

import type { ConfigStore } from '../config/store.ts';
import { BatchdError, coerceError } from '../errors.ts';
import type { EventBus } from '../events.ts';
import type { Executor } from '../executors/types.ts';
import type { Logger } from '../log.ts';
import { defaultKeyFile, PrivateKeys } from './keys.ts';
import { knownHostsName, knownHostsPolicy, pinnedPolicy } from './known-hosts.ts';
import { ALWAYS_ON, type HostProvider, locate } from './provider.ts';
import { type HostConfig, hostSchema } from './schema.ts';
import { type ConnectionTarget, type Lease, SshPool, abortable } from './ssh-pool.ts';
import { runStartupCommands } from './startup.ts';
import { HostStates } from './states.ts';
import { RemoteSweeper } from './sweeper.ts';

export const HOSTS_FOLDER = 'hosts';

/** Names that mean "this machine": never looked up as host files. */
export const LOCAL_HOSTS = new Set(['localhost']);

export interface HostLayerDeps {
  config: ConfigStore;
  events: EventBus;
  log: Logger;
  /** Look at the queues again: a host came back or has room. */
  pump: () => void;
  /** Builds the executor that runs jobs on a host through this layer. */
  executor: (layer: HostLayer, host: string) => Executor;
}

/** A leased channel on a host that is up, with what a job needs to know about the host. */
export interface HostSession {
  lease: Lease;
  host: HostConfig;
  /** The login folder on the host: relative host paths are relative to it. */
  home: string;
  /** Remove these paths on the host soon, batched with other jobs' (finished job folders). */
  sweep(paths: readonly string[]): void;
  release(): void;
}

interface PoolEntry {
  config: HostConfig;
  pool: SshPool;
  sweeper: RemoteSweeper;
  home: string | undefined;
  provider: HostProvider;
}

/**
 * Remote hosts: their files in etc/hosts/, what this daemon believes about each (up, down with
 * back-off…), connection pools, bring-up (provider start, startup commands) and idle stop.
 * Providers only start, stop and locate hosts; the rest is here.
 */
export class HostLayer {
  readonly states: HostStates;
  readonly #d: HostLayerDeps;
  readonly #pools = new Map<string, PoolEntry>();
  readonly #bringUps = new Map<string, Promise<void>>();
  readonly #executors = new Map<string, Executor>();
  readonly #active = new Map<string, number>();
  readonly #idleTimers = new Map<string, NodeJS.Timeout>();
  readonly #closing = new AbortController();
  readonly #keys = new PrivateKeys();
  #providerFor: (controller: string) => HostProvider | undefined = () => undefined;

  constructor(deps: HostLayerDeps) {
    this.#d = deps;
    this.states = new HostStates(deps.events, deps.log, deps.pump);
    deps.config.register({ folder: HOSTS_FOLDER, schema: hostSchema });
    deps.events.on('config:reloaded', ({ file }) => this.#configChanged(file));
  }

  /** Provider plugins are found by the controller name in a host file (`local` is built in). */
  setProviderResolver(resolver: (controller: string) => HostProvider | undefined): void {
    this.#providerFor = resolver;
  }

  host(name: string): HostConfig | undefined {
    return this.#d.config.get<HostConfig>(HOSTS_FOLDER, name);
  }

  /** The dispatcher's question: may one more job start on `name`, with `running` there now? */
  admits(name: string | undefined, running: number): boolean {
    if (name === undefined || LOCAL_HOSTS.has(name)) return true;
    const host = this.host(name);
    if (host === undefined) return true; // it fails at once with "unknown host", as it should
    return this.states.admits(name, running, host.max_jobs);
  }

  executorFor(name: string): Executor | undefined {
    if (this.host(name) === undefined) return undefined;
    let executor = this.#executors.get(name);
    if (executor === undefined) this.#executors.set(name, (executor = this.#d.executor(this, name)));
    return executor;
  }

  /**
   * A channel on a host that is up: brings it up first if needed (provider start, startup
   * commands). Any failure to reach it marks it down and rejects with a BatchdError that says why.
   */
  async session(name: string, signal: AbortSignal): Promise<HostSession> {
    const host = this.host(name);
    if (host === undefined) throw new BatchdError('UNKNOWN_HOST', `Unknown host "${name}"`, { host: name });
    const entry = this.#entry(name, host);
    this.#busy(name, +1);
    try {
      if (this.states.get(name).state !== 'up' || entry.home === undefined)
        await abortable(this.#bringUp(name, entry), signal);
      let lease: Lease;
      try {
        lease = await entry.pool.lease(signal);
      } catch (error) {
        if (!signal.aborted) this.#failed(name, entry, error);
        throw error;
      }
      this.states.up(name);
      let released = false;
      return {
        lease,
        host,
        home: entry.home ?? '/',
        sweep: (paths) => entry.sweeper.add(paths),
        release: () => {
          if (released) return;
          released = true;
          lease.release();
          this.#busy(name, -1);
        },
      };
    } catch (error) {
      this.#busy(name, -1);
      throw error;
    }
  }

  /** A job lost its connection mid-run: the host is down until its back-off ends. */
  lost(name: string, reason: string): void {
    const host = this.host(name);
    if (host !== undefined) this.states.down(name, reason, host.backoff);
  }

  async close(): Promise<void> {
    this.#closing.abort('shutdown');
    for (const timer of this.#idleTimers.values()) clearTimeout(timer);
    const entries = [...this.#pools.values()];
    await Promise.allSettled(entries.map((entry) => entry.sweeper.flush(AbortSignal.timeout(5_000))));
    for (const entry of entries) entry.pool.close();
    this.#pools.clear();
    this.states.close();
    await Promise.allSettled(this.#bringUps.values());
  }

  #entry(name: string, host: HostConfig): PoolEntry {
    const existing = this.#pools.get(name);
    if (existing !== undefined && existing.config === host) return existing;
    existing?.pool.retire();
    const pool = new SshPool(
      name,
      {
        maxConnections: host.max_connections,
        sessionsPerConnection: host.sessions_per_connection,
        idleTimeoutMs: host.idle_timeout,
      },
      () => this.#target(host, entry.provider),
      this.#d.log,
    );
    const entry: PoolEntry = {
      config: host,
      home: undefined,
      provider: this.#providerOf(host) ?? ALWAYS_ON,
      pool,
      sweeper: new RemoteSweeper(name, (signal) => pool.lease(signal), this.#d.log),
    };
    this.#pools.set(name, entry);
    return entry;
  }

  /** One bring-up per host at a time; every job that needs the host waits for the same one. */
  #bringUp(name: string, entry: PoolEntry): Promise<void> {
    let running = this.#bringUps.get(name);
    if (running === undefined) {
      running = this.#doBringUp(name, entry).finally(() => this.#bringUps.delete(name));
      this.#bringUps.set(name, running);
    }
    return running;
  }

  async #doBringUp(name: string, entry: PoolEntry): Promise<void> {
    const host = entry.config;
    const signal = this.#closing.signal;
    try {
      const provider = this.#providerOf(host);
      if (provider === undefined) {
        throw new BatchdError(
          'HOST_UNREACHABLE',
          `host ${name}: controller "${host.controller}" has no provider plugin loaded (etc/controllers/${host.controller}.yaml)`,
          { host: name },
        );
      }
      entry.provider = provider;
      if (provider.start !== undefined) {
        this.states.transition(name, 'starting', `starting with ${provider.name}`);
        await provider.start(host, signal);
        await sleep(host.startup_time, signal);
      }
      const lease = await entry.pool.lease(signal);
      try {
        // The last line: a chatty shell start-up file may print before it.
        entry.home = (await lease.run('pwd')).stdout.trim().split('\n').at(-1) || '/';
        await runStartupCommands(name, host, lease, this.#variables(host), signal);
      } finally {
        lease.release();
      }
      this.states.up(name);
    } catch (error) {
      if (!signal.aborted) this.#failed(name, entry, error);
      throw error;
    }
  }

  #providerOf(host: HostConfig): HostProvider | undefined {
    return host.controller === 'local' ? ALWAYS_ON : this.#providerFor(host.controller);
  }

  #failed(name: string, entry: PoolEntry, error: unknown): void {
    this.states.down(name, coerceError(error).message, entry.config.backoff);
  }

  async #target(host: HostConfig, provider: HostProvider): Promise<ConnectionTarget> {
    const { address, port } = await locate(provider, host, this.#closing.signal);
    const keyFile = host.private_key === undefined ? defaultKeyFile() : this.#path(host.private_key);
    const key = this.#keys.load(keyFile, host.passphrase, host.name);
    const publicKey: PublicKeyAuthMethod = { type: 'publickey', username: host.user_name, key };
    const policy =
      host.host_key_fingerprint !== undefined
        ? pinnedPolicy(host.host_key_fingerprint, knownHostsName(address, port))
        : knownHostsPolicy(this.#path(host.known_hosts ?? '~/.ssh/known_hosts'), address, port);
    const keepalive = host.keepalive;
    return {
      where: `${host.user_name}@${address}:${port}`,
      keyFile,
      policy,
      config: {
        host: address,
        port,
        username: host.user_name,
        // The parsed key (keys.ts), so a passphrase is not worked through at every connection.
        authHandler: [publicKey],
        readyTimeout: host.connect_timeout,
        keepaliveInterval: keepalive,
        keepaliveCountMax: 3,
        ...(policy.keyTypes === undefined
          ? {}
          : { algorithms: { serverHostKey: hostKeyAlgorithms(policy.keyTypes) } }),
      },
    };
  }

  #path(p: string): string {
    if (p === '~' || p.startsWith('~/')) return path.join(homedir(), p.slice(1));
    return this.#d.config.resolve(p);
  }

  #variables(host: HostConfig): Record<string, string> {
    return {
      ...this.#d.config.daemon.variables,
      ...host.variables,
      name: host.name,
      hostname: host.host_name,
      controllerId: host.controller_id ?? host.name,
      user: host.user_name,
      port: String(host.port),
      inputDirectory: host.input_directory ?? '',
      outputDirectory: host.output_directory ?? '',
    };
  }

  /** Jobs (and bring-ups) using a host; a provider-started host idle long enough is stopped. */
  #busy(name: string, by: number): void {
    const count = (this.#active.get(name) ?? 0) + by;
    this.#active.set(name, count);
    clearTimeout(this.#idleTimers.get(name));
    this.#idleTimers.delete(name);
    const entry = this.#pools.get(name);
    if (count > 0 || entry?.provider.stop === undefined || this.#closing.signal.aborted) return;
    const timer = setTimeout(() => {
      this.#idleTimers.delete(name);
      this.#stopIdle(name, entry).catch((error: unknown) =>
        this.#d.log.error({ host: name, err: coerceError(error) }, 'stopping an idle host failed'),
      );
    }, entry.config.shutdown_timeout);
    timer.unref();
    this.#idleTimers.set(name, timer);
  }

  async #stopIdle(name: string, entry: PoolEntry): Promise<void> {
    if (
      (this.#active.get(name) ?? 0) > 0 ||
      this.states.get(name).state !== 'up' ||
      entry.provider.stop === undefined
    )
      return;
    this.states.transition(name, 'stopping', 'idle');
    await entry.sweeper.flush();
    entry.pool.close();
    this.#pools.delete(name);
    try {
      await entry.provider.stop(entry.config, this.#closing.signal);
      this.states.transition(
        name,
        'stopped',
        `idle for ${Math.round(entry.config.shutdown_timeout / 1000)} s`,
      );
    } catch (error) {
      this.#failed(name, entry, error);
    }
  }

  #configChanged(file: string): void {
    if (path.basename(path.dirname(file)) !== HOSTS_FOLDER) return;
    const name = path.basename(file).replace(/\.(ya?ml|json)$/, '');
    const entry = this.#pools.get(name);
    const now = this.host(name);
    if (entry === undefined || entry.config === now) return;
    entry.pool.retire();
    this.#pools.delete(name);
    this.states.forget(name);
    if (now === undefined) this.#executors.delete(name);
  }
}

/** ssh2's algorithm names for the key types on record (RSA keys sign with SHA-2 first). */
function hostKeyAlgorithms(types: string[]): ServerHostKeyAlgorithm[] {
  return types.flatMap((t) =>
    t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t],
  ) as ServerHostKeyAlgorithm[];
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
