/**
 * Every setting's value when the configuration leaves it out: the one place defaults live. The
 * schemas (`schema.ts`, `manager.ts`, `../hosts/schema.ts`) take theirs from here, so what a user
 * gets by writing nothing is read in one file. Values are in the configuration's own units
 * (durations in seconds, as a user writes them). `satisfies` cannot sit here (the schemas' types
 * are built from these values); test/config/defaults.test.ts checks each block against the input
 * type of the part of the configuration it fills in, so a renamed or retyped setting fails to compile.
 */
export const DEFAULTS = {
  /** batchd.yaml, top level. */
  daemon: {
    spool: 'spool',
    default_queue: 'default',
  },
  /** batchd.yaml `manager:` (the HTTP API). */
  manager: {
    enabled: true,
    host: '127.0.0.1',
    port: 9681,
    allow_unauthenticated_remote: false,
    max_body_bytes: 1_048_576,
    token_ttl: 3600,
    max_token_ttl: 30 * 86_400,
    auth: 'disable',
    cors_credentials: false,
  },
  /** batchd.yaml `manager.auth:` when it is a block. */
  auth: {
    basic: true,
    token: true,
    proxy_header: 'X-Auth-User',
    failed_logins: { per_user: 10, per_address: 50, window: 60 },
  },
  /** batchd.yaml `dispatcher:`. */
  dispatcher: {
    workers: 2,
    poll_timeout: 5,
    stable_time: 0.5,
    grace_time: 60,
    kill_grace: 5,
    lock_stale: 20,
    reap_interval: 60,
    max_interruptions: 3,
    containment: 'auto',
  },
  /** batchd.yaml `logging:`. */
  logging: {
    target: 'stderr',
    level: 'info',
    format: 'auto',
  },
  /** batchd.yaml `storage:`. */
  storage: {
    done_jobs: 30,
    max_job_file_size: 1_048_576,
    fsync: false,
    journal: true,
    journal_checkpoint: 1,
    max_task_jobs: 100_000,
    mode: 0o750,
  },
  /** A hook's settings (batchd.yaml, queue.yaml). */
  hook: {
    timeout: 600,
  },
  /** queue.yaml. */
  queue: {
    enabled: true,
    schedule_name: 'anytime',
    priority: 0,
  },
  /** A job type (etc/jobtypes/*.yaml). */
  jobType: {
    param_type: 'String',
    syntax: 'Shell',
    on_fail: 'continue',
    retry: { when: 'now', count: 1 },
  },
  /** A host (etc/hosts/*.yaml). */
  host: {
    port: 22,
    passphrase: '',
    sessions_per_connection: 8,
    max_connections: 4,
    perl: 'perl',
    connect_timeout: 10,
    keepalive: 10,
    idle_timeout: 60,
    backoff: { initial: 5, max: 300 },
    work_directory: '.batchd',
    controller: 'local',
    startup_time: 5,
    ready_timeout: 120,
    shutdown_timeout: 300,
  },
  /** A controller (etc/controllers/*.yaml). */
  controller: {
    enable_start_stop: true,
  },
} as const;

/**
 * Fixed values of the daemon's own housekeeping: not settings, but kept beside the defaults so that
 * a number used in two places is one number.
 */
export const HOUSEKEEPING = {
  /** How often finished jobs past `storage.done_jobs` are looked for. */
  retentionEveryMs: 3_600_000,
  /** Staging left by another process (a dispatcher on another machine) is taken as abandoned after this. */
  foreignStagingAfterMs: 3_600_000,
  /** Jobs in one page of the API's job list when the caller names no limit. */
  pageSize: 100,
} as const;
