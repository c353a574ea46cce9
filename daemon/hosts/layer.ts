import { homedir, userInfo } from 'node:os';
import path from 'node:path';

import type { PublicKeyAuthMethod, ServerHostKeyAlgorithm } from 'ssh2';

import type { ConfigStore } from '../config/store.ts';
import { BatchdError, coerceError } from '../errors.ts';
import type { EventBus } from '../events.ts';
import type { Executor } from '../jobs/executor.ts';
import type { Logger } from '../log.ts';
import type { HostClaims } from './claims.ts';
import { defaultKeyFile, PrivateKeys } from './keys.ts';
import { knownHostsName, knownHostsPolicy, pinnedPolicy } from './known-hosts.ts';
import { ALWAYS_ON, type HostProvider, type HostShell, locate, type ProviderHost } from './provider.ts';
import { type HostConfig, hostSchema } from './schema.ts';
import { shellRun } from './shell-run.ts';
import { type ConnectionTarget, type Lease, SshPool, abortable } from './ssh-pool.ts';
import { runStartupCommands, type RunOnHost } from './startup.ts';
import { HostStates } from './states.ts';
import { RemoteSweeper } from './sweeper.ts';
import { retryUntil, sleep } from './wait.ts';

export const HOSTS_FOLDER = 'hosts';

/** Names that mean "this machine": never looked up as host files. */
export const LOCAL_HOSTS = new Set(['localhost']);

/** Where the host layer finds providers: the controllers of etc/controllers/ (plugins). */
export interface ProviderSource {
  provider(controller: string): HostProvider | undefined;
  /** The host file's block for its controller, validated by the plugin (throws a BatchdError). */
  settings(host: HostConfig): unknown;
  /** Tags that mark what this spool's daemons create or start. */
  readonly tags: Readonly<Record<string, string>>;
}

const NO_PROVIDERS: ProviderSource = { provider: () => undefined, settings: () => undefined, tags: {} };

export interface HostLayerDeps {
  config: ConfigStore;
  events: EventBus;
  log: Logger;
  /** Who uses provider-started hosts, shared by the dispatchers of the spool. */
  claims: HostClaims;
  /** Look at the queues again: a host came back or has room. */
  pump: () => void;
  /** Builds the executor that runs jobs on a host through this layer (SSH, or a provider's shell). */
  executor: (layer: HostLayer, host: string, kind: 'ssh' | 'shell') => Executor;
  /** The file that keeps the hosts' last errors across restarts (hosts/error-history.ts). */
  errorsFile?: string;
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

/** A host reached through its provider's own channel (Docker exec), once up. */
export interface ShellSession {
  shell: HostShell;
  target: ProviderHost;
  host: HostConfig;
  /** The folder commands start in: asked of the host once, when a job needs an absolute path. */
  home(signal: AbortSignal): Promise<string>;
  release(): void;
}

interface HostEntry {
  config: HostConfig;
  provider: HostProvider;
  /** Set once the provider was resolved and the host's block validated. */
  target: ProviderHost | undefined;
  /** SSH hosts only. */
  pool: SshPool | undefined;
  sweeper: RemoteSweeper | undefined;
  home: string | undefined;
  /** Brought up (started, reached, startup commands run) since the entry was made. */
  up: boolean;
}

/**
 * Remote hosts: their files in etc/hosts/, what this daemon believes about each (ready, failed
 * with back-off…), connection pools, bring-up (provider start, wait until reachable, startup
 * commands) and idle stop. Providers only start, stop, locate hosts or run commands on them; the
 * rest is here. Starting and stopping a provider's host goes through the spool's host claims, so
 * dispatchers sharing the spool never stop a host another one still uses.
 */
export class HostLayer {
  readonly states: HostStates;
  readonly #d: HostLayerDeps;
  readonly #entries = new Map<string, HostEntry>();
  readonly #bringUps = new Map<string, Promise<void>>();
  readonly #stops = new Map<string, Promise<void>>();
  readonly #executors = new Map<string, Executor>();
  readonly #active = new Map<string, number>();
  readonly #idleTimers = new Map<string, NodeJS.Timeout>();
  readonly #closing = new AbortController();
  readonly #keys = new PrivateKeys();
  #providers: ProviderSource = NO_PROVIDERS;

