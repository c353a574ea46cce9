import { describe, expect, it } from 'vitest';

import { paramSpecSchema } from '../../daemon/config/schema.ts';
import { coerceParam, expandInput, expansionSize, isExpanding } from '../../daemon/jobs/params.ts';
import { paramInputSchema, type ParamInput } from '../../daemon/jobs/spec.ts';

const spec = (s: Record<string, unknown>): ReturnType<typeof paramSpecSchema.parse> =>
  paramSpecSchema.parse({ name: 'p', ...s });
const ok = (s: Record<string, unknown>, value: string | number | boolean): unknown => {
  const r = coerceParam(spec(s), value);
  if ('error' in r) throw new Error(r.error);
  return r.value;
};
const error = (s: Record<string, unknown>, value: string | number | boolean): string => {
  const r = coerceParam(spec(s), value);
  if (!('error' in r)) throw new Error(`accepted ${JSON.stringify(value)} as ${JSON.stringify(r.value)}`);
  return r.error;
};

describe('coerceParam', () => {
  it('String (the default type): text kept as is, numbers and booleans as text', () => {
    expect(ok({}, '  a b  ')).toBe('  a b  ');
    expect(ok({ type: 'String' }, 12)).toBe('12');
    expect(ok({ type: 'String' }, false)).toBe('false');
    expect(error({ type: 'String' }, 'a\0b')).toBe('Expected text without NUL characters');
  });

  it('Integer: whole numbers, also written as text; min and max inclusive', () => {
    expect(ok({ type: 'Integer' }, 7)).toBe(7);
    expect(ok({ type: 'Integer' }, ' -12 ')).toBe(-12);
    expect(error({ type: 'Integer' }, 1.5)).toBe('Expected an integer, got 1.5 (number)');
    expect(error({ type: 'Integer' }, '1e3')).toBe('Expected an integer, got "1e3" (string)');
    expect(error({ type: 'Integer' }, true)).toBe('Expected an integer, got true (boolean)');
    expect(error({ type: 'Integer' }, '9007199254740993')).toMatch(/Expected an integer/);
    const frame = { type: 'Integer', min: 1, max: 250 };
    expect(ok(frame, 1)).toBe(1);
    expect(ok(frame, '250')).toBe(250);
    expect(error(frame, 0)).toBe('Expected a value ≥ 1, got 0 (number)');
    expect(error(frame, 251)).toBe('Expected a value ≤ 250, got 251 (number)');
  });

  it('Float: finite numbers, also written as text; min and max', () => {
    expect(ok({ type: 'Float' }, 0.25)).toBe(0.25);
    expect(ok({ type: 'Float' }, '-2.5')).toBe(-2.5);
    expect(ok({ type: 'Float' }, 3)).toBe(3);
    for (const bad of ['', 'abc', 'Infinity', 'NaN', true] as const)
      expect(error({ type: 'Float' }, bad)).toMatch(/^Expected a number, got /);
    expect(error({ type: 'Float', min: 0, max: 1 }, 1.01)).toBe('Expected a value ≤ 1, got 1.01 (number)');
    expect(error({ type: 'Float', min: 0, max: 1 }, '-0.5')).toBe(
      'Expected a value ≥ 0, got "-0.5" (string)',
    );
  });

  it('Boolean: true/false and the usual spellings', () => {
    for (const yes of [true, 'true', 'YES', 'on', '1', 1] as const)
      expect(ok({ type: 'Boolean' }, yes)).toBe(true);
    for (const no of [false, 'false', 'No', 'off', '0', 0] as const)
      expect(ok({ type: 'Boolean' }, no)).toBe(false);
    expect(error({ type: 'Boolean' }, 'maybe')).toBe('Expected true or false, got "maybe" (string)');
    expect(error({ type: 'Boolean' }, 2)).toBe('Expected true or false, got 2 (number)');
  });

  it('Choice: one of the listed values, compared as text', () => {
    const choice = { type: 'Choice', choices: ['low', 'high', 1] };
    expect(ok(choice, 'high')).toBe('high');
    expect(ok(choice, 1)).toBe('1');
    expect(error(choice, 'High')).toBe('Expected one of "low", "high", "1", got "High" (string)');
    expect(paramSpecSchema.safeParse({ name: 'c', type: 'Choice' }).error?.issues[0]?.message).toBe(
      'A Choice parameter needs a `choices` list',
    );
  });

  it.each(['InputFile', 'OutputFile'])('%s: a non-empty path of at most 4096 characters', (type) => {
    expect(ok({ type }, '/projects/shot 42.blend')).toBe('/projects/shot 42.blend');
    expect(ok({ type }, 42)).toBe('42');
    expect(error({ type }, '')).toBe('Expected a file path, got "" (string)');
    expect(error({ type }, true)).toBe('Expected a file path, got true (boolean)');
    expect(error({ type }, 'x'.repeat(4097))).toBe('Expected a file path of at most 4096 characters');
    expect(error({ type }, '/a\0b')).toBe('Expected text without NUL characters');
  });

  it('Script: code, kept as text', () => {
    expect(ok({ type: 'Script' }, 'make -j8 && echo "done"')).toBe('make -j8 && echo "done"');
  });
});

describe('task inputs', () => {
  const input = (value: unknown): ParamInput => paramInputSchema.parse(value);

  it.each([
    [{ range: '1..5' }, [1, 2, 3, 4, 5]],
    [{ range: '0..100..25' }, [0, 25, 50, 75, 100]],
    [{ range: '1..10..4' }, [1, 5, 9]],
    [{ range: '5..1' }, [5, 4, 3, 2, 1]],
    [{ range: '10..0..5' }, [10, 5, 0]],
    [{ range: '-2..2' }, [-2, -1, 0, 1, 2]],
    [{ range: '3 .. 3' }, [3]],
    [{ range: [1, 3] }, [1, 2, 3]],
    [{ range: [0, 9, 3] }, [0, 3, 6, 9]],
    [{ range: [3, 1, 2] }, [3, 1]],
    [
      ['a', 'b', 1, true],
      ['a', 'b', 1, true],
    ],
    [{ each: ['x', 'y'] }, ['x', 'y']],
    ['one', ['one']],
    [7, [7]],
  ] as [unknown, unknown[]][])('%j expands to %j', (raw, values) => {
    const parsed = input(raw);
    expect(expandInput(parsed)).toEqual(values);
    expect(expansionSize({ p: parsed })).toBe(values.length);
    expect(isExpanding(parsed)).toBe(typeof raw === 'object');
  });

  it('multiplies the sizes of several expanding inputs (a cartesian product)', () => {
    expect(
      expansionSize({ a: input({ range: '1..10' }), b: input(['x', 'y', 'z']), c: input('fixed') }),
    ).toBe(30);
    expect(expansionSize({})).toBe(1);
  });

  it('counts a huge range without making it', () => {
    expect(expansionSize({ frame: input({ range: '1..1000000000' }) })).toBe(1_000_000_000);
  });

  it.each([
    { range: '1..' },
    { range: 'a..b' },
    { range: '1..10..0' },
    { range: [1, 10, 0] },
    { range: [1.5, 3] },
    { each: [] },
    [],
    { range: '1..3', x: 1 },
  ])('refuses %j', (raw) => {
    expect(paramInputSchema.safeParse(raw).success).toBe(false);
  });
});
