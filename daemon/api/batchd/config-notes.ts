import type { DaemonConfig } from '../../config/schema.ts';
import type { Logger } from '../../log.ts';

/** batchd.yaml fields of batchd that batchd-ts accepts: what each did there, and what to use here. */
const NOTES: { field: string; present: (c: DaemonConfig) => boolean; note: string }[] = [
  {
    field: 'daemon',
    present: (c) => top(c, 'daemon'),
    note: "batchd's manager/dispatcher split; batchd-ts runs both in one process (manager.enabled: false runs a dispatcher only)",
  },
  {
    field: 'driver, connection_string, connection_pool_size',
    present: (c) => top(c, 'driver') || top(c, 'connection_string') || top(c, 'connection_pool_size'),
    note: "batchd's database; here the spool folder (spool:) holds queues and jobs, and the database is not read",
  },
  {
    field: 'metrics',
    present: (c) => top(c, 'metrics'),
    note: "batchd's EKG metric settings; metrics are always on: Prometheus at /metrics, batchd's names at /batchd/monitor",
  },
  {
    field: 'default_template_syntax, default_scripts_directory',
    present: (c) => top(c, 'default_template_syntax') || top(c, 'default_scripts_directory'),
    note: 'templates use Shell syntax only, and scripts are written into the job folder',
  },
  {
    field: 'manager.auth.static_salt',
    present: (c) => c.manager.auth !== 'disable' && c.manager.auth.static_salt !== undefined,
    note: "batchd's salt for its SHA3 password hashes; ignored: passwords are scrypt hashes with a salt each, so users are created anew (batchd-admin)",
  },
  {
    field: 'manager.auth.header',
    present: (c) => c.manager.auth !== 'disable' && c.manager.auth.header === true,
    note: 'batchd trusted X-Auth-User from anyone; here it is manager.auth.proxy, trusted from loopback only unless proxy.trusted lists other addresses',
  },
  {
    field: 'manager.web_client.path',
    present: (c) => c.manager.web_client?.path !== undefined,
    note: "batchd's web client: served as batchd did, at /batch.html and /monitor.html (/ is the daemon's own page)",
  },
  {
    field: 'manager.web_client.allowed_origin',
    present: (c) => c.manager.web_client?.allowed_origin !== undefined,
    note: 'taken as the CORS origin (manager.cors.origins) when manager.cors is not set',
  },
  {
    field: 'logging.filter',
    present: (c) => c.logging.filter !== undefined,
    note: "batchd's per-module log levels; ignored: logging.level applies to every module",
  },
];

function top(config: DaemonConfig, key: string): boolean {
  return (config as Record<string, unknown>)[key] !== undefined;
}

/** One warning per batchd-only field in batchd.yaml, saying what it did and what to use instead. */
export function batchdConfigNotes(config: DaemonConfig): { field: string; note: string }[] {
  return NOTES.filter((n) => n.present(config)).map(({ field, note }) => ({ field, note }));
}

export function logBatchdConfigNotes(config: DaemonConfig, log: Logger): void {
  for (const { field, note } of batchdConfigNotes(config))
    log.warn({ field }, `batchd.yaml: ${field}: ${note}`);
}
