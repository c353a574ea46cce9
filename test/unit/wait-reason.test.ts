import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { pino } from 'pino';
import { describe, expect, it } from 'vitest';

import { scheduleSchema } from '../../daemon/config/schema.ts';
import { explainWait, type WaitFacts } from '../../daemon/dispatch/wait-reason.ts';
import { describeWait } from '../../daemon/jobs/wait.ts';
import { DISPATCHERS_FOLDER, DispatcherRoll } from '../../daemon/spool/dispatchers.ts';
import { SELF } from '../../daemon/spool/owner.ts';

const now = new Date('2026-12-07T12:00:00Z');
const open = scheduleSchema.parse({ name: 'anytime' });
/** A job nothing holds back; each case changes one fact. */
const free: WaitFacts = {
  queue: 'renders',
  type: 'blender',
  host: 'farm1',
  now,
  queueEnabled: true,
  notBefore: undefined,
  pending: [],
  scheduleName: 'anytime',
  schedule: open,
  workers: { busy: 1, max: 4 },
  queueLimit: { running: 1, max: 2 },
  typeLimit: { running: 1, max: 3 },
  hostTakes: true,
};

describe('why a queued job waits (dispatch/wait-reason.ts)', () => {
  it('names the first obstacle, in the order the dispatcher meets them', () => {
    const reason = (change: Partial<WaitFacts>): string => explainWait({ ...free, ...change }).reason;
    expect(reason({})).toBe('turn');
    expect(reason({ hostTakes: false })).toBe('host_limit');
    expect(reason({ hostTakes: false, typeLimit: { running: 3, max: 3 } })).toBe('type_limit');
    expect(reason({ hostTakes: false, queueLimit: { running: 2, max: 2 } })).toBe('queue_limit');
    expect(reason({ hostTakes: false, workers: { busy: 4, max: 4 } })).toBe('workers');
    expect(reason({ workers: { busy: 4, max: 4 }, schedule: undefined })).toBe('schedule_closed');
    expect(reason({ schedule: undefined, pending: ['a'] })).toBe('dependency');
    expect(reason({ pending: ['a'], notBefore: now.getTime() + 60_000 })).toBe('not_before');
    expect(reason({ notBefore: now.getTime() + 60_000, queueEnabled: false })).toBe('queue_disabled');
    expect(reason({ notBefore: now.getTime() - 60_000 })).toBe('turn'); // a start time passed holds nothing
  });

  it('says until when a closed schedule opens, and a start time as "not before"', () => {
    const night = scheduleSchema.parse({
      name: 'night',
      timezone: 'UTC',
      time: [{ begin: '22:00', end: '06:00' }],
    });
    const closed = explainWait({ ...free, schedule: night, scheduleName: 'night' });
    expect(closed).toEqual({
      reason: 'schedule_closed',
      message: 'schedule night of queue renders is closed',
      until: '2026-12-07T22:00:00.000Z',
    });
    expect(describeWait(closed)).toBe(
      'schedule night of queue renders is closed until 2026-12-07T22:00:00.000Z',
    );
    const later = explainWait({ ...free, notBefore: Date.parse('2026-12-07T13:00:00Z') });
    expect(describeWait(later, (iso) => iso.slice(11, 16))).toBe('its start time: not before 13:00');
    expect(explainWait({ ...free, pending: ['x', 'y'] }).message).toBe(
      'dependency x is not done yet (and 1 more)',
    );
  });
});

describe('the dispatchers sharing a spool (spool/dispatchers.ts)', () => {
  it('counts live dispatchers: this machine by process, another machine by a fresh file', () => {
    const spool = mkdtempSync(path.join(tmpdir(), 'batchd-roll-'));
    const log = pino({ level: 'silent' });
    const roll = new DispatcherRoll(spool, 4000, log);
    try {
      expect(roll.count()).toBe(1); // not signed in yet: itself only
      roll.start();
      const other = new DispatcherRoll(spool, 4000, log);
      other.start();
      expect(roll.count()).toBe(2);
      other.close();
      expect(roll.count()).toBe(1);

      const dir = path.join(spool, DISPATCHERS_FOLDER);
      const elsewhere = path.join(dir, 'remote-1');
      writeFileSync(elsewhere, JSON.stringify({ hostname: `not-${SELF.hostname}`, boot_id: 'x', pid: 1 }));
      expect(roll.count()).toBe(2);
      const old = new Date(Date.now() - 10_000);
      utimesSync(elsewhere, old, old);
      expect(roll.count()).toBe(1); // stale: its machine stopped refreshing it

      const dead = path.join(dir, 'dead-1');
      writeFileSync(dead, JSON.stringify({ ...SELF, pid: 2 ** 22 + 7 }));
      expect(roll.count()).toBe(1); // a gone process of this machine; its file is removed
      expect(() => utimesSync(dead, old, old)).toThrow();
    } finally {
      roll.close();
      rmSync(spool, { recursive: true, force: true });
    }
  });
});
