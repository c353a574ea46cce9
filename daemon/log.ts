import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LogOptions {
  level: string;
  /** `auto` is readable text on a terminal and JSON lines elsewhere. */
  format: 'auto' | 'pretty' | 'json';
  /** `stderr`, `stdout`, or a file path. */
  target: string;
}

const REDACT = [
  'password',
  '*.password',
  'passphrase',
  '*.passphrase',
  'token',
  '*.token',
  'secret',
  '*.secret',
];

export function createLogger(options: LogOptions): Logger {
  const fd = options.target === 'stdout' ? 1 : 2;
  const toFile = options.target !== 'stdout' && options.target !== 'stderr';
  const tty = !toFile && (fd === 1 ? process.stdout.isTTY : process.stderr.isTTY);
  const usePretty = options.format === 'pretty' || (options.format === 'auto' && tty);
  const base = {
    level: options.level,
    base: undefined,
    // ISO 8601 in UTC (`"time":"2026-12-06T21:51:23.625Z"`): what people and log tools read.
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT, censor: '[hidden]' },
  };
  if (usePretty) {
    return pino(
      base,
      pretty({
        sync: true,
        colorize: tty,
        translateTime: 'SYS:HH:MM:ss.l',
        // `job` carries a job line's fields for JSON readers; its message already says them.
        ignore: 'pid,hostname,job',
        destination: toFile ? options.target : fd,
      }),
    );
  }
  return pino(base, pino.destination({ dest: toFile ? options.target : fd, sync: true, mkdir: toFile }));
}

/** `1.2 s`, `850 ms`, `3 min 20 s`, `2 h 5 min`: a duration as the job log lines give it. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** How an attempt ended, in a few words: `exit 0`, `exit 2`, `signal SIGKILL`, `error: …`. */
export function describeAttemptEnd(result: {
  outcome: string;
  exit_code?: number | null | undefined;
  signal?: string | null | undefined;
  error?: string | undefined;
}): string {
  const how =
    result.signal !== null && result.signal !== undefined
      ? `signal ${result.signal}`
      : result.exit_code !== null && result.exit_code !== undefined
        ? `exit ${result.exit_code}`
        : undefined;
  // `exit-code` (a non-zero exit) says nothing the exit code does not.
  const words = [result.outcome === 'exit-code' && how !== undefined ? undefined : result.outcome, how]
    .filter((w) => w !== undefined)
    .join(', ');
  // An error that only restates the exit code or the signal is left out; a timeout or a host fault is kept.
  const restates =
    how !== undefined && /^(exit code|exited|signal|killed by signal)\b/i.test(result.error ?? '');
  return result.error === undefined || restates ? words : `${words}: ${result.error}`;
}
