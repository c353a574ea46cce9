/**
 * Just enough of the POSIX tar format (ustar, with a pax header for long names) to stream files
 * one after another: each is a 512-byte header, its bytes, and zeros up to a 512-byte boundary;
 * two zero blocks end the archive. No library: the daemon only writes, never reads, archives.
 */
export const BLOCK = 512;

/** The header block(s) of one regular file. */
export function tarHeader(name: string, size: number, mtime: Date): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length <= 100) return ustar(name, size, mtime, '0');
  // A pax extended header carries the long name; the ustar one after it holds a short stand-in.
  const record = paxRecord('path', name);
  const body = Buffer.alloc(padded(record.length));
  record.copy(body);
  return Buffer.concat([
    ustar('PaxHeader/long-name', record.length, mtime, 'x'),
    body,
    ustar(shortName(name), size, mtime, '0'),
  ]);
}

/** Zeros that bring `size` bytes of content up to a block boundary. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc(padded(size) - size);
}

/** The end of an archive. */
export function tarEnd(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

function ustar(name: string, size: number, mtime: Date, type: '0' | 'x'): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  octal(block, 100, 8, 0o644);
  octal(block, 108, 8, 0);
  octal(block, 116, 8, 0);
  octal(block, 124, 12, size);
  octal(block, 136, 12, Math.max(0, Math.floor(mtime.getTime() / 1000)));
  block.fill(' ', 148, 156); // the checksum is computed with its own field as spaces
  block.write(type, 156, 1, 'latin1');
  block.write('ustar\u000000', 257, 8, 'latin1');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1');
  return block;
}

function octal(block: Buffer, offset: number, width: number, value: number): void {
  block.write(`${value.toString(8).padStart(width - 1, '0')}\u0000`, offset, width, 'latin1');
}

/** "<length> key=value\n", where the length counts itself. */
function paxRecord(key: string, value: string): Buffer {
  const rest = ` ${key}=${value}\n`;
  const restBytes = Buffer.byteLength(rest, 'utf8');
  let length = restBytes + 1;
  while (String(length).length + restBytes !== length) length = String(length).length + restBytes;
  return Buffer.from(`${length}${rest}`, 'utf8');
}

/** A stand-in for readers without pax support: the end of the name, whole characters, ≤ 100 bytes. */
function shortName(name: string): string {
  let out = name;
  while (Buffer.byteLength(out, 'utf8') > 100) out = out.slice(1);
  return out.replace(/^\/+/, '');
}
