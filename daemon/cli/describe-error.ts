import { ApiError, ProtocolError, UnreachableError } from '../client/errors.ts';
import type { ResolvedConfig } from '../client/config.ts';
import { BatchdError, type Problem } from '../errors.ts';
import { OperationFailed, UsageError } from './exit-codes.ts';

/**
 * What `batch` prints on stderr when a command fails: the server's own message, each problem it
 * listed, and what to do next. Never a stack trace, never a secret.
 */
export function describeError(error: unknown, config: ResolvedConfig | undefined): string {
  if (error instanceof UsageError || error instanceof OperationFailed) return error.message;
  if (error instanceof UnreachableError) {
    if (error.untrusted) {
      return `cannot reach ${error.url} securely: ${error.reason} — set ca_certificate in client.yaml to the CA that signed it (or, on a test setup only, disable_server_certificate_check: true)`;
    }
    const elsewhere =
      config !== undefined && config.sources.manager_url === 'default'
        ? '; if it runs elsewhere, give -M URL or set BATCH_MANAGER_URL'
        : '';
    return `cannot reach ${error.url} — is batchd running? (batchd --config DIR)${elsewhere} [${error.reason}]`;
  }
  if (error instanceof ApiError)
    return withProblems(`${error.message}${hintFor(error, config)}`, error.problems);
  if (error instanceof ProtocolError) {
    return withProblems(
      `${error.message} — the server and this client disagree on the protocol; are both the same batchd version?`,
      error.problems,
    );
  }
  if (error instanceof BatchdError)
    return withProblems(error.message, error.problems.length > 1 ? error.problems : []);
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Where to look up the names there are, by what was not found. */
const NOT_FOUND_HINTS: Record<string, string> = {
  UNKNOWN_QUEUE: ' — `batch ls` lists the queues',
  UNKNOWN_JOB: ' — `batch ls QUEUE -a` lists the jobs of a queue',
  UNKNOWN_TYPE: ' — `batch type` lists the job types',
  UNKNOWN_SCHEDULE: ' — `batch schedule` lists the schedules',
  UNKNOWN_TASK: ' — `batch task ls QUEUE` lists the tasks of a queue',
  UNKNOWN_USER: ' — `batch user` lists the users',
};

function hintFor(error: ApiError, config: ResolvedConfig | undefined): string {
  if (error.status === 401) {
    if (config?.sources.token === 'login')
      return ' — the token saved by `batch login` was refused (expired or revoked?): run `batch login` again';
    if (config?.token !== undefined || config?.password !== undefined)
      return ' — check the username, password or token';
    return ' — run `batch login`, or give -U USER -P PASSWORD (or BATCH_USERNAME / BATCH_PASSWORD / BATCH_TOKEN)';
  }
  if (error.status === 403)
    return ' — ask an administrator to grant the permission (`batch grant USER -a -p PERMISSION [-q QUEUE]`)';
  if (error.status === 404) return NOT_FOUND_HINTS[error.serverCode] ?? '';
  return '';
}

function withProblems(message: string, problems: readonly Problem[]): string {
  if (problems.length === 0) return message;
  const lines = problems.map((p) => {
    const where = [p.field, p.line === undefined ? undefined : `line ${p.line}`]
      .filter((x) => x !== undefined)
      .join(', ');
    return `  ${where === '' ? '' : where + ': '}${p.message}`;
  });
  // The server's message often already lists the problems; don't say them twice.
  const fresh = lines.filter((line) => !message.includes(line.trim().split(': ').pop() ?? line));
  return fresh.length === 0 ? message : `${message}\n${fresh.join('\n')}`;
}
