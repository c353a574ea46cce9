import { parseDuration } from '../config/duration.ts';
import { UsageError } from './exit-codes.ts';

/**
 * `--at TIME`: batchd's `YYYY-MM-DD HH:MM:SS` (local time), plus what people type: an ISO time
 * with a zone, `HH:MM[:SS]` (the next such time of day), `+90s` / `+1h30m` (from now), `now`.
 */
export function parseAt(text: string, now = new Date()): string {
  const value = text.trim();
  if (value.toLowerCase() === 'now') return now.toISOString();
  if (value.startsWith('+')) {
    const ms = parseDuration(value.slice(1));
    if (ms !== undefined) return new Date(now.getTime() + ms).toISOString();
  }
  const clock = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (clock !== null) {
    const [h, m, s] = [Number(clock[1]), Number(clock[2]), Number(clock[3] ?? 0)];
    if (h < 24 && m < 60 && s < 60) {
      const at = new Date(now);
      at.setHours(h, m, s, 0);
      if (at.getTime() <= now.getTime()) at.setDate(at.getDate() + 1);
      return at.toISOString();
    }
  }
  const local = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(value);
  if (local !== null) {
    const [y, mo, d, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => Number(local[i] ?? 0)) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const at = new Date(y, mo - 1, d, h, mi, s);
    if (at.getMonth() === mo - 1 && at.getDate() === d && h < 24 && mi < 60 && s < 60)
      return at.toISOString();
  }
  if (/^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:?\d{2})$/i.test(value)) {
    const at = new Date(value);
    if (!Number.isNaN(at.getTime())) return at.toISOString();
  }
  throw new UsageError(
    `cannot read the time ${JSON.stringify(text)}; use "YYYY-MM-DD HH:MM:SS" (local time), an ISO time such as 2026-11-22T01:00:00+01:00, "HH:MM", "+1h30m" or "now"`,
  );
}
