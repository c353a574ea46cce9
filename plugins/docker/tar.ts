/**
 * The little of ustar that the Docker archive API needs: one regular file in, the first entry
 * out. Written here rather than taken from a package because it is this small (POSIX.1-1988
 * ustar, with the pax `size` and GNU base-256 sizes that Go's archive/tar writes for big files).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';

const BLOCK = 512;

export interface TarFile {
  /** The entry's name: a plain file name (the archive is unpacked into its folder). */
  name: string;
  mode: number;
  uid: number;
  gid: number;
}

/** A tar stream holding the local file `local` as `entry`. */
export async function packFile(local: string, entry: TarFile, signal: AbortSignal): Promise<Readable> {
  const { size, mtimeMs } = await stat(local);
  const header = ustarHeader(entry, size, Math.floor(mtimeMs / 1000));
  async function* blocks(): AsyncGenerator<Buffer> {
    yield header;
    let sent = 0;
    for await (const chunk of createReadStream(local, { signal }) as AsyncIterable<Buffer>) {
      sent += chunk.length;
      yield chunk;
    }
    if (sent !== size) throw new Error(`${local} changed size while being sent`);
    // Pad the data to a block, then two zero blocks end the archive.
    yield Buffer.alloc(((BLOCK - (size % BLOCK)) % BLOCK) + 2 * BLOCK);
  }
  return Readable.from(blocks(), { objectMode: false });
}

function ustarHeader(entry: TarFile, size: number, mtime: number): Buffer {
  if (Buffer.byteLength(entry.name) > 100) throw new Error(`file name too long for ustar: ${entry.name}`);
  const h = Buffer.alloc(BLOCK);
  h.write(entry.name, 0, 100, 'utf8');
  octal(h, 100, 8, entry.mode & 0o7777);
  octal(h, 108, 8, entry.uid);
  octal(h, 116, 8, entry.gid);
  if (size < 0o77777777777) octal(h, 124, 12, size);
  else base256(h, 124, 12, size);
  octal(h, 136, 12, mtime);
  h.write(' '.repeat(8), 148, 8, 'latin1');
  h.write('0', 156, 1, 'latin1');
  h.write('ustar\u000000', 257, 8, 'latin1');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 8, 'latin1');
  return h;
}

function octal(h: Buffer, at: number, length: number, value: number): void {
  h.write(value.toString(8).padStart(length - 1, '0') + '\u0000', at, length, 'latin1');
}

function base256(h: Buffer, at: number, length: number, value: number): void {
  let v = value;
  for (let i = at + length - 1; i > at; i--) {
    h[i] = v % 256;
    v = Math.floor(v / 256);
  }
  h[at] = 0x80;
}

/** What the first entry of an archive is. */
export type FirstEntry =
  { kind: 'file'; size: number; data: AsyncGenerator<Buffer> } | { kind: 'other' | 'none' };

/**
 * Reads headers up to the first real entry (skipping pax and GNU long-name records). For a
 * regular file, `data` yields its content; read it to its end before dropping the archive.
 */
export async function firstEntry(archive: AsyncIterable<Buffer>): Promise<FirstEntry> {
  const reader = new BlockReader(archive[Symbol.asyncIterator]());
  let paxSize: number | undefined;
  for (;;) {
    const h = await reader.read(BLOCK);
    if (h === undefined || h.every((b) => b === 0)) return { kind: 'none' };
    const type = String.fromCharCode(h[156] ?? 0);
    const size = numeric(h.subarray(124, 136));
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      const body = await reader.read(padded(size));
      if (body === undefined) return { kind: 'none' };
      if (type === 'x') paxSize = paxRecord(body.subarray(0, size), 'size') ?? paxSize;
      continue;
    }
    if (type !== '0' && type !== '\u0000' && type !== '7') return { kind: 'other' };
    const length = paxSize ?? size;
    return { kind: 'file', size: length, data: reader.take(length) };
  }
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

function numeric(field: Buffer): number {
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let v = (field[0] ?? 0) & 0x7f;
    for (const byte of field.subarray(1)) v = v * 256 + byte;
    return v;
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/g, '')
    .trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/** A pax extended header's numeric record, e.g. `size`. */
function paxRecord(body: Buffer, key: string): number | undefined {
  for (const line of body.toString('utf8').split('\n')) {
    const match = /^\d+ ([^=]+)=(.*)$/.exec(line);
    if (match?.[1] === key) return Number(match[2]);
  }
  return undefined;
}

/** Exact-length reads over a stream of chunks. */
class BlockReader {
  #pending: Buffer = Buffer.alloc(0);
  #done = false;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    const next = await this.source.next();
    if (next.done === true) {
      this.#done = true;
      return false;
    }
    this.#pending = this.#pending.length === 0 ? next.value : Buffer.concat([this.#pending, next.value]);
    return true;
  }

  /** Exactly `n` bytes, or undefined when the stream ends first. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.#pending.length < n) if (!(await this.#fill())) return undefined;
    const out = this.#pending.subarray(0, n);
    this.#pending = this.#pending.subarray(n);
    return out;
  }

  /** `n` bytes as they arrive; fails when the stream ends first. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#pending.length === 0 && !(await this.#fill()))
        throw new Error(`archive ended ${left} bytes short of its file`);
      const chunk = this.#pending.subarray(0, Math.min(left, this.#pending.length));
      this.#pending = this.#pending.subarray(chunk.length);
      left -= chunk.length;
      yield chunk;
    }
  }
}
