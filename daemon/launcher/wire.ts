import { constants } from 'node:os';

import type { LauncherRequest, PipedSpawnRequest, RecycleRequest, WireEvent } from './protocol.ts';

/**
 * The Perl launcher's wire format (launcher.pl describes it): length-prefixed NUL-separated
 * request frames, and tab-separated event lines of which `data` is followed by raw bytes. The same
 * for the launcher on this machine and one on a remote host.
 */
export function encodeRequest(
  request: LauncherRequest | ({ op: 'spawn' } & PipedSpawnRequest) | RecycleRequest,
): Buffer {
  const fields =
    request.op === 'kill'
      ? ['kill', String(request.key), request.signal.replace(/^SIG/, '')]
      : request.op === 'recycle'
        ? ['recycle', String(request.key), ...request.paths]
        : [
            'spawn',
            String(request.key),
            request.file,
            request.cwd,
            request.stdout ?? '',
            request.stderr ?? '',
            String(request.args.length),
            ...request.args,
            String(Object.keys(request.env).length),
            ...Object.entries(request.env).map(([name, value]) => `${name}=${value}`),
            ...(request.options === undefined && request.join === undefined
              ? []
              : [(request.options ?? []).join(',')]),
            ...(request.join === undefined ? [] : [String(request.join.length), ...request.join]),
          ];
  const payload = Buffer.from(fields.join('\0'));
  return Buffer.concat([Buffer.from(`${payload.length}\n`), payload]);
}

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]));
const NEWLINE = 0x0a;

/** Cuts the launcher's output into events; chunks may split lines and data anywhere. */
export class EventReader {
  #pending: Buffer = Buffer.alloc(0);
  /** The data event whose bytes are still to come. */
  #data: { key: number; fd: 1 | 2; length: number } | undefined;

  push(chunk: Buffer): WireEvent[] {
    let buffer = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const events: WireEvent[] = [];
    for (;;) {
      if (this.#data !== undefined) {
        const { key, fd, length } = this.#data;
        if (buffer.length < length) break;
        events.push({ op: 'data', key, fd, data: buffer.subarray(0, length) });
        buffer = buffer.subarray(length);
        this.#data = undefined;
        continue;
      }
      const nl = buffer.indexOf(NEWLINE);
      if (nl < 0) break;
      const line = buffer.toString('utf8', 0, nl);
      buffer = buffer.subarray(nl + 1);
      const [op, key, a, b] = line.split('\t');
      if (op === 'data') this.#data = { key: Number(key), fd: a === '2' ? 2 : 1, length: Number(b) };
      else {
        const event = parseLine(line);
        if (event !== undefined) events.push(event);
      }
    }
    // Copied, so a small remainder does not keep a large chunk alive.
    this.#pending = Buffer.from(buffer);
    return events;
  }
}

function parseLine(line: string): WireEvent | undefined {
  const [op, key, a, b, ...rest] = line.split('\t');
  const k = Number(key);
  if (op === 'started') return { op: 'started', key: k, pid: Number(a) };
  if (op === 'exit') {
    const signal = Number(b) === 0 ? null : (SIGNAL_NAMES.get(Number(b)) ?? `signal ${b}`);
    const result = rest[0] === undefined ? undefined : rest[0] === '1';
    return {
      op: 'exit',
      key: k,
      code: a === '' ? null : Number(a),
      signal,
      ...(result === undefined ? {} : { result }),
    };
  }
  if (op === 'failed') {
    const errno = b ?? 'EIO';
    return { op: 'exit', key: k, code: Number(a), signal: null, error: rest.join('\t'), errno };
  }
  if (op === 'ready') return { op: 'ready', pid: k };
  return undefined;
}
