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
    redact: { paths: REDACT, censor: '[hidden]' },
  };
  if (usePretty) {
    return pino(
      base,
      pretty({
        sync: true,
        colorize: tty,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
        destination: toFile ? options.target : fd,
      }),
    );
  }
  return pino(base, pino.destination({ dest: toFile ? options.target : fd, sync: true, mkdir: toFile }));
}
