import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

import { z } from 'zod';

import { loadText } from '../config/parse.ts';
import { isJobId } from '../jobs/id.ts';
import { stagingName } from './accept.ts';
import { fsyncDir, writeFileAtomic, writeFileFsynced } from './atomic.ts';
import { type JournalRecord, segmentFiles } from './journal.ts';
import { isQueueName, type SpoolLayout } from './layout.ts';
import { HOST_TAG, ownerMayBeAlive, SELF } from './owner.ts';
import { STATE_FILE } from './state-file.ts';
import { moveJobFolder } from './transition.ts';

const ownerSchema = z.object({ hostname: z.string(), boot_id: z.string(), pid: z.number().int() });
const headerSchema = z.object({ owner: ownerSchema });
const recordSchema = z.object({
  queue: z.string().refine(isQueueName),
  id: z.string().refine(isJobId), // a bad one would stop the start (layout.jobDir refuses it)
  into: z.enum(['queued', 'running']),
  // Only the names an acceptance writes: nothing outside the job's folder.
  files: z.record(z.string().regex(/^(job\.yaml|state\.yaml|drop\.(yaml|yml|json))$/), z.string()),
});
const withdrawalSchema = z.object({ queue: z.string(), id: z.string(), withdrawn: z.literal(true) });
const lineSchema = z.union([withdrawalSchema, recordSchema]);

/**
 * The journal segments of writers that are gone (spool/journal.ts): `visit` sees each acknowledged
 * record not withdrawn since, then the segment is dropped. Returns how many segments were read.
 * Records after the first line that does not parse were never acknowledged (each append is
 * acknowledged only after its `fdatasync`), so a segment is read up to there. What a record calls
 * for is recovery's (spool/recovery.ts).
 *
 * `foreignAfterMs`: a segment from another machine is replayed once it is this old (we cannot
 * tell whether its writer is alive).
 */
export function forEachJournaled(
  layout: SpoolLayout,
  foreignAfterMs: number,
  visit: (record: JournalRecord) => void,
): number {
  let segments = 0;
  const dir = layout.journalDir();
  for (const name of segmentFiles(dir)) {
    const file = path.join(dir, name);
    const lines = readFileSync(file, 'utf8').split('\n');
    const header = headerSchema.safeParse(parseLine(lines[0] ?? ''));
    const old = Date.now() - statSync(file).mtimeMs >= foreignAfterMs;
    if (!header.success) {
      // Being begun by a live writer, or left with no acknowledged record (the first append's
      // fdatasync puts the header on disk too): nothing to replay either way.
      if (old) rmSync(file, { force: true });
      continue;
    }
    const { owner } = header.data;
    // This process has not journaled anything yet: a segment with its pid is an earlier one's.
    const earlierSelf = owner.pid === process.pid && name.startsWith(`${HOST_TAG}-`);
    if (!earlierSelf && ownerMayBeAlive(owner)) {
      // Alive on this machine; on another one we cannot tell, and age decides.
      if (owner.hostname === SELF.hostname || !old) continue;
    }
    const records: JournalRecord[] = [];
    const withdrawn = new Set<string>();
    for (const line of lines.slice(1)) {
      const parsed = lineSchema.safeParse(parseLine(line));
      if (!parsed.success) break;
      if ('withdrawn' in parsed.data) withdrawn.add(parsed.data.id);
      else records.push(parsed.data);
    }
    for (const record of records) if (!withdrawn.has(record.id)) visit(record);
    rmSync(file, { force: true });
    segments += 1;
  }
  if (segments > 0) fsyncDir(dir);
  return segments;
}

/** The files of a journaled job that a crash emptied or took: byte for byte, or its record unreadable. */
export function lostFiles(dir: string, record: JournalRecord): string[] {
  return Object.entries(record.files)
    .filter(([name, text]) => !intact(dir, name, text))
    .map(([name]) => name);
}

/** Write a file of a journaled job again, in its folder. */
export function writeAgain(dir: string, name: string, record: JournalRecord): void {
  writeFileAtomic(path.join(dir, name), record.files[name] ?? '', true);
}

/**
 * Write a journaled job again whole, as its acceptance did (its files as the journal recorded them): in `.staging/` (any half-made staging
 * of it dropped first), then committed into the state it was accepted into.
 */
export function writeJobAgain(layout: SpoolLayout, record: JournalRecord): void {
  const { queue, id, into, files } = record;
  const staging = layout.folder(queue, 'staging');
  mkdirSync(staging, { recursive: true });
  for (const entry of readdirSync(staging)) {
    if (entry.endsWith(`-${id}`)) rmSync(path.join(staging, entry), { recursive: true, force: true });
  }
  const temp = path.join(staging, stagingName(id));
  mkdirSync(temp);
  for (const [name, text] of Object.entries(files)) writeFileFsynced(path.join(temp, name), text, 'wx');
  fsyncDir(temp);
  const target = layout.jobDir(queue, into, id);
  mkdirSync(path.dirname(target), { recursive: true });
  moveJobFolder({ id, queue }, 'staging', into, temp, target);
  fsyncDir(path.dirname(target));
}

/**
 * Whether a job's file survived: byte for byte for files never rewritten; for its record, data of
 * this job (not torn). A record that reads but fails its schema is the job's later state, a
 * corrupt one that reading it reports: writing the acceptance's record over it would move the job back.
 */
function intact(dir: string, name: string, text: string): boolean {
  try {
    const file = path.join(dir, name);
    if (name !== STATE_FILE) return readFileSync(file, 'utf8') === text;
    const record = loadText(readFileSync(file, 'utf8'), file);
    return (
      typeof record === 'object' && record !== null && (record as { id?: unknown }).id === path.basename(dir)
    );
  } catch {
    return false;
  }
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return undefined;
  }
}
