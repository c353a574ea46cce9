import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';

import { BatchdError, type ErrorCode, type Problem } from '../errors.ts';
import { readFlatYaml } from './flat-yaml.ts';

/**
 * Parse YAML or JSON text and validate it with a schema; every problem names the file, the line
 * and the field. JSON goes through JSON.parse first: it is a YAML subset and a hundred times
 * faster, which matters for state files and busy drop folders.
 */
export function parseText<S extends z.ZodType>(
  text: string,
  schema: S,
  file: string,
  code: ErrorCode = 'CONFIG_INVALID',
  prepare: (data: unknown) => unknown = (data) => data,
): z.output<S> {
  const data = prepare(loadText(text, file));
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const problems = locateIssues(text, result.error.issues, data);
  throw new BatchdError(
    code,
    formatProblems(file, problems),
    { file, line: problems[0]?.line },
    { problems },
  );
}

export function loadText(text: string, file: string): unknown {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Fall through: YAML flow syntax also starts with { or [.
    }
  }
  // The common job file (key: value lines) is read without the full parser, exactly as it would read it.
  const flat = readFlatYaml(text);
  if (flat !== undefined) return flat;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, version: '1.2' });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return {
        line: pos.line,
        message: `YAML syntax: ${tooDeep(e) ? NESTED_TOO_DEEP : (e.message.split('\n')[0] ?? e.message)}`,
      };
    });
    throw new BatchdError(
      'YAML_SYNTAX',
      formatProblems(file, problems),
      { file, line: problems[0]?.line },
      { problems },
    );
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (error) {
    // An alias bomb, an alias to a missing anchor, or nesting too deep to convert.
    const message = tooDeep(error)
      ? NESTED_TOO_DEEP
      : ((error as Error).message.split('\n')[0] ?? String(error));
    throw new BatchdError(
      'YAML_SYNTAX',
      `${file}: YAML syntax: ${message}`,
      { file },
      { cause: error, problems: [{ message: `YAML syntax: ${message}` }] },
    );
  }
}

const NESTED_TOO_DEEP =
  'nested too deeply to read (lists or maps inside each other thousands of levels deep)';

/** The stack overflow that very deep nesting causes in a recursive parser. */
function tooDeep(error: unknown): boolean {
  return (
    error instanceof RangeError ||
    (error instanceof Error && error.message.includes('Maximum call stack size exceeded'))
  );
}

export function locateIssues(text: string, issues: readonly z.core.$ZodIssue[], data?: unknown): Problem[] {
  let doc: ReturnType<typeof parseDocument> | undefined;
  const lineCounter = new LineCounter();
  try {
    doc = parseDocument(text, { lineCounter });
  } catch {
    doc = undefined;
  }
  return issues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    // An unknown key is the field at fault, not the object holding it (which may be the root).
    const fieldPath =
      issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...path, issue.keys[0]] : path;
    const field = fieldPath.length === 0 ? undefined : fieldPath.map(String).join('.');
    let line: number | undefined;
    if (doc !== undefined) {
      // The deepest node that exists on the path: a missing field points at its parent.
      for (let depth = path.length; depth >= 0 && line === undefined; depth--) {
        const node = doc.getIn(path.slice(0, depth), true) as
          { range?: [number, number, number] } | undefined;
        if (node?.range !== undefined) line = lineCounter.linePos(node.range[0]).line;
      }
      // A key's own line reads better than its value's for unknown-key errors.
      if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) {
        const parent: unknown = path.length === 0 ? doc.contents : doc.getIn(path, true);
        const pair = (
          parent as { items?: { key?: { value?: unknown; range?: [number, number, number] } }[] }
        )?.items?.find((i) => i.key?.value === issue.keys[0]);
        if (pair?.key?.range !== undefined) line = lineCounter.linePos(pair.key.range[0]).line;
      }
    }
    return { field, line, message: describeIssue(issue, data) };
  });
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let node = data;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    return `Unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  }
  if (issue.code === 'invalid_type') {
    const got = valueAt(data, issue.path);
    if (got === undefined) return `Missing required field (expected ${issue.expected})`;
    return `Expected ${issue.expected}, got ${preview(got)}`;
  }
  if (issue.code === 'invalid_key') {
    return `Invalid name ${JSON.stringify(String(issue.path.at(-1)))}: ${issue.issues[0]?.message ?? issue.message}`;
  }
  // zod's own text for a union is "Invalid input": say what each alternative would have taken.
  if (issue.code === 'invalid_union' && issue.message === 'Invalid input') {
    const wanted = [...new Set(unionAlternatives(issue))];
    if (wanted.length > 0) {
      const list = wanted.length === 1 ? wanted[0] : `${wanted.slice(0, -1).join(', ')} or ${wanted.at(-1)}`;
      return `Expected ${list}, got ${preview(valueAt(data, issue.path))}`;
    }
  }
  return issue.message;
}

function unionAlternatives(issue: z.core.$ZodIssueInvalidUnion): string[] {
  return issue.errors.flatMap((branch) => {
    const first = branch[0];
    if (first === undefined) return [];
    if (first.path.length > 0)
      return typeof first.path[0] === 'string'
        ? [`{${first.path[0]}: …}`]
        : [`a list of ${first.code === 'invalid_type' ? first.expected : 'values'}`];
    if (first.code === 'invalid_union') return unionAlternatives(first);
    if (first.code === 'invalid_type') return [first.expected === 'tuple' ? 'list' : first.expected];
    return [];
  });
}

/** A value as shown in an error: short, and safe for values nested too deep to print. */
function preview(value: unknown): string {
  if (typeof value === 'number' && !Number.isFinite(value)) return `${value} (not a finite number)`;
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = Array.isArray(value) ? '[…]' : '{…}';
  }
  if (shown.length > 60) shown = `${shown.slice(0, 57)}...`;
  const kind =
    value === null
      ? 'null'
      : Array.isArray(value)
        ? 'array'
        : typeof value === 'object' && value.constructor !== Object
          ? value.constructor.name
          : typeof value;
  return `${shown} (${kind})`;
}

export function formatProblems(file: string, problems: readonly Problem[]): string {
  return problems
    .map((p) => {
      const where = [
        file,
        p.line === undefined ? undefined : `line ${p.line}`,
        p.field === undefined ? undefined : `field ${p.field}`,
      ]
        .filter((x) => x !== undefined)
        .join(', ');
      return `${where}: ${p.message}`;
    })
    .join('\n');
}
