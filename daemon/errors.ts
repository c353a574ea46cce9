/**
 * Every error batchd raises on purpose carries a stable `code` and the context a reader needs
 * (file, line, field, jobId, from, to). One place maps codes to HTTP statuses (api/), so the
 * code set is closed here.
 */
export const ERROR_CODES = [
  'CONFIG_INVALID',
  'YAML_SYNTAX',
  'JOB_INVALID',
  'DROP_NOT_REGULAR',
  'DROP_TOO_LARGE',
  'DROP_BINARY',
  'DROP_BAD_NAME',
  'UNKNOWN_TYPE',
  'UNKNOWN_QUEUE',
  'UNKNOWN_HOST',
  'UNKNOWN_JOB',
  'PARAM_INVALID',
  'TRANSITION_ILLEGAL',
  'JOB_GONE',
  'JOB_LOCKED',
  /** A running job whose host cannot freeze it (no setsid there, an executor without pause). */
  'PAUSE_UNSUPPORTED',
  'NAME_INVALID',
  'REQUEST_INVALID',
  'SPAWN_FAILED',
  'DISK_FULL',
  'NOT_FOUND',
  'CONFLICT',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'TOO_LARGE',
  /** Too many failed logins: the context's `retryAfter` says in how many seconds to try again. */
  'RATE_LIMITED',
  /** The daemon is stopping: it answers reads, not writes; the context's `retryAfter` is in seconds. */
  'STOPPING',
  'INTERNAL',
  // The HTTP API's (daemon/api/errors.ts maps every code to a status).
  'BAD_JSON',
  'ENTITY_INVALID',
  'UNKNOWN_SCHEDULE',
  'UNKNOWN_USER',
  'UNKNOWN_TASK',
  'ALREADY_EXISTS',
  'NOT_EMPTY',
  // Remote hosts (daemon/hosts/): recorded on the jobs they fail.
  'HOST_UNREACHABLE',
  'HOST_KEY_REJECTED',
  'HOST_AUTH_FAILED',
  'HOST_LOST',
  'HOST_STARTUP_FAILED',
  'TRANSFER_FAILED',
  // Host-provider and hook plugins (daemon/plugins/).
  'PROVIDER_FAILED',
  'PLUGIN_INVALID',
  'HOOK_FAILED',
  // The client library's (daemon/client/): no answer from the daemon, or one it cannot read.
  'SERVER_UNREACHABLE',
  'PROTOCOL_MISMATCH',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorContext {
  file?: string;
  line?: number;
  field?: string;
  jobId?: string;
  queue?: string;
  from?: string;
  to?: string;
  [key: string]: unknown;
}

/** One problem found in an input, as shown to users in `rejected/*.error.yaml` and HTTP 422s. */
export interface Problem {
  field?: string;
  line?: number;
  message: string;
}

export class BatchdError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;
  readonly problems: Problem[];

  constructor(
    code: ErrorCode,
    message: string,
    context: ErrorContext = {},
    options: { cause?: unknown; problems?: Problem[] } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BatchdError';
    this.code = code;
    this.context = context;
    this.problems = options.problems ?? [];
  }
}

/** Turn anything thrown into an Error, so every catch handles one type. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : JSON.stringify(thrown));
}

export function errnoCode(thrown: unknown): string | undefined {
  const code = (thrown as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** One wording for every option error, in p-queue's style. */
export function describeValue(value: unknown): string {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  const kind = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  return `\`${shown.length > 60 ? shown.slice(0, 57) + '...' : shown}\` (${kind})`;
}
