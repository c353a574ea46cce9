import { z } from 'zod';

import { DEFAULTS } from '../config/defaults.ts';
import { durationMs } from '../config/duration.ts';
import { identifier, name } from '../config/schema.ts';
import { BUILTIN_PLUGINS } from '../config/builtin-drivers.ts';

/** `SHA256:` and unpadded base64 of the key's SHA-256, as `ssh-keygen -l` prints it. */
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

const fingerprint = z
  .string()
  .regex(
    FINGERPRINT,
    'Expected a fingerprint such as SHA256:… (43 characters), as `ssh-keygen -lf KEY.pub` prints it',
  );

const commandList = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v]));

const hostShape = {
  name,
  title: z.string().optional(),
  /**
   * The SSH address (a provider may locate the host elsewhere at run time). Not needed for a host
   * a provider reaches by its own means (Docker exec) or locates itself.
   */
  host_name: z
    .string()
    .regex(/^[^\s/]+$/, 'Expected a host name or address without spaces')
    .optional(),
  port: z.int().min(1).max(65535).default(DEFAULTS.host.port),
  /** The SSH login; default: the daemon's own user name. */
  user_name: z
    .string()
    .regex(/^[^\s@:]+$/, 'Expected a user name without spaces, "@" or ":"')
    .optional(),
  /** Paths are relative to the config folder; `~/` is the daemon user's home. */
  private_key: z.string().min(1).optional(),
  public_key: z.string().min(1).optional(),
  passphrase: z.string().default(DEFAULTS.host.passphrase),
  /** Host-key verification: a known_hosts file (default ~/.ssh/known_hosts) or pinned fingerprints. */
  known_hosts: z.string().min(1).optional(),
  host_key_fingerprint: z
    .union([fingerprint, z.array(fingerprint).min(1)])
    .transform((v) => (Array.isArray(v) ? v : [v]))
    .optional(),
  /** Jobs run on this host at once by this daemon; unset: no limit of its own. */
  max_jobs: z.int().min(1).nullable().optional(),
  /** Channels per connection, one of them SFTP's: at most the server's MaxSessions (OpenSSH: 10). */
  sessions_per_connection: z.int().min(2).max(100).default(DEFAULTS.host.sessions_per_connection),
  max_connections: z.int().min(1).max(64).default(DEFAULTS.host.max_connections),
  /**
   * The Perl that runs batchd's job launcher on the host (one per connection, every job a request
   * on its channel); `false`: each job runs under a shell wrapper in a channel of its own. A host
   * where it cannot start falls back to the wrapper by itself.
   */
  perl: z.union([z.string().min(1), z.literal(false)]).default(DEFAULTS.host.perl),
  connect_timeout: durationMs.prefault(DEFAULTS.host.connect_timeout),
  /** SSH keepalive interval; a connection that misses three is dropped. 0 turns it off. */
  keepalive: durationMs.prefault(DEFAULTS.host.keepalive),
  /** An unused connection is closed after this long. */
  idle_timeout: durationMs.prefault(DEFAULTS.host.idle_timeout),
  /** A host that cannot be reached is left alone this long, doubling per failure up to `max`. */
  backoff: z
    .object({
      initial: durationMs.prefault(DEFAULTS.host.backoff.initial),
      max: durationMs.prefault(DEFAULTS.host.backoff.max),
    })
    .strict()
    .prefault({}),
  /** Each attempt runs in `<work_directory>/<job id>.<attempt>/` on the host, removed afterwards. */
  work_directory: z.string().min(1).default(DEFAULTS.host.work_directory),
  /** Where InputFile parameters are uploaded; default: the job's folder on the host. */
  input_directory: z.string().min(1).optional(),
  /** Where OutputFile parameters point on the host; default: the job's folder on the host. */
  output_directory: z.string().min(1).optional(),
  /** Where multi-line scripts are uploaded; default: the job's folder on the host. */
  scripts_directory: z.string().min(1).optional(),
  /** Run each time the host comes up (first contact, or back from down): here, then on the host. */
  startup_commands_on_dispatcher: commandList.default([]),
  startup_commands_on_host: commandList.default([]),
  variables: z
    .record(identifier, z.union([z.string(), z.number(), z.boolean()]).transform(String))
    .default({}),
  /** A controllers/<name>.yaml (a provider plugin) that starts and stops the host; `local`: always on. */
  controller: name.default(DEFAULTS.host.controller),
  controller_id: z.string().min(1).optional(),
  /** After a provider started the host: wait this long before the first connection. */
  startup_time: durationMs.prefault(DEFAULTS.host.startup_time),
  /** After that, how long to keep trying to reach a provider-started host before it counts as failed. */
  ready_timeout: durationMs.prefault(DEFAULTS.host.ready_timeout),
  /** A provider-started host idle this long is stopped. */
  shutdown_timeout: durationMs.prefault(DEFAULTS.host.shutdown_timeout),
};

/** Besides the controller's name, a host's provider block may be named after a built-in driver. */
const DRIVER_BLOCKS = new Set(Object.keys(BUILTIN_PLUGINS));

const KNOWN_FIELDS = new Set(Object.keys(hostShape));

/**
 * `etc/hosts/<name>.yaml`: batchd's fields plus host-key verification and connection limits. Any
 * other field must be the block of settings for the host's controller (batchd's `linode:` block).
 */
export const hostSchema = z.looseObject(hostShape).superRefine((host, ctx) => {
  for (const [key, value] of Object.entries(host)) {
    if (KNOWN_FIELDS.has(key)) continue;
    // The controller's driver is only known once its file is read: a driver's name is taken as a block
    // for any host that has a controller (Controllers.settings picks the right one).
    if (key !== host.controller && (host.controller === 'local' || !DRIVER_BLOCKS.has(key)))
      ctx.addIssue({ code: 'custom', path: [key], message: `Unknown field "${key}"` });
    else if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: `Expected the settings of controller "${key}" as a mapping`,
      });
    }
  }
  if (host.known_hosts !== undefined && host.host_key_fingerprint !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['host_key_fingerprint'],
      message: 'Give either known_hosts or host_key_fingerprint, not both',
    });
  }
  if (host.backoff.max < host.backoff.initial) {
    ctx.addIssue({
      code: 'custom',
      path: ['backoff', 'max'],
      message: 'Expected backoff.max ≥ backoff.initial',
    });
  }
});
export type HostConfig = z.output<typeof hostSchema>;
