import { describe, expect, it } from 'vitest';

import { scheduleSchema } from '../../daemon/config/schema.ts';
import { isOpen, localTime, msUntilOpen } from '../../daemon/dispatch/schedule.ts';

const schedule = (s: Record<string, unknown>): ReturnType<typeof scheduleSchema.parse> =>
  scheduleSchema.parse({ name: 'test', ...s });
/** 2026-11-20 is a Friday, 2026-11-21 a Saturday, 2026-11-23 a Monday. */
const at = (iso: string): Date => new Date(iso);

describe('schedule matching', () => {
  it('is always open without weekdays or windows', () => {
    const anytime = schedule({});
    for (const t of ['2026-11-20T00:00:00Z', '2026-11-21T12:34:56Z', '2026-11-23T23:59:59Z'])
      expect(isOpen(anytime, at(t))).toBe(true);
  });

  it('opens only on its weekdays (short names accepted)', () => {
    const weekdays = schedule({ weekdays: ['Mon', 'tue', 'Wednesday', 'Thu', 'Fri'], timezone: 'UTC' });
    expect(isOpen(weekdays, at('2026-11-20T23:59:59Z'))).toBe(true); // Friday
    expect(isOpen(weekdays, at('2026-11-21T00:00:00Z'))).toBe(false); // Saturday
    expect(isOpen(weekdays, at('2026-11-22T12:00:00Z'))).toBe(false); // Sunday
    expect(isOpen(weekdays, at('2026-11-23T00:00:00Z'))).toBe(true); // Monday
  });

  it('treats a window as [begin, end): open at begin, closed at end', () => {
    const office = schedule({ time: [{ begin: '09:00', end: '17:30' }], timezone: 'UTC' });
    expect(isOpen(office, at('2026-11-20T08:59:59Z'))).toBe(false);
    expect(isOpen(office, at('2026-11-20T09:00:00Z'))).toBe(true);
    expect(isOpen(office, at('2026-11-20T17:29:59Z'))).toBe(true);
    expect(isOpen(office, at('2026-11-20T17:30:00Z'))).toBe(false);
  });

  it('opens in any of several windows', () => {
    const split = schedule({
      time: [
        { begin: '06:00', end: '08:00' },
        { begin: '20:00:30', end: '21:00' },
      ],
      timezone: 'UTC',
    });
    expect(isOpen(split, at('2026-11-20T07:00:00Z'))).toBe(true);
    expect(isOpen(split, at('2026-11-20T12:00:00Z'))).toBe(false);
    expect(isOpen(split, at('2026-11-20T20:00:29Z'))).toBe(false);
    expect(isOpen(split, at('2026-11-20T20:00:30Z'))).toBe(true);
  });

  it('lets a window cross midnight, its small hours belonging to the day it began', () => {
    const fridayNight = schedule({
      weekdays: ['Friday'],
      time: [{ begin: '22:00', end: '06:00' }],
      timezone: 'UTC',
    });
    expect(isOpen(fridayNight, at('2026-11-20T21:59:59Z'))).toBe(false);
    expect(isOpen(fridayNight, at('2026-11-20T22:00:00Z'))).toBe(true); // Friday evening
    expect(isOpen(fridayNight, at('2026-11-21T03:00:00Z'))).toBe(true); // Saturday small hours: Friday's night
    expect(isOpen(fridayNight, at('2026-11-21T06:00:00Z'))).toBe(false);
    expect(isOpen(fridayNight, at('2026-11-21T23:00:00Z'))).toBe(false); // Saturday evening is not Friday
    expect(isOpen(fridayNight, at('2026-11-20T03:00:00Z'))).toBe(false); // Friday small hours belong to Thursday
    const sundayNight = schedule({
      weekdays: ['Sunday'],
      time: [{ begin: '23:00', end: '01:00' }],
      timezone: 'UTC',
    });
    expect(isOpen(sundayNight, at('2026-11-23T00:30:00Z'))).toBe(true); // Monday 00:30: Sunday's night (wraps the week)
  });

  it('reads the time in the schedule’s time zone', () => {
    const berlinMorning = schedule({
      weekdays: ['Saturday'],
      time: [{ begin: '00:00', end: '02:00' }],
      timezone: 'Europe/Berlin',
    });
    // 23:30 UTC on Friday is 00:30 on Saturday in Berlin (UTC+1 in November).
    expect(isOpen(berlinMorning, at('2026-11-20T23:30:00Z'))).toBe(true);
    expect(isOpen(berlinMorning, at('2026-11-21T01:30:00Z'))).toBe(false); // 02:30 in Berlin
    const newYork = schedule({ time: [{ begin: '09:00', end: '10:00' }], timezone: 'America/New_York' });
    expect(isOpen(newYork, at('2026-07-01T13:30:00Z'))).toBe(true); // 09:30 EDT (UTC-4)
    expect(isOpen(newYork, at('2026-11-20T13:30:00Z'))).toBe(false); // 08:30 EST (UTC-5)
    expect(isOpen(newYork, at('2026-11-20T14:30:00Z'))).toBe(true);
    expect(localTime(at('2026-11-20T23:30:00Z'), 'Asia/Kolkata')).toEqual({ day: 5, second: 5 * 3600 }); // Saturday 05:00
  });

  it('reads 24:00 as the end of the day', () => {
    const evening = schedule({ time: [{ begin: '18:00', end: '24:00' }], timezone: 'UTC' });
    expect(isOpen(evening, at('2026-11-20T23:59:59Z'))).toBe(true);
    expect(isOpen(evening, at('2026-11-21T00:00:00Z'))).toBe(false);
    expect(isOpen(evening, at('2026-11-21T18:00:00Z'))).toBe(true);
  });
});

