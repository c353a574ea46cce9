import { describe, expect, it } from 'vitest';

import { durationMs, parseDuration } from '../../daemon/config/duration.ts';

describe('parseDuration', () => {
  it.each([
    [90, 90_000],
    [0.5, 500],
    ['90', 90_000],
    ['1.5', 1500],
    ['90s', 90_000],
    ['250ms', 250],
    ['15m', 900_000],
    ['1h30m', 5_400_000],
    ['2d', 172_800_000],
    ['1d2h3m4s5ms', 93_784_005],
    [' 10s ', 10_000],
    ['1.5h', 5_400_000],
  ] as const)('reads %j as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 'abc', '10 s', '1h30', 's', '-5', '5x', '1h 30m', '1e3'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('refuses negative and infinite numbers', () => {
    expect(parseDuration(-1)).toBeUndefined();
    expect(parseDuration(Infinity)).toBeUndefined();
    expect(parseDuration(NaN)).toBeUndefined();
  });

  it('is a schema field whose error says what is expected', () => {
    expect(durationMs.parse('2m')).toBe(120_000);
    const result = durationMs.safeParse('soon');
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toMatch(
      /Expected a duration such as 90, "90s", "15m" or "1h30m", got "soon"/,
    );
  });
});
