import { closeSync, constants, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

import { errnoCode } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { readBounded } from '../../config/safe-read.ts';
import type { MetricRecord } from './monitor.ts';

/** In the spool root; dot names are never queues. */
export const MONITOR_FOLDER = '.batchd-monitor';
/** A day file larger than this is not read (a day of samples of a few dozen queues is ~15 MB). */
const MAX_DAY_BYTES = 256 * 1024 * 1024;
const DAY_FILE = /^(\d{4}-\d{2}-\d{2})\.jsonl$/;
const DAY_MS = 24 * 3600 * 1000;

/** A record as stored: name, kind, value, text (the other MetricRecord fields are always null here). */
type Stored = [string, MetricRecord['kind'], number | null, string | null];

/**
 * batchd kept its metric samples in its database for `storage.metric_records` days, so
 * `/monitor/.../query` answered across restarts. Here, when batchd.yaml sets that field (batchd's
 * sample does), each sample is appended as one JSON line to a file per UTC day in
 * `<spool>/.batchd-monitor/`; a query older than what memory holds reads the day files it spans,
 * and day files older than the retention are deleted (one unlink a day, no rewrite). Without it
 * nothing is written: the samples (about 15 MB a day for a few dozen queues) serve only batchd's
 * clients, and batchd-ts's own monitoring is `/metrics`.
 */
export class MetricHistory {
  readonly #folder: string;
  readonly #days: number;
  readonly #log: Logger;

  /** `days`: batchd's `storage.metric_records`; 0 or unset keeps nothing. */
  constructor(spoolRoot: string, days: number | undefined, log: Logger) {
    this.#folder = path.join(spoolRoot, MONITOR_FOLDER);
    this.#days = days ?? 0;
    this.#log = log;
  }

  get keeps(): boolean {
    return this.#days > 0;
  }

  /** Append one sample (its records share one time). */
  append(records: readonly MetricRecord[]): void {
    const time = records[0]?.time;
    if (time === undefined || this.#days <= 0) return;
    const line = `${JSON.stringify({ t: time, r: records.map((r): Stored => [r.name, r.kind, r.value, r.text]) })}\n`;
    try {
      mkdirSync(this.#folder, { recursive: true, mode: 0o755 });
      // O_NOFOLLOW: a link planted in the spool under a day's name must not make the daemon write through it.
      const fd = openSync(
        path.join(this.#folder, `${time.slice(0, 10)}.jsonl`),
        constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
        0o644,
      );
      try {
        writeSync(fd, line);
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      this.#log.warn({ err: error, folder: this.#folder }, 'cannot keep a metric sample');
    }
  }

  /** The kept records between two times, oldest first. */
  between(from: number, to: number): MetricRecord[] {
    const out: MetricRecord[] = [];
    if (!this.keeps) return out;
    for (const day of this.#dayFiles()) {
      const start = Date.parse(`${day}T00:00:00Z`);
      if (start + DAY_MS < from || start > to) continue;
      const read = readBounded(path.join(this.#folder, `${day}.jsonl`), MAX_DAY_BYTES);
      if (read.status !== 'read') continue;
      for (const line of read.bytes.toString('utf8').split('\n')) {
        const sample = parseLine(line);
        if (sample === undefined) continue;
        const t = Date.parse(sample.t);
        if (t < from || t > to) continue;
        for (const [name, kind, value, text] of sample.r)
          out.push(metricRecord(name, sample.t, kind, value, text));
      }
    }
    return out;
  }

  /** Delete the day files older than the retention (batchd's hourly metricsCleaner). */
  prune(now = Date.now()): void {
    if (!this.keeps) return;
    const edge = now - this.#days * DAY_MS;
    for (const day of this.#dayFiles()) {
      if (Date.parse(`${day}T00:00:00Z`) + DAY_MS > edge) continue;
      rmSync(path.join(this.#folder, `${day}.jsonl`), { force: true });
    }
  }

  #dayFiles(): string[] {
    try {
      return readdirSync(this.#folder)
        .map((f) => DAY_FILE.exec(f)?.[1])
        .filter((d): d is string => d !== undefined)
        .sort();
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return [];
      throw error;
    }
  }
}

/** One stored sample, or undefined for a line that is not one (a torn last line, a foreign edit). */
function parseLine(line: string): { t: string; r: Stored[] } | undefined {
  if (line === '') return undefined;
  try {
    const data = JSON.parse(line) as { t?: unknown; r?: unknown };
    if (typeof data.t !== 'string' || !Array.isArray(data.r)) return undefined;
    const records = data.r.filter(
      (r): r is Stored =>
        Array.isArray(r) &&
        typeof r[0] === 'string' &&
        (r[1] === 'c' || r[1] === 'g' || r[1] === 'l') &&
        (r[2] === null || typeof r[2] === 'number') &&
        (r[3] === null || typeof r[3] === 'string'),
    );
    return { t: data.t, r: records };
  } catch {
    return undefined;
  }
}

export function metricRecord(
  name: string,
  time: string,
  kind: MetricRecord['kind'],
  value: number | null,
  text: string | null,
): MetricRecord {
  return {
    name,
    time,
    daemon: 'Both',
    kind,
    value,
    text,
    mean: null,
    variance: null,
    count: null,
    sum: null,
    min: null,
    max: null,
  };
}
