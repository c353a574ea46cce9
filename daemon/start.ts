import { Daemon, type DaemonOptions } from './daemon.ts';
import type { FrontEndStarter } from './service/port.ts';

/**
 * The HTTP API as the daemon's front end, when batchd.yaml's `manager.enabled`. Its modules are
 * much of the start-up time (a restart after a crash included): they are only loaded to serve.
 */
export const httpApi: FrontEndStarter = async (daemon) => {
  if (!daemon.config.daemon.manager.enabled) return undefined;
  const serve = await import('./api/serve.ts');
  // Refuses a forbidden listen address (or unusable TLS files) before anything starts.
  const listen = serve.planListen(daemon.config);
  return () => serve.startApi(daemon, listen);
};

/**
 * Start a daemon with its HTTP API: the one place that knows both (the daemon does not know the
 * API, and the API sees the daemon only through service/port.ts).
 */
export function startBatchd(options: DaemonOptions): Promise<Daemon> {
  return Daemon.start(options, httpApi);
}
