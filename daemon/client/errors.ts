import { BatchdError, ERROR_CODES, type ErrorCode, type Problem } from '../errors.ts';

/** The server answered with an error status; `code` is the server's stable code. */
export class ApiError extends BatchdError {
  readonly status: number;
  /** The server's code as sent, even one this client does not know yet. */
  readonly serverCode: string;

  constructor(
    status: number,
    serverCode: string,
    message: string,
    problems: Problem[],
    context: { method: string; url: string },
  ) {
    super(knownCode(serverCode, status), message, { ...context, status }, { problems });
    this.name = 'ApiError';
    this.status = status;
    this.serverCode = serverCode;
  }
}

/**
 * No usable answer: refused, unresolvable, timed out, reset before a response, or a TLS server
 * whose certificate is not trusted (`untrusted`).
 */
export class UnreachableError extends BatchdError {
  readonly url: string;
  readonly reason: string;
  readonly untrusted: boolean;

  constructor(url: string, reason: string, cause: unknown, untrusted = false) {
    super('SERVER_UNREACHABLE', `cannot reach ${url} (${reason})`, { url }, { cause });
    this.name = 'UnreachableError';
    this.url = url;
    this.reason = reason;
    this.untrusted = untrusted;
  }
}

/** The server answered 2xx with a body this client cannot read: a version mismatch. */
export class ProtocolError extends BatchdError {
  constructor(message: string, context: { method: string; url: string }, problems: Problem[] = []) {
    super('PROTOCOL_MISMATCH', message, context, { problems });
    this.name = 'ProtocolError';
  }
}

function knownCode(code: string, status: number): ErrorCode {
  if ((ERROR_CODES as readonly string[]).includes(code)) return code as ErrorCode;
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'NOT_FOUND';
  if (status === 409) return 'CONFLICT';
  if (status === 413) return 'TOO_LARGE';
  if (status === 400 || status === 422) return 'REQUEST_INVALID';
  return 'INTERNAL';
}