describe('schedule files', () => {
  it('refuse unknown weekdays, bad times and unknown time zones, saying what is expected', () => {
    const bad = (s: Record<string, unknown>): string[] =>
      scheduleSchema
        .safeParse({ name: 'x', ...s })
        .error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(bad({ weekdays: ['Funday'] })).toEqual([
      'weekdays.0: Expected a weekday such as Monday or Mon, got "Funday"',
    ]);
    expect(bad({ weekdays: ['M'] })[0]).toMatch(/Expected a weekday/);
    expect(bad({ time: [{ begin: '9:00', end: '10:00' }] })[0]).toMatch(
      /^time\.0\.begin: Expected a time of day HH:MM/,
    );
    expect(bad({ time: [{ begin: '24:30', end: '10:00' }] })[0]).toMatch(/^time\.0\.begin: /);
    expect(bad({ timezone: 'Mars/Olympus' })[0]).toMatch(/^timezone: Expected an IANA time zone/);
    expect(bad({ time: [{ begin: '09:00' }] })[0]).toMatch(/^time\.0\.end/);
  });
});

describe('msUntilOpen', () => {
  it('is 0 while the schedule is open', () => {
    expect(msUntilOpen(schedule({}), at('2026-11-20T12:00:00Z'))).toBe(0);
  });

  it('is the time until the next window begins, counted from the exact millisecond', () => {
    const office = schedule({ time: [{ begin: '09:00', end: '17:00' }], timezone: 'UTC' });
    expect(msUntilOpen(office, at('2026-11-20T08:30:00.250Z'))).toBe(30 * 60_000 - 250);
    expect(msUntilOpen(office, at('2026-11-20T08:59:59Z'))).toBe(1000);
  });

  it('is capped at an hour, so the caller looks again (and daylight-saving shifts are absorbed)', () => {
    const office = schedule({ time: [{ begin: '09:00', end: '17:00' }], timezone: 'UTC' });
    expect(msUntilOpen(office, at('2026-11-20T17:00:00Z'))).toBe(3_600_000);
  });

  it('counts to midnight when a closed weekday is followed by an open one', () => {
    const saturdays = schedule({ weekdays: ['Saturday'], timezone: 'UTC' });
    expect(msUntilOpen(saturdays, at('2026-11-20T23:45:00Z'))).toBe(15 * 60_000);
    const allDaySaturday = schedule({
      weekdays: ['Saturday'],
      time: [{ begin: '10:00', end: '10:00' }],
      timezone: 'UTC',
    });
    expect(isOpen(allDaySaturday, at('2026-11-21T00:00:00Z'))).toBe(true);
    expect(msUntilOpen(allDaySaturday, at('2026-11-20T23:45:00Z'))).toBe(15 * 60_000);
  });

  it('never names a moment at which the schedule is still closed (within the hour)', () => {
    const fridayNight = schedule({
      weekdays: ['Friday'],
      time: [{ begin: '22:00', end: '06:00' }],
      timezone: 'Europe/Berlin',
    });
    let opens = 0;
    for (
      let t = Date.parse('2026-11-20T12:00:00Z');
      t < Date.parse('2026-11-21T12:00:00Z');
      t += 7 * 60_000 + 13_000
    ) {
      const now = new Date(t);
      const wait = msUntilOpen(fridayNight, now);
      if (wait === 0) {
        expect(isOpen(fridayNight, now)).toBe(true);
        continue;
      }
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(3_600_000);
      // Nothing opens before the named moment...
      for (let probe = 1000; probe < wait - 1000; probe += 60_000)
        expect(isOpen(fridayNight, new Date(t + probe))).toBe(false);
      // ...and unless it is only the hourly look-again, it is open then.
      if (wait < 3_600_000 - 1000) {
        expect(isOpen(fridayNight, new Date(t + wait))).toBe(true);
        opens += 1;
      }
    }
    expect(opens).toBeGreaterThan(3);
  });
});