  constructor(deps: HostLayerDeps) {
    this.#d = deps;
    this.states = new HostStates(deps.events, deps.log, deps.pump, deps.errorsFile);
    deps.config.register({ folder: HOSTS_FOLDER, schema: hostSchema });
    deps.events.on('config:reloaded', ({ file }) => this.#configChanged(file));
  }

  /** Provider plugins are found by the controller name in a host file (`local` is built in). */
  setProviders(source: ProviderSource): void {
    this.#providers = source;
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

  /** Jobs of this daemon on each host now (bring-ups included). */
  active(name: string): number {
    return this.#active.get(name) ?? 0;
  }

  executorFor(name: string): Executor | undefined {
    const host = this.host(name);
    if (host === undefined) return undefined;
    const kind = this.#providerOf(host)?.shell === undefined ? 'ssh' : 'shell';
    const key = `${kind}:${name}`;
    let executor = this.#executors.get(key);
    if (executor === undefined) this.#executors.set(key, (executor = this.#d.executor(this, name, kind)));
    return executor;
  }

  /**
   * A channel on a host that is up: brings it up first if needed (provider start, startup
   * commands). Any failure to reach it marks it failed and rejects with a BatchdError that says why.
   */
  async session(name: string, signal: AbortSignal): Promise<HostSession> {
    const { entry, host } = await this.#acquire(name, signal);
    try {
      const pool = entry.pool as SshPool;
      let lease: Lease;
      try {
        lease = await pool.lease(signal);
      } catch (error) {
        if (!signal.aborted) this.#failed(name, entry, error);
        throw error;
      }
      this.states.ready(name, true);
      let released = false;
      return {
        lease,
        host,
        home: entry.home ?? '/',
        sweep: (paths) => entry.sweeper?.add(paths),
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

  /** A host whose provider runs commands itself (Docker exec), up, for one job. */
  async shellSession(name: string, signal: AbortSignal): Promise<ShellSession> {
    const { entry, host } = await this.#acquire(name, signal);
    const shell = entry.provider.shell;
    if (shell === undefined || entry.target === undefined) {
      this.#busy(name, -1);
      throw new BatchdError('INTERNAL', `host ${name}: its provider has no shell`, { host: name });
    }
    this.states.ready(name, true);
    let released = false;
    const target = entry.target;
    return {
      shell,
      target,
      host,
      home: async (signal) =>
        (entry.home ??= lastLine((await shellRun(shell, target, 'pwd', signal)).stdout)),
      release: () => {
        if (released) return;
        released = true;
        this.#busy(name, -1);
      },
    };
  }

  /** A job lost its connection mid-run: the host is failed until its back-off ends. */
  lost(name: string, reason: string): void {
    const host = this.host(name);
    if (host !== undefined) this.states.failed(name, reason, host.backoff);
  }

  /**
   * Stop a host this daemon is not using, started by a dispatcher that died (reaping): under the
   * host's lifecycle lock, and only if no live dispatcher claims it.
   */
  async stopAbandoned(name: string, signal: AbortSignal): Promise<boolean> {
    const host = this.host(name);
    if (host === undefined || this.active(name) > 0 || this.#bringUps.has(name)) return false;
    const provider = this.#providerOf(host);
    if (provider?.stop === undefined) return false;
    const target = this.#target(name, host);
    return this.#d.claims.exclusive(
      name,
      async () => {
        if (this.active(name) > 0 || (await this.#d.claims.othersUse(name))) return false;
        await provider.stop?.(target, signal);
        await this.#d.claims.clearDead(name);
        return true;
      },
      signal,
    );
  }

  /** Whether this daemon has the host up or coming up. */
  inUse(name: string): boolean {
    const state = this.states.get(name).state;
    return this.active(name) > 0 || state === 'ready' || state === 'busy' || state === 'starting';
  }

  async close(): Promise<void> {
    this.#closing.abort('shutdown');
    for (const timer of this.#idleTimers.values()) clearTimeout(timer);
    const entries = [...this.#entries.values()];
    await Promise.allSettled(
      entries.map((entry) => entry.sweeper?.flush(AbortSignal.timeout(5_000)) ?? Promise.resolve()),
    );
    for (const entry of entries) entry.pool?.close();
    this.#entries.clear();
    this.states.close();
    await Promise.allSettled([...this.#bringUps.values(), ...this.#stops.values()]);
  }

  /** Count a job on the host and bring the host up if needed. */
  async #acquire(name: string, signal: AbortSignal): Promise<{ entry: HostEntry; host: HostConfig }> {
    const host = this.host(name);
    if (host === undefined) throw new BatchdError('UNKNOWN_HOST', `Unknown host "${name}"`, { host: name });
    const entry = this.#entry(name, host);
    this.#busy(name, +1);
    try {
      const stopping = this.#stops.get(name);
      if (stopping !== undefined) await abortable(stopping, signal);
      const state = this.states.get(name).state;
      if ((state !== 'ready' && state !== 'busy') || !entry.up)
        await abortable(this.#bringUp(name, entry), signal);
      return { entry, host };
    } catch (error) {
      this.#busy(name, -1);
      throw error;
    }
  }

  #entry(name: string, host: HostConfig): HostEntry {
    const existing = this.#entries.get(name);
    if (existing !== undefined && existing.config === host) return existing;
    existing?.pool?.retire();
    const provider = this.#providerOf(host) ?? ALWAYS_ON;
    const entry: HostEntry = {
      config: host,
      provider,
      target: undefined,
      pool: undefined,
      sweeper: undefined,
      home: undefined,
      up: false,
    };
    if (provider.shell === undefined) {
      const pool = new SshPool(
        name,
        {
          maxConnections: host.max_connections,
          sessionsPerConnection: host.sessions_per_connection,
          idleTimeoutMs: host.idle_timeout,
        },
        () => this.#connection(entry),
        this.#d.log,
      );
      entry.pool = pool;
      entry.sweeper = new RemoteSweeper(name, (signal) => pool.lease(signal), this.#d.log);
    }
    this.#entries.set(name, entry);
    return entry;
  }

  /** One bring-up per host at a time; every job that needs the host waits for the same one. */
  #bringUp(name: string, entry: HostEntry): Promise<void> {
    let running = this.#bringUps.get(name);
    if (running === undefined) {
      running = this.#doBringUp(name, entry).finally(() => this.#bringUps.delete(name));
      this.#bringUps.set(name, running);
    }
    return running;
  }

  async #doBringUp(name: string, entry: HostEntry): Promise<void> {
    const host = entry.config;
    const signal = this.#closing.signal;
    let started = false;
    try {
      const provider = this.#providerOf(host);
      if (provider === undefined) {
        throw new BatchdError(
          'HOST_UNREACHABLE',
          `host ${name}: controller "${host.controller}" has no provider plugin loaded (etc/controllers/${host.controller}.yaml)`,
          { host: name, controller: host.controller },
        );
      }
      entry.provider = provider;
      const target = this.#target(name, host);
      entry.target = target;
      if (provider.start !== undefined) {
        this.states.transition(name, 'starting', `starting with ${provider.name}`);
        started = true;
        await this.#d.claims.exclusive(
          name,
          async () => {
            await this.#d.claims.claim(name);
            await provider.start?.(target, signal);
          },
          signal,
        );
        await sleep(host.startup_time, signal);
      }
      // A host a provider just started may take a while to answer; an always-on one answers now.
      // A container its provider reports running needs no probe of its own unless commands must
      // run there first: the job's own command is the first (one command less per start).
      const probe = provider.shell === undefined || !started || host.startup_commands_on_host.length > 0;
      if (probe) {
        const patience = started ? host.ready_timeout : 0;
        const runOnHost = await retryUntil(patience, signal, () => this.#reach(name, entry));
        await runStartupCommands(name, host, runOnHost, this.#variables(host), signal);
      } else {
        await runStartupCommands(
          name,
          host,
          () => Promise.resolve({ code: 0, stderr: '' }),
          this.#variables(host),
          signal,
        );
      }
      entry.up = true;
      this.states.ready(name, this.active(name) > 0);
    } catch (error) {
      if (!signal.aborted) this.#failed(name, entry, error);
      throw error;
    }
  }

  /** Reach the host once (its home folder); returns how to run startup commands there. */
  async #reach(name: string, entry: HostEntry): Promise<RunOnHost> {
    const signal = this.#closing.signal;
    const shell = entry.provider.shell;
    if (shell !== undefined) {
      const target = entry.target as ProviderHost;
      const { code, stdout, stderr } = await shellRun(shell, target, 'pwd', signal);
      if (code !== 0)
        throw new BatchdError(
          'HOST_UNREACHABLE',
          `host ${name}: ${entry.provider.name} could not run a command there (exit ${code}): ${stderr.trim().slice(-300)}`,
          { host: name },
        );
      entry.home = lastLine(stdout);
      return (command) => shellRun(shell, target, command, signal);
    }
    const pool = entry.pool as SshPool;
    const lease = await pool.lease(signal);
    try {
      // The last line: a chatty shell start-up file may print before it.
      entry.home = lastLine((await lease.run('pwd')).stdout);
    } finally {
      lease.release();
    }
    return async (command) => {
      const held = await pool.lease(signal);
      try {
        return await held.run(command);
      } finally {
        held.release();
      }
    };
  }

  #providerOf(host: HostConfig): HostProvider | undefined {
    return host.controller === 'local' ? ALWAYS_ON : this.#providers.provider(host.controller);
  }

  /** What the provider is told about the host (its block validated by the plugin). */
  #target(name: string, host: HostConfig): ProviderHost {
    return {
      name,
      id: host.controller_id ?? name,
      controllerId: host.controller_id,
      publicKey: host.public_key === undefined ? undefined : this.#path(host.public_key),
      hostName: host.host_name,
      port: host.port,
      settings: this.#providers.settings(host),
      tags: { ...this.#providers.tags, 'batchd.host': name },
    };
  }

  #failed(name: string, entry: HostEntry, error: unknown): void {
    this.states.failed(name, coerceError(error).message, entry.config.backoff);
  }

  async #connection(entry: HostEntry): Promise<ConnectionTarget> {
    const host = entry.config;
    const target = entry.target ?? this.#target(host.name, host);
    const { address, port } = await locate(entry.provider, target, this.#closing.signal).catch(
      (error: unknown) => {
        throw new BatchdError('HOST_UNREACHABLE', coerceError(error).message, { host: host.name });
      },
    );
    const user = host.user_name ?? userInfo().username;
    const keyFile = host.private_key === undefined ? defaultKeyFile() : this.#path(host.private_key);
    const key = this.#keys.load(keyFile, host.passphrase, host.name);
    const publicKey: PublicKeyAuthMethod = { type: 'publickey', username: user, key };
    const policy =
      host.host_key_fingerprint !== undefined
        ? pinnedPolicy(host.host_key_fingerprint, knownHostsName(address, port))
        : knownHostsPolicy(this.#path(host.known_hosts ?? '~/.ssh/known_hosts'), address, port);
    const keepalive = host.keepalive;
    return {
      where: `${user}@${address}:${port}`,
      keyFile,
      policy,
      config: {
        host: address,
        port,
        username: user,
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
      hostname: host.host_name ?? '',
      controllerId: host.controller_id ?? host.name,
      user: host.user_name ?? '',
      port: String(host.port),
      inputDirectory: host.input_directory ?? '',
      outputDirectory: host.output_directory ?? '',
    };
  }

  /** Jobs (and bring-ups) using a host; a provider-started host idle long enough is stopped. */
  #busy(name: string, by: number): void {
    const count = (this.#active.get(name) ?? 0) + by;
    this.#active.set(name, count);
    this.states.busy(name, count > 0);
    clearTimeout(this.#idleTimers.get(name));
    this.#idleTimers.delete(name);
    const entry = this.#entries.get(name);
    if (count > 0 || entry?.provider.stop === undefined || this.#closing.signal.aborted) return;
    const timer = setTimeout(() => {
      this.#idleTimers.delete(name);
      const stopping = this.#stopIdle(name, entry)
        .catch((error: unknown) =>
          this.#d.log.error({ host: name, err: coerceError(error) }, 'stopping an idle host failed'),
        )
        .finally(() => this.#stops.delete(name));
      this.#stops.set(name, stopping);
    }, entry.config.shutdown_timeout);
    timer.unref();
    this.#idleTimers.set(name, timer);
  }

  async #stopIdle(name: string, entry: HostEntry): Promise<void> {
    const provider = entry.provider;
    const state = this.states.get(name).state;
    if (this.active(name) > 0 || provider.stop === undefined) return;
    if (state !== 'ready' && state !== 'failed') return;
    // A host that failed to come up is stopped too, and stays failed (its back-off holds).
    const failed = state === 'failed';
    const idle = `idle for ${Math.round(entry.config.shutdown_timeout / 1000)} s`;
    if (!failed) this.states.transition(name, 'stopping', idle);
    await entry.sweeper?.flush();
    entry.pool?.close();
    this.#entries.delete(name);
    const target = entry.target ?? this.#target(name, entry.config);
    const signal = this.#closing.signal;
    try {
      const stopped = await this.#d.claims.exclusive(
        name,
        async () => {
          await this.#d.claims.unclaim(name);
          if (await this.#d.claims.othersUse(name)) return false;
          await provider.stop?.(target, signal);
          await this.#d.claims.clearDead(name);
          return true;
        },
        signal,
      );
      if (!failed)
        this.states.transition(
          name,
          'stopped',
          stopped ? idle : `${idle} here; another dispatcher still uses it`,
        );
    } catch (error) {
      if (!failed) this.#failed(name, entry, error);
      else
        this.#d.log.warn(
          { host: name, err: coerceError(error) },
          'stopping a host that failed to come up failed',
        );
    }
  }

  #configChanged(file: string): void {
    if (path.basename(path.dirname(file)) !== HOSTS_FOLDER) return;
    const name = path.basename(file).replace(/\.(ya?ml|json)$/, '');
    const entry = this.#entries.get(name);
    const now = this.host(name);
    if (entry === undefined || entry.config === now) return;
    entry.pool?.retire();
    this.#entries.delete(name);
    this.states.forget(name);
    if (now === undefined) for (const kind of ['ssh', 'shell']) this.#executors.delete(`${kind}:${name}`);
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) || '/';
}

/** ssh2's algorithm names for the key types on record (RSA keys sign with SHA-2 first). */
function hostKeyAlgorithms(types: string[]): ServerHostKeyAlgorithm[] {
  return types.flatMap((t) =>
    t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t],
  ) as ServerHostKeyAlgorithm[];
}
