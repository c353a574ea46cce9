import type { Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';

import { createAdaptorServer } from '@hono/node-server';

import type { ConfigStore } from '../config/store.ts';
import type { DaemonPort } from '../service/port.ts';
import { BatchdError, coerceError, errnoCode } from '../errors.ts';
import { type Api, createApi } from './app.ts';

export interface ListenPlan {
  host: string;
  port: number;
  tls?: { cert: Buffer; key: Buffer } | undefined;
}

export interface ApiServer {
  api: Api;
  /** The bound address (port 0 in the config becomes the port the system chose). */
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Check where the API may listen before anything starts. With authentication disabled everyone is
 * a superuser, so only loopback is allowed unless `allow_unauthenticated_remote` says it is meant.
 */
export function planListen(config: ConfigStore): ListenPlan {
  const m = config.daemon.manager;
  if (m.auth === 'disable' && !isLoopback(m.host) && !m.allow_unauthenticated_remote) {
    throw new BatchdError(
      'CONFIG_INVALID',
      `manager.host is ${m.host}, but authentication is disabled (manager.auth): anyone who reaches the port could run commands. ` +
        'Enable authentication, listen on 127.0.0.1, or set manager.allow_unauthenticated_remote: true if that is really meant.',
      { field: 'manager.host' },
    );
  }
  if (m.tls === undefined) return { host: m.host, port: m.port };
  const read = (field: 'cert' | 'key'): Buffer => {
    const file = config.resolve(m.tls?.[field] ?? '');
    try {
      return readFileSync(file);
    } catch (error) {
      throw new BatchdError(
        'CONFIG_INVALID',
        `manager.tls.${field}: cannot read ${file} (${errnoCode(error) ?? coerceError(error).message})`,
        { field: `manager.tls.${field}`, file },
      );
    }
  };
  const tls = { cert: read('cert'), key: read('key') };
  try {
    createSecureContext(tls); // a bad PEM fails here, before the daemon starts, not in the middle of it
  } catch (error) {
    throw new BatchdError(
      'CONFIG_INVALID',
      `manager.tls: the certificate or key is not usable: ${coerceError(error).message}`,
      { field: 'manager.tls' },
    );
  }
  return { host: m.host, port: m.port, tls };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const mapped = /^::ffff:(.+)$/i.exec(host)?.[1] ?? host;
  if (isIP(mapped) === 4) return mapped.startsWith('127.');
  return mapped === '::1';
}

/**
 * Serve the API. A port already in use is logged and the daemon runs on without the API: several
 * dispatchers may share one spool, and only one of them can have the port.
 */
export async function startApi(daemon: DaemonPort, plan: ListenPlan): Promise<ApiServer | undefined> {
  const api = createApi(daemon);
  const server = createAdaptorServer({
    fetch: api.app.fetch,
    ...(plan.tls === undefined
      ? {}
      : { createServer: createHttpsServer, serverOptions: { cert: plan.tls.cert, key: plan.tls.key } }),
  }) as Server;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(plan.port, plan.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    api.close();
    if (errnoCode(error) === 'EADDRINUSE' || errnoCode(error) === 'EADDRNOTAVAIL') {
      daemon.log.error(
        { host: plan.host, port: plan.port },
        `HTTP API not started: ${plan.host}:${plan.port} is ${errnoCode(error) === 'EADDRINUSE' ? 'in use' : 'not an address of this machine'}; the daemon runs without it`,
      );
      return undefined;
    }
    throw error;
  }
  server.on('error', (error) => daemon.log.error({ err: coerceError(error) }, 'HTTP server error'));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : plan.port;
  const host = plan.host.includes(':') ? `[${plan.host}]` : plan.host;
  const url = `${plan.tls === undefined ? 'http' : 'https'}://${host}:${port}`;
  daemon.log.info({ url, auth: api.ctx.auth.methods() }, `HTTP API listening on ${url}`);
  return {
    api,
    url,
    port,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Event and log streams never end by themselves.
      server.closeAllConnections();
      await closed;
      api.close();
    },
  };
}
