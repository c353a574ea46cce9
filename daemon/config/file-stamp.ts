import { statSync } from 'node:fs';

/** A file's identity and times as read from `stat`: a different key means the file changed. */
export interface FileStamp {
  key: string;
  mtimeMs: number;
}

/** The stamp of a file now, or undefined when it is not there. */
export function fileStamp(file: string): FileStamp | undefined {
  try {
    const st = statSync(file, { bigint: true });
    return { key: `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`, mtimeMs: Number(st.mtimeMs) };
  } catch {
    return undefined;
  }
}

/**
 * Whether a file should be read again: its stamp differs from the one taken before the last read
 * (`undefined` for "was not there"), and it has been left alone for `settleMs`, so that a write
 * still going on waits for the next look.
 */
export function changedAndSettled(
  now: FileStamp | undefined,
  lastRead: string | undefined,
  settleMs: number,
): boolean {
  if (now?.key === lastRead) return false;
  return now === undefined || Date.now() - now.mtimeMs >= settleMs;
}
