import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type Stats } from 'node:fs';

import { Document, visit } from 'yaml';

import { BatchdError, errnoCode } from '../errors.ts';

/**
 * The one way the daemon reads a file that someone else can put in the spool or config tree
 * (drops, request files, queue.yaml, configuration): anyone who can write there can leave a FIFO
 * (a plain read blocks the whole daemon until a writer comes), a symlink to a secret the daemon can
 * read, a device or a file of gigabytes. So: `lstat` first (no open of anything that is not a
 * regular file), then `open` with O_NOFOLLOW|O_NONBLOCK (a swap after the lstat cannot make it
 * follow a link or block), `fstat` must show the same regular file, and at most `maxBytes` are read.
 */
export type SafeRead =
  | { status: 'read'; bytes: Buffer; stats: Stats }
  | { status: 'gone' }
  | { status: 'refused'; code: 'not_regular' | 'too_large'; reason: string; stats: Stats | undefined };

export function readBounded(file: string | Buffer, maxBytes: number): SafeRead {
  let seen: Stats;
  try {
    seen = lstatSync(file);
  } catch (error) {
    return errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR'
      ? { status: 'gone' }
      : refused('not_regular', `cannot be examined (${errnoCode(error) ?? 'error'})`, undefined);
  }
  const kind = kindOf(seen);
  if (kind !== undefined) return refused('not_regular', `is ${kind}; only regular files are read`, seen);
  if (seen.size > maxBytes) return tooLarge(seen.size, maxBytes, seen);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') return { status: 'gone' };
    return code === 'ELOOP'
      ? refused('not_regular', `is ${kindOf(lstatOrSeen(file, seen)) ?? 'not a regular file'}`, seen)
      : refused('not_regular', `cannot be opened (${code ?? 'error'})`, seen);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() || stats.ino !== seen.ino || stats.dev !== seen.dev)
      return refused(
        'not_regular',
        'was replaced by something other than a regular file while being read',
        stats,
      );
    if (stats.size > maxBytes) return tooLarge(stats.size, maxBytes, stats);
    // One byte more than the bound tells a file that grew past it from one that ends there.
    const buffer = Buffer.allocUnsafe(Math.min(stats.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      length += n;
      // A short read of a regular file is its end: all that fstat said it holds was read (a
      // writer still at it is caught by the callers' stability rules, not by one more read).
      if (n === 0 || length >= buffer.length || length === stats.size) break;
    }
    if (length > maxBytes) return tooLarge(length, maxBytes, stats);
    return { status: 'read', bytes: buffer.subarray(0, length), stats };
  } catch (error) {
    return refused('not_regular', `cannot be read (${errnoCode(error) ?? 'error'})`, seen);
  } finally {
    closeSync(fd);
  }
}

/** What a file that is not a regular file is, in words; undefined for a regular file. */
export function kindOf(st: Stats): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isSymbolicLink()) return 'a symbolic link (its target is not read)';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isDirectory()) return 'a folder';
  if (st.isSocket()) return 'a socket';
  return 'a device';
}

/** Decodes whole buffers only (never a stream), so one instance serves every file. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 text, or why the bytes are not text. */
export function decodeText(bytes: Buffer): { text: string } | { binary: string } {
  if (bytes.includes(0)) return { binary: 'NUL bytes' };
  try {
    return { text: UTF8.decode(bytes) };
  } catch {
    return { binary: 'not valid UTF-8' };
  }
}

/**
 * A configuration file's text (batchd.yaml, job types, users, queue.yaml): a missing file throws
 * the ENOENT error a plain read would (callers treat it as "not there"); anything that is not a
 * regular text file of at most `maxBytes` throws CONFIG_INVALID without its content.
 */
export function readConfigText(
  file: string,
  maxBytes = CONFIG_MAX_BYTES,
  /** A file in the spool: one with another name may be a file its writer cannot read (users.yaml). */
  ownLinkOnly = false,
): string {
  const read = readBounded(file, maxBytes);
  if (read.status === 'gone') {
    throw Object.assign(new Error(`${file}: not found`), { code: 'ENOENT' });
  }
  if (read.status === 'refused')
    throw new BatchdError('CONFIG_INVALID', `${file}: ${read.reason}; it was not read`, { file });
  if (ownLinkOnly && read.stats.nlink > 1)
    throw new BatchdError(
      'CONFIG_INVALID',
      `${file}: has ${read.stats.nlink} hard links; write it as a file of its own (its content was not used)`,
      { file },
    );
  const decoded = decodeText(read.bytes);
  if ('binary' in decoded)
    throw new BatchdError('CONFIG_INVALID', `${file}: binary content (${decoded.binary}); it was not read`, {
      file,
    });
  return decoded.text;
}

/** Configuration files are small; a bound keeps a huge one from taking the daemon's memory. */
export const CONFIG_MAX_BYTES = 4 * 1024 * 1024;

/**
 * A short excerpt of text a user wrote, safe to put in a log line or an error file: control
 * characters, lone surrogates and non-characters are shown as escapes (so the YAML written around
 * it stays valid and a terminal shows no escape sequence), and at most `max` characters are kept.
 */
export function excerpt(text: string, max = 200): string {
  const cut = text.length > max ? text.slice(0, max) + '…' : text;
  return cut.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

// YAML 1.2's printable set is tab, LF, CR, 0x20–0x7E, 0x85 (a line break to some readers, so
// escaped too), 0xA0–0xD7FF, 0xE000–0xFFFD and the
// astral planes; everything else must not appear raw in a YAML file. CR is escaped too (it hides
// what came before it on a terminal).
const UNPRINTABLE =
  // eslint-disable-next-line no-control-regex
  /[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * YAML for a file users read (an error report, which quotes names and keys from a drop as they
 * are): the yaml library writes DEL, C1 control characters and the non-characters U+FFFE/U+FFFF
 * raw, which YAML 1.2 does not allow and other readers (PyYAML) refuse. Every string holding one
 * is double-quoted, and inside double quotes `\xNN` / `\uNNNN` is the same character, escaped.
 */
export function stringifyReport(data: unknown): string {
  const doc = new Document(data);
  visit(doc, {
    Scalar(_, node) {
      if (typeof node.value === 'string' && NOT_RAW_IN_YAML.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc.toString().replace(NOT_RAW_IN_YAML_ALL, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16)}` : `\\u${code.toString(16)}`;
  });
}

/** What the yaml library would write raw but YAML 1.2 does not allow raw (C0 controls it escapes). */
const NOT_RAW_IN_YAML = /[\x7f-\x9f\ufffe\uffff]/;
const NOT_RAW_IN_YAML_ALL = new RegExp(NOT_RAW_IN_YAML.source, 'g');

function refused(code: 'not_regular' | 'too_large', reason: string, stats: Stats | undefined): SafeRead {
  return { status: 'refused', code, reason, stats };
}

function tooLarge(size: number, maxBytes: number, stats: Stats): SafeRead {
  return refused('too_large', `${size} bytes is over the limit of ${maxBytes} bytes`, stats);
}

function lstatOrSeen(file: string | Buffer, seen: Stats): Stats {
  try {
    return lstatSync(file);
  } catch {
    return seen;
  }
}
