import { type Schedule, WEEKDAYS, type Weekday } from '../config/schema.ts';

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string | undefined): Intl.DateTimeFormat {
  const key = timeZone ?? '';
  let f = formatters.get(key);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      weekday: 'long',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(key, f);
  }
  return f;
}

/** Weekday and second of the day at `when`, in the schedule's time zone (else the machine's). */
/** The dispatcher asks on every pass; ICU's formatToParts is slow, and the answer changes once a second. */
const lastLocal = new Map<string, { epochSecond: number; value: { day: number; second: number } }>();

export function localTime(when: Date, timeZone: string | undefined): { day: number; second: number } {
  const epochSecond = Math.floor(when.getTime() / 1000);
  const cached = lastLocal.get(timeZone ?? '');
  if (cached?.epochSecond === epochSecond) return cached.value;
  const value = computeLocalTime(when, timeZone);
  lastLocal.set(timeZone ?? '', { epochSecond, value });
  return value;
}

function computeLocalTime(when: Date, timeZone: string | undefined): { day: number; second: number } {
  let day = 0;
  let h = 0;
  let m = 0;
  let s = 0;
  for (const part of formatter(timeZone).formatToParts(when)) {
    if (part.type === 'weekday') day = WEEKDAYS.indexOf(part.value as Weekday);
    else if (part.type === 'hour') h = Number(part.value);
    else if (part.type === 'minute') m = Number(part.value);
    else if (part.type === 'second') s = Number(part.value);
  }
  return { day, second: h * 3600 + m * 60 + s };
}

function dayAllowed(schedule: Schedule, day: number): boolean {
  const days = schedule.weekdays;
  return days === null || days === undefined || days.includes(WEEKDAYS[(day + 7) % 7] as Weekday);
}

/**
 * Whether a queue on this schedule may start jobs at `when`. A window `[begin, end)` whose end is
 * before its begin crosses midnight, and its small hours belong to the day it began on
 * (Friday 22:00–06:00 is open early on Saturday).
 */
export function isOpen(schedule: Schedule, when: Date): boolean {
  const windows = schedule.time;
  const always = (windows === null || windows === undefined || windows.length === 0) && !schedule.weekdays;
  if (always) return true;
  const { day, second } = localTime(when, schedule.timezone);
  if (windows === null || windows === undefined || windows.length === 0) return dayAllowed(schedule, day);
  return windows.some(({ begin, end }) => {
    if (begin === end) return dayAllowed(schedule, day);
    if (begin < end) return second >= begin && second < end && dayAllowed(schedule, day);
    if (second >= begin) return dayAllowed(schedule, day);
    return second < end && dayAllowed(schedule, day - 1);
  });
}

/**
 * Milliseconds until the schedule may open, capped at an hour (the caller looks again then, which
 * also absorbs daylight-saving shifts). 0 if it is open now. A schedule opens at a window's begin,
 * or at midnight when an allowed weekday starts (an all-day window, or no windows).
 */
export function msUntilOpen(schedule: Schedule, now: Date): number {
  if (isOpen(schedule, now)) return 0;
  const cap = 3_600_000;
  const nowMs = now.getTime();
  const midnight = nowMs - (nowMs % 1000) - localTime(now, schedule.timezone).second * 1000;
  const starts = new Set([0, ...(schedule.time ?? []).map((w) => w.begin)]);
  let best = cap;
  for (let d = 0; d <= 1; d++) {
    for (const start of starts) {
      const at = midnight + (d * 86_400 + start) * 1000;
      if (at > nowMs && at - nowMs < best && isOpen(schedule, new Date(at))) best = at - nowMs;
    }
  }
  return Math.max(best, 50);
}

/**
 * When the schedule next opens after `now` (undefined if open now, or if it never opens within a
 * week). For people (the web page's "opens 22:00"); the dispatcher uses msUntilOpen.
 */
export function nextOpening(schedule: Schedule, now: Date): Date | undefined {
  if (isOpen(schedule, now)) return undefined;
  const nowMs = now.getTime();
  const midnight = nowMs - (nowMs % 1000) - localTime(now, schedule.timezone).second * 1000;
  const starts = [...new Set([0, ...(schedule.time ?? []).map((w) => w.begin)])].sort((a, b) => a - b);
  for (let d = 0; d <= 7; d++) {
    for (const start of starts) {
      const at = midnight + (d * 86_400 + start) * 1000;
      if (at > nowMs && isOpen(schedule, new Date(at))) return new Date(at);
    }
  }
  return undefined;
}
