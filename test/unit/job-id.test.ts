import { describe, expect, it } from 'vitest';

import { isJobId, newJobId, nextOrder, shardOf, slugify } from '../../daemon/jobs/id.ts';

describe('job ids', () => {
  it('are the UTC submission time to the millisecond, six random characters and an optional slug', () => {
    const id = newJobId('Render Shot 42.yaml', new Date('2026-11-21T09:30:00.123Z'));
    expect(id).toMatch(/^20261121T093000\.123Z-[a-z0-9]{6}-render-shot-42$/);
    expect(isJobId(id)).toBe(true);
    expect(shardOf(id)).toBe('20261121');
    expect(newJobId(undefined, new Date('2026-01-02T03:04:05.006Z'))).toMatch(
      /^20260102T030405\.006Z-[a-z0-9]{6}$/,
    );
  });

  it('sort by submission time as plain strings', () => {
    const times = [
      '2026-11-21T09:30:00.999Z',
      '2026-11-21T09:30:01.000Z',
      '2026-11-22T00:00:00.000Z',
      '2027-01-01T00:00:00.000Z',
    ];
    const ids = times.map((t) => newJobId('zzz', new Date(t)));
    expect([...ids].sort()).toEqual(ids);
    // The slug never overrides time: a later job with an "earlier" slug still sorts later.
    expect(newJobId('aaa', new Date(times[1] ?? '')) > newJobId('zzz', new Date(times[0] ?? ''))).toBe(true);
  });

  it('are unique when many are made in the same millisecond', () => {
    const now = new Date('2026-11-21T09:30:00.000Z');
    const ids = new Set(Array.from({ length: 5000 }, () => newJobId(undefined, now)));
    expect(ids.size).toBe(5000);
  });

  it('take a slug only of safe characters, at most 40 long, without the file extension', () => {
    expect(slugify('My Job (final).YML')).toBe('my-job-final');
    expect(slugify('../../etc/passwd')).toBe('etc-passwd');
    expect(slugify('.yaml')).toBe('');
    expect(slugify('x'.repeat(39) + '-yyyy')).toBe('x'.repeat(39));
    const long = newJobId('a'.repeat(100), new Date());
    expect(isJobId(long)).toBe(true);
  });

  it('are told apart from other names', () => {
    for (const bad of [
      '',
      '20261121T093000Z-k3f9qa',
      '20261121T093000.123Z-K3F9QA',
      '20261121T093000.123Z-k3f9q',
      '20261121T093000.123Z-k3f9qa-',
      '20261121T093000.123Z-k3f9qa-../x',
      '../20261121T093000.123Z-k3f9qa',
    ]) {
      expect(isJobId(bad), bad).toBe(false);
    }
  });
});

describe('submission order numbers', () => {
  it('strictly increase, even for many calls within one millisecond', () => {
    let last = nextOrder(1_000_000);
    for (let i = 0; i < 3000; i++) {
      const next = nextOrder(1_000_000);
      expect(next).toBeGreaterThan(last);
      last = next;
    }
    // A clock that goes back does not make the order go back.
    expect(nextOrder(999_000)).toBeGreaterThan(last);
    expect(nextOrder(5_000_000)).toBe(5_000_000_000);
  });
});
