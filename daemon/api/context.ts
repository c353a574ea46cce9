import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';

import type { Authenticator } from '../auth/authenticate.ts';
import type { Principal } from '../auth/permissions.ts';
import type { UserStore } from '../auth/store.ts';
import type { ManagerSettings } from '../config/manager.ts';
import type { DaemonPort } from '../service/port.ts';
import type { ApiMetrics } from './metrics.ts';

/** Hono's environment for the API: node-server's bindings (absent under `app.request()`). */
export interface ApiEnv {
  Bindings: Partial<HttpBindings>;
  Variables: { principal: Principal | undefined };
}

export type ApiCtx = Context<ApiEnv>;

/** What every route handler may use. */
export interface ApiContext {
  daemon: DaemonPort;
  settings: ManagerSettings;
  users: UserStore;
  auth: Authenticator;
  /** Job counts per queue (the core's, kept current by its events). */
  counts: DaemonPort['reads']['counts'];
  metrics: ApiMetrics;
  /** Last reported state per host (host:state events). */
  hostStates: Map<string, string>;
}

/** The peer's address, when served by node-server. */
export function remoteAddress(c: ApiCtx): string | undefined {
  return c.env?.incoming?.socket?.remoteAddress ?? undefined;
}
