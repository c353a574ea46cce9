import { closeSync, openSync, writeSync } from 'node:fs';

/** Bytes gathered before a write: large enough that a 30 MB manifest takes 30 writes. */
const CHUNK_BYTES = 1 << 20;

/**
 * Write a file made of many small pieces of text (a task's manifest: a line per job) through one
 * buffer, a chunk at a time. A string of the whole file, built by appending, is a rope of every
 * piece that outlives many collections and must be flattened before it is written: for 100,000
 * lines that cost more than making the lines.
 */
export function writeInChunks(file: string, write: (put: (text: string) => void) => void): void {
  const fd = openSync(file, 'w');
  try {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let used = 0;
    const flush = (bytes: Buffer, length: number): void => {
      for (let at = 0; at < length;) at += writeSync(fd, bytes, at, length - at);
    };
    write((text) => {
      // Three bytes of UTF-8 at most per UTF-16 unit: the text fits whole.
      if (used + text.length * 3 > buffer.length) {
        flush(buffer, used);
        used = 0;
        if (text.length * 3 > buffer.length) {
          const bytes = Buffer.from(text, 'utf8');
          flush(bytes, bytes.length);
          return;
        }
      }
      used += buffer.write(text, used, 'utf8');
    });
    flush(buffer, used);
  } finally {
    closeSync(fd);
  }
}
