import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

import { BatchdError, coerceError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ErrorBody } from '../protocol/common.ts';

/**
 * The one place that maps error codes to HTTP statuses. batchd sent 404 for nearly everything and
 * plain text bodies; here every error is `{error: {code, message, details?}}` with its real status.
 */
export const STATUS_OF: Partial<Record<ErrorCode, ContentfulStatusCode>> = {
  BAD_JSON: 400,
  YAML_SYNTAX: 400,
  NAME_INVALID: 400,
  REQUEST_INVALID: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  UNKNOWN_QUEUE: 404,
  UNKNOWN_JOB: 404,
  UNKNOWN_TYPE: 404,
  UNKNOWN_HOST: 404,
  UNKNOWN_SCHEDULE: 404,
  UNKNOWN_USER: 404,
  UNKNOWN_TASK: 404,
  CONFLICT: 409,
  ALREADY_EXISTS: 409,
  NOT_EMPTY: 409,
  TRANSITION_ILLEGAL: 409,
  JOB_GONE: 409,
  JOB_LOCKED: 409,
  PAUSE_UNSUPPORTED: 409,
  TOO_LARGE: 413,
  DROP_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  STOPPING: 503,
  JOB_INVALID: 422,
  ENTITY_INVALID: 422,
  PARAM_INVALID: 422,
  CONFIG_INVALID: 422,
  DROP_BINARY: 422,
  DROP_BAD_NAME: 422,
  DROP_NOT_REGULAR: 422,
  DISK_FULL: 507,
  SPAWN_FAILED: 500,
  INTERNAL: 500,
  // Remote-host failures are recorded on jobs; should one reach a request, the fault is upstream.
  HOST_UNREACHABLE: 502,
  HOST_LOST: 502,
  HOST_KEY_REJECTED: 502,
  HOST_AUTH_FAILED: 502,
  HOST_STARTUP_FAILED: 502,
  TRANSFER_FAILED: 502,
  PROVIDER_FAILED: 502,
  PLUGIN_INVALID: 500,
  HOOK_FAILED: 502,
  // Client-side codes (daemon/client/): the daemon never answers with them.
  SERVER_UNREACHABLE: 502,
  PROTOCOL_MISMATCH: 500,
};

export function statusOf(error: BatchdError): ContentfulStatusCode {
  // An unknown name inside a submitted document (a job's type, a queue's schedule) makes the
  // document invalid (422); an unknown name in the path is a missing resource (404).
  if (error.code.startsWith('UNKNOWN_') && error.problems.length > 0) return 422;
  return STATUS_OF[error.code] ?? 500;
}

export function errorBody(error: BatchdError): ErrorBody {
  const details = error.problems.map((p) => ({
    ...(p.field === undefined ? {} : { field: p.field }),
    ...(p.line === undefined ? {} : { line: p.line }),
    message: p.message,
  }));
  return { error: { code: error.code, message: error.message, ...(details.length > 0 ? { details } : {}) } };
}

/** Anything thrown in a handler, as a response. Unexpected errors say nothing about internals. */
export function toBatchdError(thrown: unknown): BatchdError {
  if (thrown instanceof BatchdError) return thrown;
  if (thrown instanceof HTTPException) {
    const code: ErrorCode =
      thrown.status === 413
        ? 'TOO_LARGE'
        : thrown.status === 404
          ? 'NOT_FOUND'
          : thrown.status < 500
            ? 'REQUEST_INVALID'
            : 'INTERNAL';
    return new BatchdError(code, thrown.message || 'Request refused');
  }
  return new BatchdError('INTERNAL', 'Internal error; the daemon log has the details', {}, { cause: thrown });
}

export function errorResponse(c: Context, error: BatchdError, challenge?: string): Response {
  const status = statusOf(error);
  if (status === 401 && challenge !== undefined) c.header('WWW-Authenticate', challenge);
  const retryAfter = error.context.retryAfter;
  if ((status === 429 || status === 503) && typeof retryAfter === 'number')
    c.header('Retry-After', String(retryAfter));
  return c.json(errorBody(error), status);
}

/**
 * The response to anything a request threw, wherever it was caught (a route, or Hono's onError for
 * the rest); an unexpected error is logged with the route, never shown.
 */
export function failureResponse(
  c: Context,
  thrown: unknown,
  log: Logger,
  route: string,
  challenge: string | undefined,
): Response {
  const error = toBatchdError(thrown);
  if (error.code === 'INTERNAL') log.error({ err: coerceError(thrown), route }, 'request failed');
  return errorResponse(c, error, challenge);
}
