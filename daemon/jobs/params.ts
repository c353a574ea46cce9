import type { ParamSpec } from '../config/schema.ts';
import type { ParamInput, ParamValue } from './spec.ts';

export interface ParamIssue {
  path: (string | number)[];
  message: string;
}

/**
 * Check one parameter value against its declared type; returns the normalized value or a
 * message saying what was expected.
 */
export function coerceParam(spec: ParamSpec, value: ParamValue): { value: ParamValue } | { error: string } {
  // Made only for an error: a task checks each of its values here (100,000 of them).
  const got = (): string => `${JSON.stringify(value)} (${typeof value})`;
  if (typeof value === 'string' && value.includes('\0'))
    return { error: 'Expected text without NUL characters' };
  switch (spec.type) {
    case 'Integer': {
      const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isSafeInteger(n))
        return { error: `Expected an integer, got ${got()}` };
      return bounded(spec, n, got);
    }
    case 'Float': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n)) return { error: `Expected a number, got ${got()}` };
      return bounded(spec, n, got);
    }
    case 'Boolean': {
      if (typeof value === 'boolean') return { value };
      const text = String(value).toLowerCase();
      if (['true', 'yes', 'on', '1'].includes(text)) return { value: true };
      if (['false', 'no', 'off', '0'].includes(text)) return { value: false };
      return { error: `Expected true or false, got ${got()}` };
    }
    case 'Choice': {
      const text = String(value);
      if (!(spec.choices ?? []).includes(text)) {
        return {
          error: `Expected one of ${(spec.choices ?? []).map((c) => JSON.stringify(c)).join(', ')}, got ${got()}`,
        };
      }
      return { value: text };
    }
    case 'InputFile':
    case 'OutputFile': {
      const text = String(value);
      if (text === '' || typeof value === 'boolean') return { error: `Expected a file path, got ${got()}` };
      if (text.length > 4096) return { error: 'Expected a file path of at most 4096 characters' };
      return { value: text };
    }
    case 'String':
    case 'Script':
      if (typeof value === 'boolean') return { value: String(value) };
      return { value: typeof value === 'number' ? String(value) : value };
  }
}

function bounded(spec: ParamSpec, n: number, got: () => string): { value: number } | { error: string } {
  if (spec.min !== undefined && n < spec.min)
    return { error: `Expected a value ≥ ${spec.min}, got ${got()}` };
  if (spec.max !== undefined && n > spec.max)
    return { error: `Expected a value ≤ ${spec.max}, got ${got()}` };
  return { value: n };
}

/** The values one parameter input stands for: one, or many for a task. */
export function expandInput(input: ParamInput): ParamValue[] {
  if (Array.isArray(input)) return input;
  if (typeof input !== 'object') return [input];
  if ('each' in input) return input.each;
  const { from, to, step } = rangeBounds(input.range);
  const values: number[] = [];
  const dir = to >= from ? 1 : -1;
  for (let v = from; dir > 0 ? v <= to : v >= to; v += dir * step) values.push(v);
  return values;
}

function rangeBounds(range: string | number[]): { from: number; to: number; step: number } {
  const [from = 0, to = 0, step = 1] =
    typeof range === 'string' ? range.split('..').map((p) => Number(p.trim())) : range;
  return { from, to, step };
}

function inputLength(input: ParamInput): number {
  if (Array.isArray(input)) return input.length;
  if (typeof input !== 'object') return 1;
  if ('each' in input) return input.each.length;
  const { from, to, step } = rangeBounds(input.range);
  return Math.floor(Math.abs(to - from) / step) + 1;
}

export function isExpanding(input: ParamInput): boolean {
  return typeof input === 'object' && (Array.isArray(input) || 'each' in input || 'range' in input);
}

/** How many jobs a set of inputs expands into (the product of the list lengths). */
export function expansionSize(inputs: Record<string, ParamInput>): number {
  let size = 1;
  for (const input of Object.values(inputs)) size *= inputLength(input);
  return size;
}
