import { ApiError, UnreachableError } from '../client/errors.ts';
import { BatchdError } from '../errors.ts';

/** What `batch` exits with; scripts may rely on these numbers. */
export const EXIT = {
  ok: 0,
  /** The job or operation failed (e.g. `wait` on a job that failed). */
  failed: 1,
  usage: 2,
  notFound: 3,
  auth: 4,
  unreachable: 5,
  /** The request conflicts with the current state, or its input is invalid. */
  invalid: 6,
  /** `wait --timeout` / `task collect --timeout` passed with jobs unfinished (as timeout(1) exits). */
  timeout: 124,
  /** Ctrl-C at a prompt, as shells report SIGINT. */
  interrupted: 130,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `Exit codes:
    0  ok
    1  the job or operation failed (e.g. \`batch wait\` on a job that failed)
    2  usage error (unknown verb or option, missing argument, bad client.yaml)
    3  not found (job, queue, type, schedule, user, task)
    4  authentication or permission refused
    5  server unreachable
    6  conflict or invalid input (invalid job, queue not empty, job already finished)
  124  \`batch wait\`, \`batch task collect\`: --timeout passed before the jobs finished`;

/** A mistake on the command line, found before anything was sent. */
export class UsageError extends BatchdError {
  constructor(message: string) {
    super('REQUEST_INVALID', message);
    this.name = 'UsageError';
  }
}

/** The command ran, and what it reports is a failure (a failed job, a cancelled wait). */
export class OperationFailed extends Error {
  readonly exitCode: ExitCode;

  constructor(message: string, exitCode: ExitCode = EXIT.failed) {
    super(message);
    this.name = 'OperationFailed';
    this.exitCode = exitCode;
  }
}

export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof OperationFailed) return error.exitCode;
  if (error instanceof UsageError) return EXIT.usage;
  if (error instanceof UnreachableError) return EXIT.unreachable;
  if (error instanceof ApiError) return exitCodeForStatus(error.status);
  if (error instanceof BatchdError) {
    switch (error.code) {
      case 'CONFIG_INVALID':
      case 'YAML_SYNTAX':
        return EXIT.usage;
      case 'UNKNOWN_TYPE':
      case 'UNKNOWN_QUEUE':
      case 'UNKNOWN_HOST':
      case 'UNKNOWN_JOB':
      case 'UNKNOWN_SCHEDULE':
      case 'UNKNOWN_USER':
      case 'UNKNOWN_TASK':
      case 'NOT_FOUND':
        return EXIT.notFound;
      case 'UNAUTHORIZED':
      case 'FORBIDDEN':
        return EXIT.auth;
      case 'JOB_INVALID':
      case 'PARAM_INVALID':
      case 'REQUEST_INVALID':
      case 'CONFLICT':
      case 'TRANSITION_ILLEGAL':
      case 'NAME_INVALID':
      case 'TOO_LARGE':
      case 'BAD_JSON':
      case 'ENTITY_INVALID':
      case 'ALREADY_EXISTS':
      case 'NOT_EMPTY':
        return EXIT.invalid;
      case 'SERVER_UNREACHABLE':
        return EXIT.unreachable;
      default:
        return EXIT.failed;
    }
  }
  return EXIT.failed;
}

export function exitCodeForStatus(status: number): ExitCode {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 400 || status === 409 || status === 413 || status === 422) return EXIT.invalid;
  return EXIT.failed;
}
