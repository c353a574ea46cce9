import { type ClientChannel, Client, type ConnectConfig } from 'ssh2';

import { BatchdError, coerceError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { keepExit, onChannelExit } from './channel-exit.ts';
import type { HostKeyPolicy, HostKeyVerdict } from './known-hosts.ts';
import { RemoteLauncher } from './remote-launcher.ts';
import { Sftp } from './sftp.ts';

export interface PoolSettings {
  maxConnections: number;
  /** Channels open at once per connection: one per lease, one for SFTP, one for the launcher. */
  sessionsPerConnection: number;
  idleTimeoutMs: number;
}

/** Everything needed to open one connection, worked out when it is opened (keys, address). */
export interface ConnectionTarget {
  config: ConnectConfig;
  policy: HostKeyPolicy;
  /** `user@address:port`, for messages. */
  where: string;
  /** The private key file, for messages. */
  keyFile: string;
}

class Connection {
  readonly client = new Client();
  state: 'connecting' | 'ready' | 'closed' = 'connecting';
  leases = 0;
  ready!: Promise<void>;
  closedReason: string | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  /** One SFTP session per connection, shared by its leases (SFTP serves requests concurrently). */
  sftp: Promise<Sftp> | undefined;
  /** One job launcher per connection, started by the first job that asks for it. */
  launcher: Promise<RemoteLauncher> | undefined;
  /** Why the launcher cannot run here (no perl): its jobs run under the shell wrapper instead. */
  launcherFailure: string | undefined;
}

/**
 * Permission to hold one channel on one connection for as long as a job needs it: its command, or
 * a short clean-up command. File transfers go through the connection's shared SFTP session, which
 * has a channel of its own; so a job never waits for a second channel it cannot get.
 */
export class Lease {
  readonly #connection: Connection;
  readonly #pool: SshPool;
  #released = false;

  constructor(connection: Connection, pool: SshPool) {
    this.#connection = connection;
    this.#pool = pool;
  }

  get client(): Client {
    return this.#connection.client;
  }

  /** Why the connection went away, once it has. */
  get lost(): string | undefined {
    return this.#connection.state === 'closed'
      ? (this.#connection.closedReason ?? 'the connection closed')
      : undefined;
  }

  /** A channel running `command`; its exit status is kept from the start (see `onChannelExit`). */
  exec(command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, channel) => {
        if (error !== undefined && error !== null) return reject(this.#refused(error));
        keepExit(channel);
        resolve(channel);
      });
    });
  }

  /** The connection's SFTP session, opened on first use (and again if it closed). */
  sftp(): Promise<Sftp> {
    const connection = this.#connection;
    if (connection.sftp !== undefined) return connection.sftp;
    const opening = new Promise<Sftp>((resolve, reject) => {
      this.client.sftp((error, channel) => {
        if (error !== undefined && error !== null) return reject(this.#refused(error));
        channel.once('close', () => {
          if (connection.sftp === opening) connection.sftp = undefined;
        });
        resolve(new Sftp(channel));
      });
    });
    connection.sftp = opening;
    opening.catch(() => {
      if (connection.sftp === opening) connection.sftp = undefined;
    });
    return opening;
  }

  /**
   * The connection's job launcher (remote-launcher.ts), started on first use and again if it
   * stopped; undefined where it cannot start (no perl there): the caller runs the job another way.
   * Rejects only when no channel can be had (the connection is lost, or the server refuses).
   * `command` starts it (executors/remote-command.ts' launcherCommand).
   */
  async launcher(command: string, timeoutMs: number): Promise<RemoteLauncher | undefined> {
    const connection = this.#connection;
    for (let attempt = 0; attempt < 2 && connection.launcherFailure === undefined; attempt++) {
      let starting = connection.launcher;
      if (starting === undefined) {
        const channel = await this.exec(command);
        starting = RemoteLauncher.start(channel, this.#pool.host, timeoutMs);
        connection.launcher = starting;
      }
      try {
        const launcher = await starting;
        if (launcher.alive) return launcher;
      } catch (error) {
        if (this.lost !== undefined) throw this.#refused(coerceError(error));
        if (connection.launcher === starting) {
          connection.launcherFailure = coerceError(error).message;
          this.#pool.launcherUnavailable(connection.launcherFailure);
        }
      }
      if (connection.launcher === starting) connection.launcher = undefined;
    }
    return undefined;
  }

  /** The connection's launcher if one is running now. */
  async runningLauncher(): Promise<RemoteLauncher | undefined> {
    const launcher = await this.#connection.launcher?.catch(() => undefined);
    return launcher?.alive === true ? launcher : undefined;
  }

  #refused(error: Error): BatchdError {
    const lost = this.lost;
    if (lost !== undefined) {
      return new BatchdError('HOST_LOST', `host ${this.#pool.host}: the connection was lost: ${lost}`, {
        host: this.#pool.host,
      });
    }
    return new BatchdError(
      'HOST_UNREACHABLE',
      `host ${this.#pool.host}: the server refused a new channel (${error.message}); ` +
        "is sessions_per_connection above the server's MaxSessions?",
      { host: this.#pool.host },
      { cause: error },
    );
  }

  /** Run a short command and collect its output (startup commands, `pwd`, clean-up). */
  async run(command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const channel = await this.exec(command);
    return new Promise((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      channel.on('data', (d: Buffer) => (stdout += d.toString()));
      channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      onChannelExit(channel, (exit) => (code = exit.code));
      channel.on('error', reject);
      channel.on('close', () => {
        // A connection that drops closes its channels a moment before it is marked closed itself.
        setImmediate(() => {
          const lost = this.lost;
          if (lost !== undefined && code === null)
            reject(new BatchdError('HOST_LOST', `the connection was lost: ${lost}`));
          else resolve({ code, stdout, stderr });
        });
      });
    });
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#pool.release(this.#connection);
  }
}

interface Waiter {
  wake: () => void;
}

/**
 * The connections to one host: reused across jobs, opened on demand up to `maxConnections`, each
 * carrying at most `sessionsPerConnection` leases; closed when idle. A lease that finds no room
 * waits (asynchronously: nothing else waits with it).
 */
export class SshPool {
  readonly host: string;
  readonly #settings: PoolSettings;
  readonly #target: () => Promise<ConnectionTarget>;
  readonly #log: Logger;
  readonly #connections = new Set<Connection>();
  readonly #waiters: Waiter[] = [];
  #retired = false;

  constructor(host: string, settings: PoolSettings, target: () => Promise<ConnectionTarget>, log: Logger) {
    this.host = host;
    this.#settings = settings;
    this.#target = target;
    this.#log = log;
  }

  /** Resolves once a connection with room is ready; rejects with a BatchdError naming the cause. */
  async lease(signal: AbortSignal): Promise<Lease> {
    for (;;) {
      signal.throwIfAborted();
      if (this.#retired)
        throw new BatchdError('HOST_UNREACHABLE', `host ${this.host}: its configuration changed; try again`);
      const connection = this.#pick();
      if (connection !== undefined) {
        connection.leases += 1;
        clearTimeout(connection.idleTimer);
        try {
          await abortable(connection.ready, signal);
        } catch (error) {
          this.release(connection);
          throw error;
        }
        if (connection.state === 'ready') return new Lease(connection, this);
        this.release(connection);
        continue;
      }
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          wake: () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          },
        };
        const onAbort = (): void => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(signal.reason as Error);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        this.#waiters.push(waiter);
      });
    }
  }

  release(connection: Connection): void {
    connection.leases -= 1;
    if (connection.leases === 0 && connection.state === 'ready') {
      if (this.#retired) connection.client.end();
      else {
        connection.idleTimer = setTimeout(() => connection.client.end(), this.#settings.idleTimeoutMs);
        connection.idleTimer.unref();
      }
    }
    this.#waiters.shift()?.wake();
  }

  launcherUnavailable(reason: string): void {
    this.#log.warn(
      { host: this.host, reason },
      "the host cannot run batchd's job launcher; its jobs run under a shell wrapper, one channel each",
    );
  }

  /** No new leases; connections close as their jobs end. */
  retire(): void {
    this.#retired = true;
    for (const connection of this.#connections) if (connection.leases === 0) connection.client.end();
    for (const waiter of this.#waiters.splice(0)) waiter.wake();
  }

  close(): void {
    this.#retired = true;
    for (const connection of this.#connections) {
      clearTimeout(connection.idleTimer);
      connection.client.end();
    }
    for (const waiter of this.#waiters.splice(0)) waiter.wake();
  }

  /**
   * The least busy connection while it is under half full; past that a new connection while the
   * limit allows (each connection is one sshd process on the host, so load spreads); then any
   * connection with room.
   */
  #pick(): Connection | undefined {
    let least: Connection | undefined;
    for (const connection of this.#connections) {
      if (connection.state !== 'closed' && (least === undefined || connection.leases < least.leases))
        least = connection;
    }
    const { maxConnections } = this.#settings;
    // One channel of each connection is its SFTP session's, one its job launcher's.
    const room = Math.max(this.#settings.sessionsPerConnection - 2, 1);
    if (least !== undefined && least.leases < Math.ceil(room / 2)) return least;
    if (this.#connections.size < maxConnections) return this.#open();
    return least !== undefined && least.leases < room ? least : undefined;
  }

  #open(): Connection {
    const connection = new Connection();
    this.#connections.add(connection);
    connection.ready = this.#connect(connection);
    // Each lease awaits `ready` itself; this only keeps a failure nobody awaits from going unhandled.
    connection.ready.catch(() => undefined);
    return connection;
  }

  async #connect(connection: Connection): Promise<void> {
    let target: ConnectionTarget;
    try {
      target = await this.#target();
    } catch (error) {
      this.#drop(connection, (error as Error).message);
      throw error;
    }
    const { client } = connection;
    await new Promise<void>((resolve, reject) => {
      let verdict: HostKeyVerdict | undefined;
      let failure: Error | undefined;
      client.on('ready', () => {
        connection.state = 'ready';
        client.setNoDelay(true);
        this.#log.debug(
          { host: this.host, where: target.where, connections: this.#connections.size },
          'ssh connection ready',
        );
        resolve();
      });
      client.on('error', (error: Error & { level?: string; code?: string }) => {
        if (connection.state === 'connecting') failure ??= this.#explain(error, verdict, target);
        else connection.closedReason ??= error.message;
      });
      client.on('close', () => {
        const wasConnecting = connection.state === 'connecting';
        this.#drop(connection, connection.closedReason ?? 'the server closed the connection');
        if (wasConnecting) {
          reject(
            failure ??
              new BatchdError(
                'HOST_UNREACHABLE',
                `host ${this.host} (${target.where}): the connection closed during the handshake`,
                { host: this.host },
              ),
          );
        }
      });
      try {
        client.connect({
          ...target.config,
          hostVerifier: (key: Buffer) => {
            verdict = target.policy.check(key);
            return verdict.ok;
          },
        });
      } catch (error) {
        // ssh2 checks its settings before it connects.
        const message = coerceError(error).message;
        this.#drop(connection, message);
        reject(
          new BatchdError('HOST_UNREACHABLE', `host ${this.host} (${target.where}): ${message}`, {
            host: this.host,
          }),
        );
      }
    });
  }

  #drop(connection: Connection, reason: string): void {
    clearTimeout(connection.idleTimer);
    connection.closedReason ??= reason;
    connection.state = 'closed';
    if (this.#connections.delete(connection)) {
      for (const waiter of this.#waiters.splice(0)) waiter.wake();
    }
  }

  #explain(
    error: Error & { level?: string; code?: string },
    verdict: HostKeyVerdict | undefined,
    target: ConnectionTarget,
  ): BatchdError {
    const context = { host: this.host, where: target.where };
    const prefix = `host ${this.host} (${target.where})`;
    if (verdict !== undefined && !verdict.ok) {
      return new BatchdError(
        'HOST_KEY_REJECTED',
        `${prefix}: ${verdict.message}`,
        { ...context, check: verdict.reason },
        { cause: error },
      );
    }
    if (error.level === 'client-authentication') {
      return new BatchdError(
        'HOST_AUTH_FAILED',
        `${prefix}: the server refused the key ${target.keyFile} for user ${String(target.config.username)}; ` +
          "add its .pub to that user's authorized_keys on the host, or fix private_key",
        context,
        { cause: error },
      );
    }
    if (error.level === 'client-timeout') {
      return new BatchdError(
        'HOST_UNREACHABLE',
        `${prefix}: no SSH handshake within ${Math.round((target.config.readyTimeout ?? 0) / 1000)} s`,
        context,
        { cause: error },
      );
    }
    if (error.level === 'client-socket' || error.code !== undefined) {
      return new BatchdError('HOST_UNREACHABLE', `${prefix}: cannot connect: ${error.message}`, context, {
        cause: error,
      });
    }
    return new BatchdError(
      'HOST_UNREACHABLE',
      `${prefix}: SSH connection failed: ${error.message}`,
      context,
      { cause: error },
    );
  }
}

/** Settle with `promise`, or reject with the signal's reason as soon as it aborts. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(coerceError(error));
      },
    );
  });
}
