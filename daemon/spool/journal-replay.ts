import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

import { z } from 'zod';

import type { Logger } from '../log.ts';
import { fsyncDir, writeFileAtomic, writeFileFsynced } from './atomic.ts';
import { locateJob } from './find.ts';
import { type JournalRecord, segmentFiles } from './journal.ts';
import { isJobId } from '../jobs/id.ts';
import { isQueueName, type SpoolLayout } from './layout.ts';
import { HOST_TAG, ownerMayBeAlive, SELF } from './owner.ts';
import { readJobState, STATE_FILE } from './state-file.ts';

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

export interface ReplayOutcome {
  /** Segments read and dropped. */
  segments: number;
  /** Jobs written again whole: their folders had not reached the disk. */
  recreated: number;
  /** Files written again in folders that had. */
  repaired: number;
  /** Records of queues that no longer exist. */
  skipped: number;
}

/**
 * At start, before staging is recovered and before anything reads a job: replay the journal
 * segments of writers that are gone (spool/journal.ts). Each record's job must be in its spool
 * whole, as the acceptance wrote it. A job found in any queue and state (it may have moved since)
 * gets back any file a power loss emptied or took: `job.yaml` and its drop are never rewritten
 * after acceptance, so they must match the record; `state.yaml` is rewritten as the job moves on,
 * so it is written again only if it cannot be read. A job found nowhere is written again where the acceptance committed it.
 * Records after the first line that does not parse were never acknowledged (each append is
 * acknowledged only after its `fdatasync`), so a segment is read up to there.
 *
 * `foreignAfterMs`: a segment from another machine is replayed once it is this old (we cannot
 * tell whether its writer is alive).
 */
export function replayJournal(
  layout: SpoolLayout,
  queues: readonly string[],
  log: Logger,
  foreignAfterMs = 3_600_000,
): ReplayOutcome {
  const outcome: ReplayOutcome = { segments: 0, recreated: 0, repaired: 0, skipped: 0 };
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
    for (const record of records) {
      if (!withdrawn.has(record.id)) replayRecord(layout, queues, record, outcome, log);
    }
    rmSync(file, { force: true });
    outcome.segments += 1;
  }
  if (outcome.segments > 0) fsyncDir(dir);
  return outcome;
}

function replayRecord(
  layout: SpoolLayout,
  queues: readonly string[],
  record: JournalRecord,
  outcome: ReplayOutcome,
  log: Logger,
): void {
  const { queue, id, into, files } = record;
  if (!existsSync(layout.queueDir(queue))) {
    outcome.skipped += 1;
    log.warn({ queue, jobId: id }, 'journal: the queue of an accepted job is gone; not written again');
    return;
  }
  const found = locateJob(layout, queues.includes(queue) ? queues : [...queues, queue], id);
  if (found !== undefined) {
    for (const [name, text] of Object.entries(files)) {
      if (intact(found.dir, name, text)) continue;
      writeFileAtomic(path.join(found.dir, name), text, true);
      outcome.repaired += 1;
      log.warn({ queue, jobId: id, file: name }, 'journal: wrote again a file a crash had lost');
    }
    return;
  }
  // Not committed, or committed and lost: drop any half-made staging of it and write it whole.
  const staging = layout.folder(queue, 'staging');
  mkdirSync(staging, { recursive: true });
  for (const entry of readdirSync(staging)) {
    if (entry.endsWith(`-${id}`)) rmSync(path.join(staging, entry), { recursive: true, force: true });
  }
  const temp = path.join(staging, `${HOST_TAG}-${process.pid}-${id}`);
  mkdirSync(temp);
  for (const [name, text] of Object.entries(files)) writeFileFsynced(path.join(temp, name), text, 'wx');
  fsyncDir(temp);
  const target = layout.jobDir(queue, into, id);
  mkdirSync(path.dirname(target), { recursive: true });
  renameSync(temp, target);
  fsyncDir(path.dirname(target));
  outcome.recreated += 1;
  log.warn({ queue, jobId: id, state: into }, 'journal: wrote again an accepted job a crash had lost');
}

/** Whether a job's file survived: byte for byte for files never rewritten, readable for its record. */
function intact(dir: string, name: string, text: string): boolean {
  try {
    if (name !== STATE_FILE) return readFileSync(path.join(dir, name), 'utf8') === text;
    readJobState(dir);
    return true;
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
