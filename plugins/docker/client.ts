import Docker from 'dockerode';

import { BatchdError } from '../../daemon/plugins/api.ts';
import type { DockerConfig } from './config.ts';

/**
 * The engine the controller file names: `unix_socket`, else `base_url`, else what docker-modem
 * reads from the environment (`DOCKER_HOST`, with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`), else
 * /var/run/docker.sock.
 */
export function dockerClient(config: DockerConfig): Docker {
  if (config.unix_socket !== undefined) return new Docker({ socketPath: config.unix_socket });
  if (config.base_url !== undefined) {
    const url = new URL(config.base_url);
    const protocol = url.protocol === 'https:' ? 'https' : 'http';
    return new Docker({
      protocol,
      host: url.hostname,
      port: url.port === '' ? (protocol === 'https' ? 443 : 80) : Number(url.port),
    });
  }
  return new Docker();
}

/** What the engine answered: its message without the HTTP noise, or the transport's error. */
export function engineAnswer(error: unknown): string {
  const e = error as {
    statusCode?: number;
    json?: { message?: unknown } | null;
    reason?: string;
    message?: string;
  };
  if (typeof e.json?.message === 'string') return e.json.message;
  if (e.statusCode !== undefined) return `${e.reason ?? 'error'} (HTTP ${e.statusCode})`;
  return e.message ?? String(error);
}

export function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number } | null)?.statusCode;
}

/** A provider failure (for `host`, when it concerns one): what was tried, and what the engine said. */
export function providerFailed(
  controller: string,
  host: string | undefined,
  tried: string,
  error: unknown,
): BatchdError {
  const forHost = host === undefined ? '' : ` for host ${host}`;
  return new BatchdError(
    'PROVIDER_FAILED',
    `docker (controller ${controller}): ${tried}${forHost} failed: ${engineAnswer(error)}`,
    { host, controller },
    { cause: error },
  );
}
